"""The command line: ``dizimail init|serve|domain|user|alias|queue``.

Every admin command calls the same service functions as the (later) REST API
and admin pages; errors print a clear message and exit non-zero.
"""
