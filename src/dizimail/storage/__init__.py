"""Storage implementations, imported only by ``dizimail.app`` and tests.

``fs`` holds content-addressed blob files; ``sqlite`` the embedded MetaStore
and QueueStore (one database file, one writer thread with group commit).
"""
