"""`python -m pullbridge_local` (what `make dev` runs): the local stack, see pullbridge_local.dev."""

from pullbridge_local.dev import run_dev

# Guarded: the functions' worker processes are spawned, and a spawned process imports this module again.
if __name__ == "__main__":
    run_dev()
