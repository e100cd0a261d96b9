"""Open the stores named by the config and the services over them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from dizimail.clients.fetch import StdlibMailboxClient
from dizimail.clients.smtp import SmtpClient
from dizimail.config.schema import Config
from dizimail.services.access import AccessLists
from dizimail.services.accounts import AccountService
from dizimail.services.admin import AdminActions
from dizimail.services.antivirus import VirusScanner
from dizimail.services.clientdns import ReverseDns, SpfChecker
from dizimail.services.compose import MailSender
from dizimail.services.contacts import AddressBook
from dizimail.services.content.filter import ContentFilter, JunkLearner
from dizimail.services.content.settings import SpamSettings
from dizimail.services.content.whitelist import AutoWhitelist
from dizimail.services.delivery.nexthop import NextHops
from dizimail.services.delivery.remote import RemoteDelivery, Slots
from dizimail.services.dkim import DkimService
from dizimail.services.dnsbl import Dnsbl
from dizimail.services.domains import DomainProfiles
from dizimail.services.fetch import FetchService
from dizimail.services.folders import Folders
from dizimail.services.ingest import Ingest
from dizimail.services.lists.addresses import ListKeys
from dizimail.services.lists.manage import MailingLists
from dizimail.services.lists.receive import ListReceiver
from dizimail.services.mailstore import Mailstore
from dizimail.services.messages import describe_blob
from dizimail.services.msgauth import MessageAuth
from dizimail.services.notice import Notices
from dizimail.services.notify import Notifier
from dizimail.services.policy.engine import Policy
from dizimail.services.policy.quota import QuotaRule
from dizimail.services.policy.relay import RelayNetworks
from dizimail.services.policy.report import SpamRule
from dizimail.services.prefs import UserPrefs
from dizimail.services.quarantine import Quarantine
from dizimail.services.queue import QueueService
from dizimail.services.queue.runner import QueueRunner
from dizimail.services.resolver import make_resolver, make_sync_resolver
from dizimail.services.route_table import RouteTable
from dizimail.services.routing import Router
from dizimail.services.secretbox import SecretBox, Secrets
from dizimail.services.sieve.deliver import SieveDelivery
from dizimail.services.sieve.scripts import SieveScripts
from dizimail.services.srs import SenderRewriter
from dizimail.services.submit import Submitter
from dizimail.services.tokens import TokenService
from dizimail.services.traffic import TrafficCounter
from dizimail.services.weblogin import WebLogins
from dizimail.services.webmail import MailReader
from dizimail.storage.fs.blobs import FsBlobStore
from dizimail.storage.fs.keyfile import load_or_create_key
from dizimail.storage.fs.modes import create_private, make_private
from dizimail.storage.sqlite.access import SqliteAccessListStore
from dizimail.storage.sqlite.audit import SqliteAuditStore
from dizimail.storage.sqlite.bayes import SqliteBayesStore, SqliteSpamSettingsStore, SqliteWhitelistStore
from dizimail.storage.sqlite.contacts import SqliteContactStore
from dizimail.storage.sqlite.db import SqliteDatabase
from dizimail.storage.sqlite.domains import SqliteDomainProfileStore
from dizimail.storage.sqlite.fetch import SqliteFetchStore
from dizimail.storage.sqlite.lists import SqliteListStore
from dizimail.storage.sqlite.meta import SqliteMetaStore
from dizimail.storage.sqlite.quarantine import SqliteQuarantineStore
from dizimail.storage.sqlite.queue import SqliteQueueStore
from dizimail.storage.sqlite.routing import SqliteRoutingStore
from dizimail.storage.sqlite.search import SqliteSearchIndex
from dizimail.storage.sqlite.settings import SqliteDkimKeyStore, SqliteSettingsStore
from dizimail.storage.sqlite.sieve import SqliteSieveStore
from dizimail.storage.sqlite.tokens import SqliteGrantStore, SqliteTokenStore
from dizimail.storage.sqlite.traffic import SqliteTrafficStore


@dataclass
class Services:
    """The core API every front-end, the command line and (later) the REST API call: services only. The
    stores behind them are :class:`Stores`, for this composition root (and tests that seed data) alone."""

    config: Config
    accounts: AccountService
    router: Router
    ingest: Ingest
    mailstore: Mailstore
    queue: QueueService
    folders: Folders
    notifier: Notifier
    relay: RelayNetworks
    dkim: DkimService
    policy: Policy
    submitter: Submitter
    routes: RouteTable
    fetch: FetchService
    secrets: Secrets
    access: AccessLists
    content: ContentFilter
    whitelist: AutoWhitelist
    scanner: VirusScanner | None
    quarantine: Quarantine
    spam_settings: SpamSettings
    tokens: TokenService
    admin: AdminActions
    logins: WebLogins
    traffic: TrafficCounter
    profiles: DomainProfiles
    sieve: SieveScripts
    lists: MailingLists
    list_mail: ListReceiver  # what mail to a list's addresses does; moderators' actions
    mail: MailReader  # webmail's reading (issue #13)
    compose: MailSender  # webmail's writing
    contacts: AddressBook  # webmail's address book
    prefs: UserPrefs  # webmail's preferences


@dataclass
class Stores:
    """The storage implementations the config names (DESIGN.md §3), one per role."""

    db: SqliteDatabase
    meta: SqliteMetaStore
    blobs: FsBlobStore
    queue: SqliteQueueStore
    routing: SqliteRoutingStore
    settings: SqliteSettingsStore
    keys: SqliteDkimKeyStore
    fetch: SqliteFetchStore
    search: SqliteSearchIndex
    access: SqliteAccessListStore
    bayes: SqliteBayesStore
    whitelist: SqliteWhitelistStore
    quarantine: SqliteQuarantineStore
    spam_settings: SqliteSpamSettingsStore
    tokens: SqliteTokenStore
    audit: SqliteAuditStore
    grants: SqliteGrantStore
    traffic: SqliteTrafficStore
    profiles: SqliteDomainProfileStore
    sieve: SqliteSieveStore
    lists: SqliteListStore
    contacts: SqliteContactStore


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
async def open_node(config: Config, *, owner: bool = False) -> AsyncIterator[tuple[Services, Stores]]:
    """The stores and the services over them, for as long as the context lasts."""
    db, blobs = open_database(config, owner=owner)
    db.start()
    try:
        stores = Stores(db=db, meta=SqliteMetaStore(db, blobs), blobs=blobs, queue=SqliteQueueStore(db),
                        routing=SqliteRoutingStore(db), settings=SqliteSettingsStore(db), keys=SqliteDkimKeyStore(db),
                        fetch=SqliteFetchStore(db), search=SqliteSearchIndex(db), access=SqliteAccessListStore(db),
                        bayes=SqliteBayesStore(db), whitelist=SqliteWhitelistStore(db),
                        quarantine=SqliteQuarantineStore(db), spam_settings=SqliteSpamSettingsStore(db),
                        tokens=SqliteTokenStore(db), audit=SqliteAuditStore(db), grants=SqliteGrantStore(db),
                        traffic=SqliteTrafficStore(db), profiles=SqliteDomainProfileStore(db),
                        sieve=SqliteSieveStore(db), lists=SqliteListStore(db), contacts=SqliteContactStore(db))
        services = build_services(config, stores)
        try:
            yield services, stores
        finally:
            await services.traffic.close()  # counts still in memory (a worker's, a runner's, the node's)
            services.sieve.close()
    finally:
        db.close()


@asynccontextmanager
async def open_services(config: Config, *, owner: bool = False) -> AsyncIterator[Services]:
    async with open_node(config, owner=owner) as (services, _stores):
        yield services


def build_services(config: Config, stores: Stores) -> Services:
    box = SecretBox(load_or_create_key(config.path(config.storage.master_key)))
    meta, hostname = stores.meta, config.server.hostname
    notifier = Notifier()
    router = Router(meta, stores.routing)
    quota = QuotaRule(config.policy.quota_grace)
    antispam = config.antispam
    whitelist = AutoWhitelist(stores.whitelist, antispam.whitelist_after, antispam.whitelist_keep)
    spam_settings = SpamSettings(stores.spam_settings, antispam)
    ingest = Ingest(meta, stores.blobs, hostname, notifier, describe_blob, quota,
                    SpamRule(antispam.subject_tag, spam_settings.levels), whitelist, config.quarantine.keep)
    accounts = AccountService(meta, config.auth)
    relay = RelayNetworks(config.smtp.trusted_networks, stores.routing, allow_everyone=config.smtp.allow_open_relay)
    dkim = DkimService(stores.keys, config.delivery.dkim_selector)
    access = AccessLists(stores.access)
    servers = config.delivery.dns_servers
    dnsbl = Dnsbl(antispam.dnsbl_zones, make_resolver(servers, antispam.dnsbl_timeout))
    rdns = ReverseDns(make_resolver(servers, antispam.dns_timeout))
    auth = MessageAuth(make_sync_resolver(servers, antispam.dns_timeout))
    content = ContentFilter(stores.bayes)
    mailing_lists = MailingLists(stores.lists, meta, stores.quarantine)
    router.lists = mailing_lists.target
    list_keys = ListKeys(box.derive("lists"), web_url(config))
    scanner = VirusScanner(config.antivirus.clamd, config.antivirus.timeout) if config.antivirus.clamd else None
    policy = Policy(config, router, relay, dkim, access, dnsbl, rdns, SpfChecker(servers, antispam.dns_timeout), auth,
                    content, whitelist, spam_settings, scanner, mailing_lists, list_keys)
    submitter = Submitter(ingest, policy)
    fetch = FetchService(stores.fetch, submitter, config.fetch, lambda: accounts.postmaster(hostname),
                         config.limits.max_message_size, box, StdlibMailboxClient())
    accounts.login_hooks.append(fetch.on_login)
    held = config.quarantine

    async def admin() -> str:
        return held.admin or await accounts.postmaster(hostname)
    quarantine = Quarantine(stores.quarantine, ingest, submitter, router, stores.blobs, content, held, hostname,
                            config.path(held.templates), admin)
    ingest.on_quarantine = quarantine.held
    mailstore = Mailstore(meta, stores.blobs, notifier, stores.search, quota)
    folders = Folders(meta, notifier)
    sieve = SieveScripts(stores.sieve)
    ingest.sieve = SieveDelivery(sieve, folders, hostname)
    ingest.sieve.submit = submitter.submit
    srs = SenderRewriter(box.derive("srs"))
    router.srs = srs

    async def rewrite(sender: str, domain: str) -> str:
        """Forwarded mail of a sender from elsewhere leaves with an SRS address of the forwarding domain."""
        if not sender or await router.is_ours(sender.rpartition("@")[2].lower()):
            return sender
        return srs.forward(sender, domain)
    ingest.sieve.rewrite = rewrite
    list_mail = ListReceiver(mailing_lists, list_keys, ingest, router, meta, folders, dkim, submitter.submit,
                             admin, hostname, config.lists)  # a list without moderators: the quarantine's admin
    ingest.lists = list_mail.receive
    tokens = TokenService(stores.tokens, accounts)
    routes = RouteTable(stores.routing, meta)
    secrets = Secrets(stores.settings, box)
    queue = QueueService(stores.queue, stores.settings, stores.blobs)
    logins = WebLogins(accounts, tokens, stores.grants, box)
    profiles = DomainProfiles(stores.profiles, accounts)
    traffic = TrafficCounter(stores.traffic)
    ingest.traffic = traffic
    reader = MailReader(mailstore, folders)
    mailstore.on_copy = JunkLearner(content, mailstore.read_blob, spam_settings.personal, whitelist.revoke).copied
    return Services(config=config, accounts=accounts, router=router, ingest=ingest, mailstore=mailstore,
                    queue=queue, folders=folders,
                    notifier=notifier, relay=relay, dkim=dkim, policy=policy, submitter=submitter,
                    routes=routes, fetch=fetch, secrets=secrets,
                    access=access, content=content, whitelist=whitelist,
                    scanner=scanner, quarantine=quarantine, spam_settings=spam_settings,
                    tokens=tokens, admin=AdminActions(accounts, tokens, stores.audit, routes, relay, dkim, queue, access,
                                                                  quarantine, spam_settings, fetch, secrets, logins,
                                                                  Notices(accounts, submitter, hostname,
                                                                          config.limits.max_recipients,
                                                                          config.smtp.future_release_max), profiles),
                    logins=logins, traffic=traffic, profiles=profiles, sieve=sieve, lists=mailing_lists,
                    list_mail=list_mail, mail=reader,
                    compose=MailSender(reader, mailstore, folders, submitter, ingest, hostname,
                                       config.smtp.future_release_max, accounts, queue),
                    contacts=AddressBook(stores.contacts, accounts), prefs=UserPrefs(stores.contacts))


def web_url(config: Config) -> str:
    """Where members reach this node's web side (one-click unsubscription links): ``lists.web_url``, else
    the https listener under the server's host name, else nowhere."""
    if config.lists.web_url:
        return config.lists.web_url
    port = config.listeners.https.port
    if not port:
        return ""
    return f"https://{config.server.hostname}" + ("" if port == 443 else f":{port}")


def make_runner(config: Config, services: Services, stores: Stores) -> QueueRunner:
    """The queue runner of this node, with our own SMTP client (clients.smtp) as its transport."""
    delivery = config.delivery
    client = SmtpClient(connect_timeout=delivery.connect_timeout, command_timeout=delivery.command_timeout,
                        ca_file=delivery.tls_ca_file or None)
    remote = RemoteDelivery(client, delivery.helo_name or config.server.hostname, delivery.idle_timeout,
                            delivery.destination_backoff, Slots(delivery.concurrency, delivery.destination_concurrency))
    return QueueRunner(store=stores.queue, settings=stores.settings, router=services.router,
                       ingest=services.ingest, submitter=services.submitter, blobs=stores.blobs,
                       nexthops=NextHops(delivery, stores.routing, services.secrets), remote=remote, config=delivery,
                       owner=config.server.node_id or config.server.hostname, hostname=config.server.hostname)
