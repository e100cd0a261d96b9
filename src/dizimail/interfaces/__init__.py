"""Storage contracts (``typing.Protocol``); services see storage only through these.

Each role has an embedded implementation in ``dizimail.storage`` (SQLite and
files) and, later, a distributed one (PostgreSQL). ``app`` picks one from the
config; ``tests/contract`` runs one suite per interface against each.
"""

from dizimail.interfaces.access import AccessListStore
from dizimail.interfaces.audit import AuditStore
from dizimail.interfaces.blob import BlobStore, BlobWriter
from dizimail.interfaces.fetch import FetchStore
from dizimail.interfaces.keys import DkimKeyStore
from dizimail.interfaces.meta import MetaStore
from dizimail.interfaces.queue import QueueStore
from dizimail.interfaces.routing import RoutingStore
from dizimail.interfaces.search import SearchIndex
from dizimail.interfaces.settings import SettingsStore
from dizimail.interfaces.tokens import TokenStore

__all__ = ["AccessListStore", "AuditStore", "BlobStore", "BlobWriter", "DkimKeyStore", "FetchStore", "MetaStore", "QueueStore", "RoutingStore",
           "SearchIndex", "SettingsStore", "TokenStore"]
