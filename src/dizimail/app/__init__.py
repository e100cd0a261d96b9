"""Composition root: config → stores → services → listeners, per role.

Only this package (and tests) import ``dizimail.storage``. ``build.py``
opens the stores and services that the CLI and the server share;
``node.py`` adds the listeners and runs them; ``init.py`` creates a data
directory; ``tls.py`` makes the self-signed certificate.
"""
