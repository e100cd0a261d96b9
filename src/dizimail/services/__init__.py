"""The core API that every front-end, the CLI and (later) the REST API call.

Services see storage only through ``dizimail.interfaces``; ``dizimail.app``
wires them to implementations. ``ingest`` is THE one way into the system.
"""
