"""Administrative actions, the same for the command line, the REST API and (later) the admin pages, each
written to the audit log (issue #11): who, what, the object before and after, when, from where. Passwords
and token secrets never reach the log.

Covered so far: domains, users, aliases, API tokens, routes, relay networks, DKIM keys, the queue, the
block and allow lists, the quarantine, the spam settings, fetch accounts, stored secrets (their values
never), who may administer in the browser, and mailing lists (their settings, members and moderation).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, TypeVar

from dizimail.i18n.catalog import translate
from dizimail.interfaces.audit import AuditStore
from dizimail.model.access import ListName
from dizimail.model.audit import Actor, AuditEntry
from dizimail.model.domains import DomainProfile, Registration
from dizimail.model.errors import Conflict, MailError, NotFound
from dizimail.model.lists import MailingList
from dizimail.model.outbound import DkimKey, FetchAccount, Route
from dizimail.model.spam import SpamSetting
from dizimail.model.tokens import AdminGrant, ApiToken, Role
from dizimail.model.types import Account, CommitResult, Domain
from dizimail.services.access import AccessLists, ImportResult, personal_patterns
from dizimail.services.accounts import AccountService, normalize_address, normalize_domain
from dizimail.services.content.settings import SpamSettings
from dizimail.services.dkim import DkimService, record_name
from dizimail.services.domains import DomainProfiles
from dizimail.services.fetch import FetchService
from dizimail.services.notice import Notices
from dizimail.services.policy.relay import RelayNetworks
from dizimail.services.quarantine import Quarantine
from dizimail.services.queue import QueueService
from dizimail.services.route_table import RouteTable
from dizimail.services.secretbox import Secrets
from dizimail.services.tokens import TokenService
from dizimail.services.usercsv import parse_user_csv, problem_text
from dizimail.services.weblogin import WebLogins

log = logging.getLogger("dizimail.audit")
MAX_ENTRIES = 1000  # one page of the log at most
IMPORT_BATCH = 250  # users hashed and stored at a time by a CSV import
R = TypeVar("R")


def _user(a: Account | None) -> dict[str, Any] | None:
    return None if a is None else {"address": a.address, "name": a.name, "status": str(a.status),
                                   "quota_bytes": a.quota_bytes}


def _domain(d: Domain | None) -> dict[str, Any] | None:
    return None if d is None else {"name": d.name, "status": str(d.status), "alias_of": d.alias_of}


def _route(r: Route | None) -> dict[str, Any] | None:
    return None if r is None else {"domain": r.domain, "kind": r.kind, "host": r.host, "port": r.port}


def _key(k: DkimKey | None) -> dict[str, Any] | None:
    """The public half only (the record to publish): a private key never reaches the log."""
    return None if k is None else {"record": record_name(k), "public_key": k.public_key}


def _held(e: Any) -> dict[str, Any]:
    return {"kind": e.kind, "reason": e.reason, "sender": e.sender, "recipients": list(e.recipients),
            "subject": e.subject}


def _setting(s: SpamSetting | None) -> dict[str, Any] | None:
    return None if s is None else {"tag_at": s.tag_at, "junk_at": s.junk_at, "reject_at": s.reject_at,
                                   "personal": s.personal}


def _fetch(a: FetchAccount) -> dict[str, Any]:
    """Never the password."""
    return {"host": a.host, "port": a.port, "protocol": a.protocol, "security": a.security, "verify": a.verify,
            "username": a.username, "into": a.account, "interval": a.interval, "keep": a.keep}


def list_state(m: MailingList | None) -> dict[str, Any] | None:
    """A mailing list's settings as the audit log keeps them (its members are logged by their changes)."""
    return None if m is None else {"address": m.address, "name": m.name, "description": m.description,
                                   "policy": m.policy, "senders": list(m.senders), "moderators": list(m.moderators),
                                   "subscription": m.subscription, "archive": m.archive,
                                   "bounce_limit": m.bounce_limit}


def _token(t: ApiToken) -> dict[str, Any]:
    return {"id": t.id, "role": str(t.role), "user": t.subject, "domains": list(t.domains), "label": t.label,
            "expires": t.expires or None, "revoked": t.revoked}


@dataclass(frozen=True)
class AuditQuery:
    domains: tuple[str, ...] | None = None  # None: every entry (a system admin)
    actor: str = ""
    action: str = ""
    since: float = 0.0
    until: float = 0.0
    before_id: int = 0
    limit: int = 100


class AdminActions:
    def __init__(self, accounts: AccountService, tokens: TokenService, store: AuditStore, routes: RouteTable,
                 relay: RelayNetworks, dkim: DkimService, queue: QueueService, access: AccessLists,
                 quarantine: Quarantine, spam_settings: SpamSettings, fetch: FetchService, secrets: Secrets,
                 logins: WebLogins, notices: Notices, profiles: DomainProfiles) -> None:
        self.accounts = accounts
        self.tokens = tokens
        self.store = store
        self.routes = routes
        self.relay = relay
        self.dkim = dkim
        self.queue = queue
        self.access = access
        self.quarantine = quarantine
        self.spam_settings = spam_settings
        self.fetch = fetch
        self.secrets = secrets
        self.logins = logins
        self.notices = notices
        self.profiles = profiles

    async def _record(self, actor: Actor, action: str, target: str, domain: str, before: Any, after: Any) -> None:
        def text(state: Any) -> str:
            return "" if state is None else json.dumps(state, ensure_ascii=False, sort_keys=True)
        await self.store.append_audit(time.time(), actor.name, actor.role, actor.ip, action, target, domain,
                                      text(before), text(after))
        log.info("audit action=%s target=%s actor=%s ip=%s", action, target, actor.name, actor.ip or "-")

    async def _find_domain(self, name: str) -> Domain | None:
        return next((d for d in await self.accounts.list_domains() if d.name == name), None)

    async def _find_user(self, address: str) -> Account | None:
        try:
            return await self.accounts.get_user(address)
        except MailError:  # gone (or never there): no state
            return None

    # --- domains ----------------------------------------------------------------------------------
    async def add_domain(self, actor: Actor, name: str, alias_of: str | None = None) -> Domain:
        domain = await self.accounts.add_domain(name, alias_of)
        await self._record(actor, "domain.add", domain.name, domain.name, None, _domain(domain))
        return domain

    async def remove_domain(self, actor: Actor, name: str) -> None:
        normalized = normalize_domain(name)
        before = await self._find_domain(normalized)
        await self.accounts.remove_domain(normalized)
        await self.profiles.forget(normalized)
        await self._record(actor, "domain.remove", normalized, normalized, _domain(before), None)

    async def set_domain_active(self, actor: Actor, name: str, active: bool) -> None:
        normalized = normalize_domain(name)
        before = await self._find_domain(normalized)
        await self.accounts.set_domain_active(normalized, active)
        await self._record(actor, "domain.resume" if active else "domain.suspend", normalized, normalized,
                           _domain(before), _domain(await self._find_domain(normalized)))

    # --- users ------------------------------------------------------------------------------------
    async def add_user(self, actor: Actor, address: str, password: str, name: str = "", quota_bytes: int = 0) -> Account:
        await self.profiles.admit(_domain_of(normalize_address(address)), quota_bytes)
        await self.accounts.add_user(address, password, name, quota_bytes)
        account = await self.accounts.get_user(address)
        await self._record(actor, "user.add", account.address, _domain_of(account.address), None, _user(account))
        return account

    async def import_users(self, actor: Actor, rows: list[tuple[str, str, str, int]]) -> list[str | None]:
        """``accounts.add_users``, within each domain's limits; one entry for the import, listing the addresses
        added."""
        limited: list[str | None] = [None] * len(rows)
        by_domain: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            try:
                by_domain.setdefault(_domain_of(normalize_address(row[0])), []).append(i)
            except MailError:
                pass  # a bad address: add_users says why
        for domain, indexes in by_domain.items():
            for i, verdict in zip(indexes, await self.profiles.admit_each(domain, [rows[i][3] for i in indexes]),
                                  strict=True):
                limited[i] = verdict
        allowed = [i for i, v in enumerate(limited) if v is None]
        added_errors = await self.accounts.add_users([rows[i] for i in allowed])
        errors = list(limited)
        for i, error in zip(allowed, added_errors, strict=True):
            errors[i] = error
        added = [normalize_address(r[0]) for r, e in zip(rows, errors, strict=True) if e is None]
        for domain in sorted({_domain_of(a) for a in added}):
            mine = [a for a in added if _domain_of(a) == domain]
            await self._record(actor, "user.import", f"{len(mine)} users", domain, None, {"added": mine})
        return errors

    async def import_csv(self, actor: Actor, text: str, lang: str = "en", domain: str | None = None,
                         progress: Callable[[int, int], None] | None = None) -> tuple[int, list[tuple[int, str]]]:
        """Users from CSV text (``address,password[,quota,name]``, or with a header as ``user export``
        writes it: hashes are kept), the same for the command line, the API and the pages: how many were
        imported, and each refused line with its reason in ``lang`` (with ``domain``, rows for another
        domain too). ``progress(done, total)`` after each batch (of IMPORT_BATCH: logins' hashing is not
        kept waiting long)."""
        rows, problems = parse_user_csv(text)
        rejected = [(p[0], problem_text(p, lang)) for p in problems]
        mine = []
        for lineno, row in rows:
            try:
                elsewhere = domain is not None and _domain_of(normalize_address(row[0])) != domain
            except MailError:
                elsewhere = False  # a bad address: import_users says why
            if elsewhere:
                rejected.append((lineno, f"{row[0]}: {translate('not_in_domain', lang)}"))
            else:
                mine.append((lineno, row))
        imported = 0
        if progress is not None:
            progress(0, len(mine))
        for start in range(0, len(mine), IMPORT_BATCH):
            batch = mine[start:start + IMPORT_BATCH]
            for (lineno, row), error in zip(batch, await self.import_users(actor, [r for _, r in batch]), strict=True):
                if error is None:
                    imported += 1
                else:
                    rejected.append((lineno, f"{row[0]}: {translate(error, lang)}"))
            if progress is not None:
                progress(start + len(batch), len(mine))
        return imported, sorted(rejected)

    async def _change_user(self, actor: Actor, action: str, address: str,
                           change: Callable[[str], Awaitable[None]]) -> None:
        normalized = normalize_address(address)
        before = await self.accounts.get_user(normalized)
        await change(normalized)
        await self._record(actor, action, normalized, _domain_of(normalized), _user(before),
                           _user(await self._find_user(normalized)))

    async def remove_user(self, actor: Actor, address: str) -> None:
        await self._change_user(actor, "user.remove", address, self.accounts.remove_user)

    async def set_password(self, actor: Actor, address: str, password: str) -> None:
        await self._change_user(actor, "user.password", address,
                                lambda a: self.accounts.set_password(a, password))

    async def set_user_active(self, actor: Actor, address: str, active: bool) -> None:
        await self._change_user(actor, "user.resume" if active else "user.suspend", address,
                                lambda a: self.accounts.set_user_active(a, active))

    async def set_quota(self, actor: Actor, address: str, quota_bytes: int) -> None:
        await self.profiles.admit_quota(normalize_address(address), quota_bytes)
        await self._change_user(actor, "user.quota", address, lambda a: self.accounts.set_quota(a, quota_bytes))

    async def set_name(self, actor: Actor, address: str, name: str) -> None:
        await self._change_user(actor, "user.name", address, lambda a: self.accounts.set_name(a, name))

    async def change_sieve(self, actor: Actor, action: str, address: str, name: str,
                           change: Callable[[Account], Awaitable[None]]) -> None:
        """A user's Sieve scripts changed by an administrator (``sieve.put``, ``sieve.activate`` ...)."""
        account = await self.accounts.get_user(normalize_address(address))
        await change(account)
        await self._record(actor, action, account.address, _domain_of(account.address), None, {"script": name})

    async def change_list(self, actor: Actor, action: str, address: str, change: Callable[[], Awaitable[R]],
                          before: Any = None, after: Callable[[R], Any] | None = None) -> R:
        """A mailing list changed by an administrator (``list.add``, ``list.policy``, ``list.remove``,
        ``list.members.add``, ``list.members.remove``, ``list.approve``, ``list.reject``): ``change`` runs
        first (a change the service refuses is not logged); ``before`` is the state it replaces, ``after``
        makes the new one from its result. ``address``: the list's, as stored."""
        result = await change()
        await self._record(actor, action, address, _domain_of(address), before,
                           after(result) if after is not None else None)
        return result

    # --- per-domain settings and self-registration -----------------------------------------------------
    async def change_domain(self, actor: Actor, domain: str, **changes: Any) -> DomainProfile:
        before = await self.profiles.profile(domain)
        after = await self.profiles.change(domain, **changes)
        await self._record(actor, "domain.settings", after.domain, after.domain, asdict(before), asdict(after))
        return after

    async def set_logo(self, actor: Actor, domain: str, data: bytes | None) -> None:
        await self.profiles.set_logo(domain, data)
        name = normalize_domain(domain)
        await self._record(actor, "domain.logo", name, name, None, {"bytes": len(data or b"")})

    async def approve(self, actor: Actor, reg_id: int, domains: tuple[str, ...] | None = None) -> Account:
        """Make the mailbox a registration asked for (``domains``: those the actor reaches; None: every one)."""
        reg = await self._registration(reg_id, domains)
        await self.profiles.admit(reg.domain, 0)
        await self.profiles.take(reg_id)
        errors = await self.accounts.add_users([(reg.address, reg.password_hash, reg.name, 0)])
        if errors[0] is not None:
            raise Conflict(errors[0])
        account = await self.accounts.get_user(reg.address)
        await self._record(actor, "registration.approve", reg.address, reg.domain, None, _user(account))
        return account

    async def reject(self, actor: Actor, reg_id: int, domains: tuple[str, ...] | None = None) -> None:
        reg = await self._registration(reg_id, domains)
        await self.profiles.take(reg_id)
        await self._record(actor, "registration.reject", reg.address, reg.domain,
                           {"address": reg.address, "name": reg.name, "ip": reg.ip}, None)

    async def _registration(self, reg_id: int, domains: tuple[str, ...] | None) -> Registration:
        found = next((r for r in await self.profiles.pending() if r.id == reg_id), None)
        if found is None or (domains is not None and found.domain not in domains):
            raise NotFound("unknown_registration", str(reg_id))
        return found

    # --- aliases ----------------------------------------------------------------------------------
    async def add_alias(self, actor: Actor, address: str, targets: list[str]) -> None:
        await self.accounts.add_alias(address, targets)
        normalized = normalize_address(address)
        await self._record(actor, "alias.add", normalized, _domain_of(normalized), None, {"targets": targets})

    async def remove_alias(self, actor: Actor, address: str) -> None:
        normalized = normalize_address(address)
        before = next((a for a in await self.accounts.list_aliases(_domain_of(normalized)) if a.address == normalized),
                      None)
        await self.accounts.remove_alias(normalized)
        await self._record(actor, "alias.remove", normalized, _domain_of(normalized),
                           {"targets": list(before.targets)} if before else None, None)

    # --- API tokens -------------------------------------------------------------------------------
    async def create_token(self, actor: Actor, role: Role, *, domains: list[str] | None = None, user: str = "",
                           label: str = "", lifetime: float = 0) -> tuple[ApiToken, str]:
        token, secret = await self.tokens.create(role, domains=domains, user=user, label=label, lifetime=lifetime)
        await self._record(actor, "token.create", str(token.id), _scope(token), None, _token(token))
        return token, secret

    async def revoke_token(self, actor: Actor, token_id: int) -> None:
        before = next((t for t in await self.tokens.list() if t.id == token_id), None)
        await self.tokens.revoke(token_id)
        after = next((t for t in await self.tokens.list() if t.id == token_id), None)
        assert before is not None and after is not None
        await self._record(actor, "token.revoke", str(token_id), _scope(before), _token(before), _token(after))

    # --- mail flow: routes, relay networks, DKIM keys -------------------------------------------------
    async def add_route(self, actor: Actor, domain: str, target: str) -> Route:
        before = await self.routes.get(domain)
        route = await self.routes.add(domain, target)
        await self._record(actor, "route.add", route.domain, "", _route(before), _route(route))
        return route

    async def remove_route(self, actor: Actor, domain: str) -> None:
        before = await self.routes.get(domain)
        await self.routes.remove(domain)
        await self._record(actor, "route.remove", before.domain if before else domain, "", _route(before), None)

    async def allow_relay(self, actor: Actor, network: str) -> str:
        added = await self.relay.allow(network)
        await self._record(actor, "relay.allow", added, "", None, {"network": added})
        return added

    async def remove_relay(self, actor: Actor, network: str) -> None:
        await self.relay.remove(network)
        await self._record(actor, "relay.remove", network, "", {"network": network}, None)

    async def generate_dkim(self, actor: Actor, domain: str, bits: int = 2048) -> DkimKey:
        before = await self.dkim.key_for(f"x@{normalize_domain(domain)}")
        key = await self.dkim.generate(domain, bits)
        await self._record(actor, "dkim.generate", key.domain, key.domain, _key(before), _key(key))
        return key

    # --- the outbound queue --------------------------------------------------------------------------
    async def queue_act(self, actor: Actor, action: str, queue_id: str | None) -> int:
        """``retry`` (now), ``hold`` or ``release`` one message, or every one (None); how many changed."""
        act = {"retry": self.queue.retry, "hold": self.queue.hold, "release": self.queue.release}[action]
        count = await act(queue_id)
        await self._record(actor, f"queue.{action}", queue_id or "all", "", None, {"messages": count})
        return count

    async def queue_delete(self, actor: Actor, queue_id: str) -> None:
        item = await self.queue.show(queue_id)
        await self.queue.delete(queue_id)
        await self._record(actor, "queue.delete", queue_id, "", {"sender": item.sender, "size": item.size,
                           "recipients": [r.address for r in item.recipients]}, None)

    async def set_concurrency(self, actor: Actor, total: int | None, per_destination: int | None,
                              defaults: tuple[int, int]) -> tuple[int, int]:
        before = await self.queue.concurrency(*defaults)
        await self.queue.set_concurrency(total, per_destination)
        after = await self.queue.concurrency(*defaults)
        if after != before:
            await self._record(actor, "queue.concurrency", "delivery", "",
                               {"total": before[0], "per_destination": before[1]},
                               {"total": after[0], "per_destination": after[1]})
        return after

    # --- anti-spam: block and allow lists, quarantine, settings -------------------------------------
    async def list_add(self, actor: Actor, name: ListName, patterns: list[str], domain: str | None,
                       note: str = "") -> int:
        added = await self.access.add(name, patterns, domain, note)
        scope = normalize_domain(domain) if domain else ""
        await self._record(actor, f"{name}.add", ", ".join(patterns)[:500], scope, None,
                           {"patterns": patterns, "note": note, "added": added})
        return added

    async def list_remove(self, actor: Actor, name: ListName, pattern: str, domain: str | None) -> str:
        removed = await self.access.remove(name, pattern, domain)
        await self._record(actor, f"{name}.remove", removed, normalize_domain(domain) if domain else "",
                           {"pattern": removed}, None)
        return removed

    async def list_import(self, actor: Actor, name: ListName, lines: list[str], domain: str | None) -> ImportResult:
        result = await self.access.import_lines(name, lines, domain)
        await self._record(actor, f"{name}.import", f"{len(lines)} lines", normalize_domain(domain) if domain else "",
                           None, {"added": result.added, "listed": result.listed, "rejected": len(result.errors)})
        return result

    async def quarantine_release(self, actor: Actor, entry_id: int, learn: bool = True) -> CommitResult:
        entry = await self.quarantine.get(entry_id)
        result = await self.quarantine.release(entry_id, learn=learn)
        await self._record(actor, "quarantine.release", str(entry_id), "", _held(entry),
                           {"delivered": len(result.delivered), "learnt_ham": learn and entry.kind == "spam"})
        return result

    async def quarantine_delete(self, actor: Actor, entry_id: int) -> None:
        entry = await self.quarantine.get(entry_id)
        await self.quarantine.delete(entry_id)
        await self._record(actor, "quarantine.delete", str(entry_id), "", _held(entry), None)

    async def set_spam(self, actor: Actor, scope: str, **values: Any) -> SpamSetting:
        before = next((e for e in await self.spam_settings.entries() if e.scope == scope), None)
        after = await self.spam_settings.set(scope, **values)
        await self._record(actor, "spam.settings", scope, _domain_of(scope) if "@" in scope else scope,
                           _setting(before), _setting(after))
        return after

    async def remove_spam(self, actor: Actor, scope: str) -> None:
        before = next((e for e in await self.spam_settings.entries() if e.scope == scope), None)
        await self.spam_settings.remove(scope)
        await self._record(actor, "spam.settings.remove", scope, _domain_of(scope) if "@" in scope else scope,
                           _setting(before), None)

    # --- fetch accounts and stored secrets ----------------------------------------------------------
    async def fetch_add(self, actor: Actor, acc: FetchAccount) -> int:
        if acc.account:  # delivered into a local user's INBOX: one that exists
            acc = replace(acc, account=(await self.accounts.get_user(normalize_address(acc.account))).address)
        fetch_id = await self.fetch.add(acc)
        await self._record(actor, "fetch.add", str(fetch_id), _domain_of(acc.account) if acc.account else "", None,
                           _fetch(acc))
        return fetch_id

    async def personal_lists(self, actor: Actor, address: str, allow: list[str], block: list[str]) -> None:
        """A user's own allow and block lists of senders (webmail settings), each replaced whole."""
        personal_patterns(allow), personal_patterns(block)  # both checked before either changes
        before = await self.access.personal(address)
        after = {str(name): await self.access.set_personal(address, name, patterns)
                 for name, patterns in ((ListName.ALLOW, allow), (ListName.BLOCK, block))}
        await self._record(actor, "access.personal", address, _domain_of(address),
                           {str(k): v for k, v in before.items()}, after)

    async def fetch_add_own(self, actor: Actor, address: str, acc: FetchAccount) -> int:
        """A user's own external mailbox (webmail settings: the checks of services.fetch.add_own)."""
        fetch_id = await self.fetch.add_own(address, acc)
        await self._record(actor, "fetch.add", str(fetch_id), _domain_of(address), None,
                           _fetch(replace(acc, account=address)))
        return fetch_id

    async def fetch_remove_own(self, actor: Actor, address: str, fetch_id: int) -> None:
        before = next((a for a in await self.fetch.own(address) if a.id == fetch_id), None)
        await self.fetch.remove_own(address, fetch_id)
        await self._record(actor, "fetch.remove", str(fetch_id), _domain_of(address), before and _fetch(before), None)

    async def fetch_remove(self, actor: Actor, fetch_id: int) -> None:
        before = next((a for a in await self.fetch.list() if a.id == fetch_id), None)
        if before is None:
            raise NotFound("not_found", str(fetch_id))
        await self.fetch.remove(fetch_id)
        await self._record(actor, "fetch.remove", str(fetch_id), _domain_of(before.account) if before.account else "",
                           _fetch(before), None)

    async def secret_set(self, actor: Actor, name: str, value: str) -> None:
        before = dict(await self.secrets.list()).get(name)
        await self.secrets.set(name, value)
        await self._record(actor, "secret.set" if value else "secret.remove", name, "", {"stored": bool(before)},
                           {"stored": bool(value)})

    # --- who administers in the browser ---------------------------------------------------------------
    async def grant_admin(self, actor: Actor, address: str, role: Role, domains: list[str]) -> AdminGrant:
        before = await self.logins.get_grant(address)
        grant = await self.logins.grant(address, role, domains)
        await self._record(actor, "admin.grant", grant.address, _grant_scope(grant), _grant(before), _grant(grant))
        return grant

    async def revoke_admin(self, actor: Actor, address: str) -> None:
        before = await self.logins.get_grant(address)
        await self.logins.revoke(address)
        assert before is not None
        await self._record(actor, "admin.revoke", before.address, _grant_scope(before), _grant(before), None)

    async def totp_setup(self, actor: Actor, address: str) -> tuple[str, str]:
        secret, uri = await self.logins.totp_setup(address)
        grant = await self.logins.get_grant(address)
        assert grant is not None
        await self._record(actor, "admin.totp", grant.address, _grant_scope(grant), None, _grant(grant))
        return secret, uri

    async def totp_off(self, actor: Actor, address: str) -> None:
        before = await self.logins.get_grant(address)
        await self.logins.totp_off(address)
        assert before is not None
        await self._record(actor, "admin.totp_off", before.address, _grant_scope(before), _grant(before),
                           _grant(await self.logins.get_grant(address)))

    # --- broadcast notices ------------------------------------------------------------------------------
    async def send_notice(self, actor: Actor, subject: str, body: str, domain: str | None,
                          release_at: float | None = None) -> int:
        if domain is not None:
            domain = normalize_domain(domain)
            if await self._find_domain(domain) is None:
                raise NotFound("unknown_domain", domain)
        delivered = await self.notices.send(subject, body, domain, release_at)
        await self._record(actor, "notice.send", domain or "*", domain or "", None,
                           {"subject": subject.strip(), "recipients": delivered,
                            **({"release_at": round(release_at)} if release_at is not None else {})})
        return delivered

    # --- the log ----------------------------------------------------------------------------------
    async def entries(self, query: AuditQuery) -> list[AuditEntry]:
        return await self.store.audit_entries(domains=query.domains, actor=query.actor, action=query.action,
                                              since=query.since, until=query.until, before_id=query.before_id,
                                              limit=max(1, min(query.limit, MAX_ENTRIES)))


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def _grant(g: AdminGrant | None) -> dict[str, Any] | None:
    return None if g is None else {"address": g.address, "role": str(g.role), "domains": list(g.domains),
                                   "totp": g.totp}


def _grant_scope(g: AdminGrant) -> str:
    return g.domains[0] if len(g.domains) == 1 else ""


def _scope(token: ApiToken) -> str:
    """The domain a token's entry belongs to: a user's, a domain admin's only one; else the system's."""
    if token.subject:
        return _domain_of(token.subject)
    return token.domains[0] if len(token.domains) == 1 else ""


def entry_dict(e: AuditEntry) -> dict[str, Any]:
    d = asdict(e)
    for key in ("before", "after"):
        d[key] = json.loads(d[key]) if d[key] else None
    return d
