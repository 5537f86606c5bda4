from pullbridge_local.cli import main

# Guarded: the functions' worker processes are spawned, and a spawned process imports this module again.
if __name__ == "__main__":
    main()
