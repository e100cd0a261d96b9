"""Open the stores named by the config and the services over them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from dizimail.config.schema import Config
from dizimail.interfaces import MetaStore, QueueStore, RoutingStore
from dizimail.net.smtp_client import SmtpClient
from dizimail.services.accounts import AccountService
from dizimail.services.delivery.nexthop import NextHops
from dizimail.services.delivery.remote import RemoteDelivery, Slots
from dizimail.services.dkim import DkimService
from dizimail.services.fetch import FetchService
from dizimail.services.folders import Folders
from dizimail.services.ingest import Ingest
from dizimail.services.mailstore import Mailstore
from dizimail.services.messages import describe_blob
from dizimail.services.notify import Notifier
from dizimail.services.policy.engine import Policy
from dizimail.services.policy.quota import QuotaRule
from dizimail.services.policy.relay import RelayNetworks
from dizimail.services.queue import QueueService
from dizimail.services.queue.runner import QueueRunner
from dizimail.services.routes import RouteService
from dizimail.services.routing import Router
from dizimail.services.secretbox import SecretBox, Secrets
from dizimail.services.submit import Submitter
from dizimail.storage.fs.blobs import FsBlobStore
from dizimail.storage.fs.keyfile import load_or_create_key
from dizimail.storage.fs.modes import create_private, make_private
from dizimail.storage.sqlite.db import SqliteDatabase
from dizimail.storage.sqlite.meta import SqliteMetaStore
from dizimail.storage.sqlite.queue import SqliteQueueStore
from dizimail.storage.sqlite.routing import SqliteRoutingStore
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
    blobs: FsBlobStore
    queue_store: QueueStore
    routing: RoutingStore
    relay: RelayNetworks
    dkim: DkimService
    policy: Policy
    submitter: Submitter
    routes: RouteService
    fetch: FetchService
    secrets: Secrets


def open_database(config: Config, *, owner: bool = False) -> tuple[SqliteDatabase, FsBlobStore]:
    """The node's database and blob store. ``owner``: the serving node at its start, which alone
    clears the spool (partial receptions from before a crash were never acknowledged); the
    command line and the queue-runner child open the same files beside a running node, whose
    receptions in progress live there."""
    blobs = FsBlobStore(config.path(config.storage.blob_dir), config.path(config.storage.spool_dir))
    database = config.path(config.storage.database)
    create_private(database)
    if owner:
        blobs.make_private()
        for path in (database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")):
            make_private(path)
        blobs.clean_tmp()
    db = SqliteDatabase(database, batch=config.storage.commit_batch, dir_syncer=blobs.sync_dirs)
    db.upgrade()
    return db, blobs


@asynccontextmanager
async def open_services(config: Config, *, owner: bool = False) -> AsyncIterator[Services]:
    db, blobs = open_database(config, owner=owner)
    db.start()
    try:
        box = SecretBox(load_or_create_key(config.path(config.storage.master_key)))
        meta = SqliteMetaStore(db, blobs)
        notifier = Notifier()
        routing = SqliteRoutingStore(db)
        queue_store = SqliteQueueStore(db)
        router = Router(meta, routing)
        quota = QuotaRule(config.policy.quota_grace)
        ingest = Ingest(meta, blobs, config.server.hostname, notifier, describe_blob, quota)
        accounts = AccountService(meta, config.auth)
        relay = RelayNetworks(config.smtp.trusted_networks, routing, allow_everyone=config.smtp.allow_open_relay)
        dkim = DkimService(routing, config.delivery.dkim_selector)
        policy = Policy(config, router, relay, dkim)
        submitter = Submitter(ingest, policy)

        async def postmaster() -> str:
            domains = [d for d in await accounts.list_domains() if d.alias_of is None]
            return f"postmaster@{domains[0].name}" if domains else f"postmaster@{config.server.hostname}"
        fetch = FetchService(routing, submitter, config.fetch, postmaster, config.limits.max_message_size, box)
        accounts.login_hooks.append(fetch.on_login)
        yield Services(config=config, accounts=accounts, router=router, ingest=ingest,
                       mailstore=Mailstore(meta, blobs, notifier, SqliteSearchIndex(db), quota),
                       queue=QueueService(queue_store, routing), folders=Folders(meta, notifier), notifier=notifier,
                       meta=meta, blobs=blobs, queue_store=queue_store, routing=routing, relay=relay, dkim=dkim,
                       policy=policy, submitter=submitter, routes=RouteService(routing, meta), fetch=fetch,
                       secrets=Secrets(routing, box))
    finally:
        db.close()


def make_runner(config: Config, services: Services) -> QueueRunner:
    """The queue runner of this node, with our own SMTP client (net.smtp_client) as its transport."""
    delivery = config.delivery
    client = SmtpClient(connect_timeout=delivery.connect_timeout, command_timeout=delivery.command_timeout,
                        ca_file=delivery.tls_ca_file or None)
    remote = RemoteDelivery(client, delivery.helo_name or config.server.hostname, delivery.idle_timeout,
                            delivery.destination_backoff, Slots(delivery.concurrency, delivery.destination_concurrency))
    return QueueRunner(store=services.queue_store, routing=services.routing, router=services.router,
                       ingest=services.ingest, submitter=services.submitter, blobs=services.blobs,
                       nexthops=NextHops(delivery, services.routing, services.secrets), remote=remote, config=delivery,
                       owner=config.server.node_id or config.server.hostname, hostname=config.server.hostname)
