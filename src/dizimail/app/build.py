"""Open the stores named by the config and the services over them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from dizimail.config.schema import Config
from dizimail.interfaces import MetaStore
from dizimail.services.accounts import AccountService
from dizimail.services.folders import Folders
from dizimail.services.ingest import Ingest
from dizimail.services.mailstore import Mailstore
from dizimail.services.messages import describe_blob
from dizimail.services.notify import Notifier
from dizimail.services.queue import QueueService
from dizimail.services.routing import Router
from dizimail.storage.fs.blobs import FsBlobStore
from dizimail.storage.sqlite.db import SqliteDatabase
from dizimail.storage.sqlite.meta import SqliteMetaStore, SqliteQueueStore
from dizimail.storage.sqlite.search import SqliteSearchIndex


@dataclass
class Services:
    config: Config
    accounts: AccountService
    router: Router
    ingest: Ingest
    mailstore: Mailstore
    queue: QueueService
    folders: Folders
    notifier: Notifier
    meta: MetaStore


def open_database(config: Config) -> tuple[SqliteDatabase, FsBlobStore]:
    blobs = FsBlobStore(config.path(config.storage.blob_dir), config.path(config.storage.spool_dir))
    blobs.clean_tmp()  # partial receptions from before a crash were never acknowledged
    db = SqliteDatabase(config.path(config.storage.database), batch=config.storage.commit_batch,
                        dir_syncer=blobs.sync_dirs)
    db.upgrade()
    return db, blobs


@asynccontextmanager
async def open_services(config: Config) -> AsyncIterator[Services]:
    db, blobs = open_database(config)
    db.start()
    try:
        meta = SqliteMetaStore(db, blobs)
        notifier = Notifier()
        yield Services(config=config, accounts=AccountService(meta, config.auth), router=Router(meta),
                       ingest=Ingest(meta, blobs, config.server.hostname, notifier, describe_blob),
                       mailstore=Mailstore(meta, blobs, notifier, SqliteSearchIndex(db)), queue=QueueService(SqliteQueueStore(db)),
                       folders=Folders(meta, notifier), notifier=notifier, meta=meta)
    finally:
        db.close()
