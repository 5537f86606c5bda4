"""The API function's routes, one Powertools router per resource, and the wiring they share.

The package ships beside `app.py` (the function's CodeUri), on sys.path as Lambda puts the task root.
Its name is the API function's own: the tests import every function into one process.
"""
