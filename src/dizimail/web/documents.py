"""The REST API's documents (issue #11): what each route takes and answers, as pydantic models; their
JSON Schema is the OpenAPI document's. Unknown fields are refused (``Strict``); every number is bounded.

No ``from __future__ import annotations``: pydantic and FastAPI read the annotations at run time."""

import time
from dataclasses import asdict
from typing import Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from dizimail.model.access import AccessEntry
from dizimail.model.audit import AuditEntry
from dizimail.model.domains import DomainProfile, Registration
from dizimail.model.outbound import DkimKey, FetchAccount, QueueItem, Route
from dizimail.model.spam import SpamSetting
from dizimail.model.tokens import AdminGrant, ApiToken, Role
from dizimail.model.traffic import DomainUsage
from dizimail.model.types import Account, Alias, Domain, Quarantined, QueueEntry
from dizimail.services.admin import entry_dict
from dizimail.services.dkim import record_name, txt_record

MAX_BODY = 1 << 20  # bytes of a request body
MAX_INT = (1 << 62) - 1  # what SQLite's INTEGER holds, with room: larger numbers are refused (422), not stored
MAX_TIME = 1e11  # seconds since 1970: year 5138


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(Strict):
    """Every error: a key and its text in the caller's language (Accept-Language: zh_CN or en)."""

    error: str
    message: str
    detail: str | None = None


ERRORS = {400: "Bad request", 401: "No valid token", 403: "Not allowed for this token",
          404: "Not found, or not reachable with this token", 409: "Conflicts with what exists",
          413: "Body too large", 422: "Invalid request", 429: "Client locked out after failed logins",
          503: "Temporarily unavailable"}


class DomainIn(Strict):
    name: str = Field(min_length=1, max_length=253)
    alias_of: str | None = Field(None, max_length=253)


class DomainOut(Strict):
    name: str
    status: str
    alias_of: str | None

    @classmethod
    def of(cls, d: Domain) -> Self:
        return cls(name=d.name, status=str(d.status), alias_of=d.alias_of)


class AliasIn(Strict):
    local_part: str = Field(min_length=1, max_length=64)
    targets: list[str] = Field(min_length=1, max_length=1000)


class AliasOut(Strict):
    address: str
    targets: list[str]

    @classmethod
    def of(cls, a: Alias) -> Self:
        return cls(address=a.address, targets=list(a.targets))


class RouteIn(Strict):
    domain: str = Field(min_length=1, max_length=253)
    target: str = Field(min_length=1, max_length=330, description="HOST[:PORT] or hold:USER")


class RouteOut(Strict):
    domain: str
    kind: str
    host: str
    port: int | None

    @classmethod
    def of(cls, r: Route) -> Self:
        return cls(domain=r.domain, kind=r.kind, host=r.host, port=r.port if r.kind == "smtp" else None)


class RelayIn(Strict):
    network: str = Field(min_length=1, max_length=64)


class RelayOut(Strict):
    network: str
    source: str


class DkimIn(Strict):
    bits: int = Field(2048, ge=1024, le=4096)


class DkimOut(Strict):
    domain: str
    selector: str
    record_name: str
    txt: str

    @classmethod
    def of(cls, k: DkimKey) -> Self:
        return cls(domain=k.domain, selector=k.selector, record_name=record_name(k), txt=txt_record(k))


class QueuedRcpt(Strict):
    address: str
    status: str
    attempts: int
    next_attempt: float
    last_error: str


class QueuedOut(Strict):
    queue_id: str
    created: float
    size: int
    sender: str
    held: bool
    recipients: list[QueuedRcpt]

    @classmethod
    def of(cls, e: QueueEntry | QueueItem) -> Self:
        return cls(queue_id=e.queue_id, created=e.created, size=e.size, sender=e.sender, held=e.held,
                   recipients=[QueuedRcpt(address=r.address, status=str(r.status), attempts=r.attempts,
                                          next_attempt=r.next_attempt, last_error=r.last_error) for r in e.recipients])


class QueueItemOut(QueuedOut):
    params: dict[str, str]
    headers: str


class QueueAct(Strict):
    queue_id: str | None = Field(None, max_length=64, description="null: every message")


class QueueActed(Strict):
    messages: int


class ConcurrencyIn(Strict):
    total: int | None = Field(None, ge=1, le=1000)
    per_destination: int | None = Field(None, ge=1, le=1000)


class Concurrency(Strict):
    total: int
    per_destination: int


class ListIn(Strict):
    patterns: list[str] = Field(min_length=1, max_length=1000)
    domain: str | None = Field(None, max_length=253, description="null: the whole server (admins)")
    note: str = Field("", max_length=200)


class ListAdded(Strict):
    added: int


class ListImport(Strict):
    lines: list[str] = Field(max_length=100_000)
    domain: str | None = Field(None, max_length=253)


class ListLineError(Strict):
    line: int
    text: str
    why: str


class ListImported(Strict):
    added: int
    listed: int
    rejected: list[ListLineError]


class ListEntryOut(Strict):
    list: str
    domain: str | None
    pattern: str
    note: str
    created: float

    @classmethod
    def of(cls, e: AccessEntry) -> Self:
        return cls(list=str(e.list), domain=e.scope or None, pattern=e.pattern, note=e.note, created=e.created)


class Finding(Strict):
    check: str
    result: str
    points: float
    reason: str


class HeldOut(Strict):
    id: int
    queue_id: str
    kind: str
    reason: str
    score: float
    sender: str
    recipients: list[str]
    from_: str = Field(alias="from")
    subject: str
    size: int
    created: float
    expires: float
    findings: list[Finding]

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @classmethod
    def of(cls, e: Quarantined) -> Self:
        return cls(id=e.id, queue_id=e.queue_id, kind=e.kind, reason=e.reason, score=e.score, sender=e.sender,
                   recipients=list(e.recipients), from_=e.from_, subject=e.subject, size=e.size, created=e.created,
                   expires=e.expires, findings=[Finding(check=c, result=r, points=p, reason=w)
                                                for c, r, p, w in e.findings])


class ReleaseIn(Strict):
    learn: bool = True


class Released(Strict):
    delivered: int
    over_quota: list[str]


class SpamSettingIn(Strict):
    tag_at: float | None = Field(None, ge=0, le=10.5)
    junk_at: float | None = Field(None, ge=0, le=10.5)
    reject_at: float | None = Field(None, ge=0, le=10.5)
    personal: bool | None = None


class SpamSettingOut(Strict):
    scope: str
    tag_at: float | None
    junk_at: float | None
    reject_at: float | None
    personal: bool | None
    updated: float

    @classmethod
    def of(cls, e: SpamSetting) -> Self:
        return cls(scope=e.scope, tag_at=e.tag_at, junk_at=e.junk_at, reject_at=e.reject_at, personal=e.personal,
                   updated=e.updated)


class FetchIn(Strict):
    server: str = Field(min_length=1, max_length=300, description="HOST[:PORT]")
    username: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    protocol: Literal["pop3", "imap"] = "pop3"
    security: Literal["tls", "starttls", "none"] = "tls"
    into: str | None = Field(None, max_length=320, description="a local user; null: poll mode (envelope)")
    interval_seconds: float = Field(120, ge=10, le=7 * 86400)
    keep: bool = False
    verify: bool = True


class FetchOut(Strict):
    id: int
    host: str
    port: int
    username: str
    protocol: str
    security: str
    verify: bool
    mode: str
    into: str | None
    interval: float
    keep: bool
    last_run: float | None
    last_error: str

    @classmethod
    def of(cls, a: FetchAccount) -> Self:
        return cls(id=a.id, host=a.host, port=a.port, username=a.username, protocol=a.protocol, security=a.security,
                   verify=a.verify, mode=a.mode, into=a.account, interval=a.interval, keep=a.keep,
                   last_run=a.last_run or None, last_error=a.last_error)


class SecretIn(Strict):
    value: str = Field(min_length=1, max_length=1024)


class SecretOut(Strict):
    name: str
    set: bool


class TokenIn(Strict):
    role: Role
    domains: list[str] = Field(default_factory=list, max_length=100)
    user: str = Field("", max_length=320)
    label: str = Field("", max_length=200)
    lifetime_seconds: float = Field(90 * 86400, ge=0, le=10 * 365 * 86400, description="0: until revoked")


class TokenInfo(Strict):
    id: int
    role: str
    user: str
    domains: list[str]
    label: str
    created: float
    expires: float | None
    state: str

    @classmethod
    def of(cls, t: ApiToken) -> Self:
        state = "revoked" if t.revoked else "active" if t.live(time.time()) else "expired"
        return cls(id=t.id, role=str(t.role), user=t.subject, domains=list(t.domains), label=t.label, created=t.created,
                   expires=t.expires or None, state=state)


class NewToken(Strict):
    token: TokenInfo
    secret: str


class AuditOut(Strict):
    id: int
    at: float
    actor: str
    role: str
    ip: str
    action: str
    target: str
    domain: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @classmethod
    def of(cls, e: AuditEntry) -> Self:
        return cls(**entry_dict(e))


class DomainPatch(Strict):
    status: Literal["active", "suspended"]


class UserPatch(Strict):
    password: str | None = Field(None, min_length=1, max_length=1024)
    name: str | None = Field(None, max_length=200)
    status: Literal["active", "suspended"] | None = None
    quota_bytes: int | None = Field(None, ge=0, le=MAX_INT)


class ImportIn(Strict):
    csv: str = Field(max_length=MAX_BODY)


class ImportError_(Strict):
    line: int
    why: str


class Imported(Strict):
    imported: int
    rejected: list[ImportError_]


class UserIn(Strict):
    local_part: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    name: str = Field("", max_length=200)
    quota_bytes: int = Field(0, ge=0, le=MAX_INT)


class UserOut(Strict):
    address: str
    name: str
    status: str
    quota_bytes: int
    used_bytes: int
    messages: int

    @classmethod
    def of(cls, a: Account) -> Self:
        return cls(address=a.address, name=a.name, status=str(a.status), quota_bytes=a.quota_bytes,
                   used_bytes=a.used_bytes, messages=a.message_count)




class GrantIn(Strict):
    role: Literal["admin", "domain-admin"]
    domains: list[str] = Field(default_factory=list, max_length=100)


class GrantOut(Strict):
    address: str
    role: str
    domains: list[str]
    totp: bool

    @classmethod
    def of(cls, g: AdminGrant) -> Self:
        return cls(address=g.address, role=str(g.role), domains=list(g.domains), totp=g.totp)


class TotpOut(Strict):
    secret: str
    uri: str


class NoticeIn(Strict):
    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=100_000)
    domain: str | None = Field(None, max_length=253, description="every user of this domain; null: of every domain")
    at: AwareDatetime | None = Field(None, description=(
        "send it then (RFC 3339 with its zone); until then it waits in the queue, where DELETE /queue/{id} "
        "cancels it"))


class NoticeOut(Strict):
    delivered: int = Field(description="mailboxes it went to (or, sent later, will go to)")


class UsageOut(Strict):
    domain: str
    mailboxes: int
    used_bytes: int
    messages_in: int
    bytes_in: int
    messages_out: int
    bytes_out: int

    @classmethod
    def of(cls, u: DomainUsage) -> Self:
        return cls(**asdict(u))


class DomainSettings(Strict):
    domain: str
    display_name: str
    logo: bool
    quota_bytes: int
    max_users: int
    self_registration: bool

    @classmethod
    def of(cls, p: DomainProfile) -> Self:
        return cls(domain=p.domain, display_name=p.display_name, logo=bool(p.logo_type), quota_bytes=p.quota_bytes,
                   max_users=p.max_users, self_registration=p.self_registration)


class DomainSettingsIn(Strict):
    display_name: str | None = Field(None, max_length=100)
    quota_bytes: int | None = Field(None, ge=0, le=MAX_INT, description="system admins only")
    max_users: int | None = Field(None, ge=0, le=MAX_INT, description="system admins only")
    self_registration: bool | None = None


class RegistrationOut(Strict):
    id: int
    address: str
    name: str
    created: float
    ip: str

    @classmethod
    def of(cls, r: Registration) -> Self:
        return cls(id=r.id, address=r.address, name=r.name, created=r.created, ip=r.ip)
