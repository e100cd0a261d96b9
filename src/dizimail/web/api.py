"""The REST API, ``/api/v1`` (issue #11): JSON in and out, bearer tokens (``dizimail token create``), the
same service functions as the command line. Roles: an admin reaches everything; a domain admin only
its domains (another domain answers 404, as one that does not exist: nothing to guess); a user only
its own account.

No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations at run time."""

import logging
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from dizimail.i18n.catalog import translate
from dizimail.model.access import ListName
from dizimail.model.audit import Actor
from dizimail.model.errors import Conflict, InvalidInput, LockedOut, MailError, NotFound
from dizimail.model.tokens import ApiToken, Role
from dizimail.services.access import AccessLists
from dizimail.services.accounts import AccountService, normalize_address, normalize_domain
from dizimail.services.admin import AdminActions, AuditQuery
from dizimail.services.compose import MailSender
from dizimail.services.contacts import AddressBook
from dizimail.services.content.settings import SpamSettings
from dizimail.services.dkim import DkimService
from dizimail.services.domains import DomainProfiles
from dizimail.services.fetch import FetchService, fetch_account
from dizimail.services.lists.manage import MailingLists
from dizimail.services.lists.receive import ListReceiver
from dizimail.services.policy.relay import RelayNetworks
from dizimail.services.prefs import UserPrefs
from dizimail.services.quarantine import Quarantine
from dizimail.services.queue import QueueService
from dizimail.services.route_table import RouteTable
from dizimail.services.secretbox import Secrets
from dizimail.services.sieve.scripts import SieveScripts
from dizimail.services.tokens import TokenService
from dizimail.services.traffic import TrafficCounter, this_month, usage_csv, usage_report
from dizimail.services.usercsv import export_users_csv
from dizimail.services.weblogin import WebLogins
from dizimail.services.webmail import MailReader
from dizimail.web.api_lists import mailing_list_routes
from dizimail.web.api_sieve import sieve_routes
from dizimail.web.documents import (  # the routes' documents
    ERRORS,
    MAX_INT,
    MAX_TIME,
    AliasIn,
    AliasOut,
    AuditOut,
    Concurrency,
    ConcurrencyIn,
    DkimIn,
    DkimOut,
    DomainIn,
    DomainOut,
    DomainPatch,
    DomainSettings,
    DomainSettingsIn,
    ErrorOut,
    FetchIn,
    FetchOut,
    GrantIn,
    GrantOut,
    HeldOut,
    Imported,
    ImportError_,
    ImportIn,
    ListAdded,
    ListEntryOut,
    ListImport,
    ListImported,
    ListIn,
    ListLineError,
    NewToken,
    NoticeIn,
    NoticeOut,
    QueueAct,
    QueueActed,
    QueuedOut,
    QueueItemOut,
    RegistrationOut,
    RelayIn,
    RelayOut,
    Released,
    ReleaseIn,
    RouteIn,
    RouteOut,
    SecretIn,
    SecretOut,
    SpamSettingIn,
    SpamSettingOut,
    TokenIn,
    TokenInfo,
    TotpOut,
    UsageOut,
    UserIn,
    UserOut,
    UserPatch,
)

log = logging.getLogger("dizimail.web")
PREFIX = "/api/v1"


class ApiError(Exception):
    def __init__(self, status: int, key: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(key)
        self.status, self.key, self.headers = status, key, headers


def language(request: Request) -> str:
    """zh_CN when the client prefers Chinese (Accept-Language), else English."""
    accepted = request.headers.get("accept-language", "")[:200].lower()
    first = accepted.split(",")[0].strip()
    return "zh_CN" if first.startswith("zh") else "en"


def error_body(request: Request, status: int, key: str, detail: str = "") -> JSONResponse:
    body: dict[str, Any] = {"error": key, "message": translate(key, language(request))}
    if detail:
        body["detail"] = detail
    return JSONResponse(body, status_code=status)


_STATUS = {NotFound: 404, Conflict: 409, InvalidInput: 422, LockedOut: 429}


# --- who is asking ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Principal:
    token: ApiToken
    ip: str

    @property
    def actor(self) -> Actor:
        """Who the audit log names: the token, its role, the client's address."""
        name = f"web:{self.token.subject}" if self.token.kind == "web" else f"token:{self.token.id}"
        return Actor(name, self.ip, str(self.token.role))

    @property
    def role(self) -> Role:
        return self.token.role

    def sees_domain(self, domain: str) -> bool:
        return self.role is Role.ADMIN or (self.role is Role.DOMAIN_ADMIN and domain in self.token.domains)

    def sees_user(self, address: str) -> bool:
        if self.role is Role.USER:
            return address == self.token.subject
        return self.sees_domain(address.rpartition("@")[2])


@dataclass
class WebContext:
    """What the HTTPS side reaches: services only, as every front-end."""

    accounts: AccountService
    tokens: TokenService
    admin: AdminActions
    routes: RouteTable
    relay: RelayNetworks
    dkim: DkimService
    queue: QueueService
    access: AccessLists
    quarantine: Quarantine
    spam_settings: SpamSettings
    fetch: FetchService
    secrets: Secrets
    delivery_defaults: tuple[int, int]  # delivery.concurrency and .destination_concurrency from the config
    logins: WebLogins
    traffic: TrafficCounter
    data_dir: pathlib.Path  # the data directory (its size on the dashboard)
    profiles: DomainProfiles
    sieve: SieveScripts
    lists: MailingLists
    list_mail: ListReceiver  # approve and reject; one-click unsubscription
    mail: MailReader  # webmail (issue #13)
    compose: MailSender  # webmail's writing
    contacts: AddressBook  # webmail's address book
    prefs: UserPrefs  # webmail's preferences


def make_app(services: WebContext) -> FastAPI:
    app = FastAPI(title="dizimail", version="1", openapi_url=f"{PREFIX}/openapi.json", docs_url=None,
                  redoc_url=None,  # no docs page yet: Swagger UI's assets would come from a CDN
                  responses={code: {"model": ErrorOut, "description": text} for code, text in ERRORS.items()})

    async def principal(request: Request) -> Principal:
        ip = request.client.host if request.client else "?"
        if services.accounts.auth_refused(ip):
            raise ApiError(429, "locked_out")
        scheme, _, secret = request.headers.get("authorization", "").partition(" ")
        token = await services.tokens.verify(secret.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            if scheme:  # a wrong token counts as a failed login of this client (no account named)
                services.accounts.bad_exchange(ip)
            raise ApiError(401, "unauthenticated", {"WWW-Authenticate": "Bearer"})
        return Principal(token, ip)

    Who = Annotated[Principal, Depends(principal)]

    def admin_only(who: Principal) -> None:
        if who.role is not Role.ADMIN:
            raise ApiError(403, "forbidden")

    def staff(who: Principal) -> None:
        if who.role is Role.USER:
            raise ApiError(403, "forbidden")

    def visible(value: str, normalize: Callable[[str], str], sees: Callable[[str], bool]) -> str:
        """``value`` as stored, if the token reaches it; 404 as for what does not exist otherwise."""
        try:
            normalized = normalize(value)
        except InvalidInput:
            raise ApiError(404, "not_found") from None
        if not sees(normalized):
            raise ApiError(404, "not_found")
        return normalized

    def visible_domain(who: Principal, name: str) -> str:
        return visible(name, normalize_domain, who.sees_domain)

    def visible_user(who: Principal, address: str) -> str:
        return visible(address, normalize_address, who.sees_user)

    # --- errors ---------------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError) -> JSONResponse:
        response = error_body(request, exc.status, exc.key)
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(MailError)
    async def on_mail_error(request: Request, exc: MailError) -> JSONResponse:
        status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)),
                      503 if exc.temporary else 400)
        return error_body(request, status, exc.public_key)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(".".join(str(p) for p in e.get("loc", ())) + ": " + str(e.get("msg", ""))
                          for e in exc.errors()[:10])
        return error_body(request, 422, "bad_request", where)

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException) -> Response:
        key = {404: "not_found", 405: "bad_request"}.get(exc.status_code, "bad_request")
        if not request.url.path.startswith(PREFIX + "/") and hasattr(request.app.state, "page_error"):
            return await request.app.state.page_error(request, exc.status_code, key)  # type: ignore[no-any-return]
        return error_body(request, exc.status_code, key)

    # --- who am I -------------------------------------------------------------------------------
    @app.get(f"{PREFIX}/me", response_model=TokenInfo, tags=["tokens"])
    async def me(who: Who) -> TokenInfo:
        """The token this request carries: its role and what it reaches."""
        return TokenInfo.of(who.token)

    # --- domains --------------------------------------------------------------------------------
    @app.get(f"{PREFIX}/domains", response_model=list[DomainOut], tags=["domains"])
    async def list_domains(who: Who) -> list[DomainOut]:
        """Every domain the token reaches (a domain admin: its own)."""
        staff(who)
        return [DomainOut.of(d) for d in await services.accounts.list_domains() if who.sees_domain(d.name)]

    @app.post(f"{PREFIX}/domains", response_model=DomainOut, status_code=201, tags=["domains"])
    async def add_domain(who: Who, body: DomainIn, response: Response) -> DomainOut:
        """Add a local domain (or, with ``alias_of``, a domain alias). Admins only."""
        admin_only(who)
        domain = await services.admin.add_domain(who.actor, body.name, body.alias_of)
        response.headers["Location"] = f"{PREFIX}/domains/{quote(domain.name)}"
        return DomainOut.of(domain)

    @app.get(f"{PREFIX}/domains/{{domain}}", response_model=DomainOut, tags=["domains"])
    async def get_domain(who: Who, domain: str) -> DomainOut:
        name = visible_domain(who, domain)
        found = next((d for d in await services.accounts.list_domains() if d.name == name), None)
        if found is None:
            raise ApiError(404, "not_found")
        return DomainOut.of(found)

    @app.patch(f"{PREFIX}/domains/{{domain}}", response_model=DomainOut, tags=["domains"])
    async def change_domain(who: Who, domain: str, body: DomainPatch) -> DomainOut:
        """Suspend (no mail in, no logins) or resume a domain. Admins only."""
        admin_only(who)
        name = visible_domain(who, domain)
        await services.admin.set_domain_active(who.actor, name, body.status == "active")
        return await get_domain(who, name)

    @app.delete(f"{PREFIX}/domains/{{domain}}", status_code=204, tags=["domains"])
    async def remove_domain(who: Who, domain: str) -> Response:
        """Remove a domain that holds no users or aliases any more. Admins only."""
        admin_only(who)
        await services.admin.remove_domain(who.actor, visible_domain(who, domain))
        return Response(status_code=204)

    # --- per-domain settings, the logo, self-registration ----------------------------------------------
    @app.get(f"{PREFIX}/domains/{{domain}}/settings", response_model=DomainSettings, tags=["domains"])
    async def domain_settings(who: Who, domain: str) -> DomainSettings:
        """The name and logo of its users' login page, its limits, whether people may ask for mailboxes."""
        staff(who)
        return DomainSettings.of(await services.profiles.profile(visible_domain(who, domain)))

    @app.patch(f"{PREFIX}/domains/{{domain}}/settings", response_model=DomainSettings, tags=["domains"])
    async def change_settings(who: Who, domain: str, body: DomainSettingsIn) -> DomainSettings:
        """Change what is given; the limits (``quota_bytes``: storage its mailboxes may be given in all,
        ``max_users``) only a system admin."""
        staff(who)
        name = visible_domain(who, domain)
        changes = body.model_dump(exclude_none=True)
        if who.role is not Role.ADMIN and ({"quota_bytes", "max_users"} & changes.keys()):
            raise ApiError(403, "forbidden")
        return DomainSettings.of(await services.admin.change_domain(who.actor, name, **changes))

    @app.put(f"{PREFIX}/domains/{{domain}}/logo", status_code=204, tags=["domains"],
             openapi_extra={"requestBody": {"content": {"image/png": {"schema": {"type": "string",
                                                                                  "format": "binary"}}}}})
    async def put_logo(who: Who, domain: str, request: Request) -> Response:
        """The logo of the login page: the request body is the image (PNG, JPEG, GIF or WebP, 256 KiB)."""
        staff(who)
        await services.admin.set_logo(who.actor, visible_domain(who, domain), await request.body() or None)
        return Response(status_code=204)

    @app.delete(f"{PREFIX}/domains/{{domain}}/logo", status_code=204, tags=["domains"])
    async def remove_logo(who: Who, domain: str) -> Response:
        staff(who)
        await services.admin.set_logo(who.actor, visible_domain(who, domain), None)
        return Response(status_code=204)

    @app.get(f"{PREFIX}/registrations", response_model=list[RegistrationOut], tags=["domains"])
    async def registrations(who: Who) -> list[RegistrationOut]:
        """Requests for mailboxes waiting for approval (of the domains the token reaches)."""
        staff(who)
        return [RegistrationOut.of(r) for r in await services.profiles.pending() if who.sees_domain(r.domain)]

    @app.post(f"{PREFIX}/registrations/{{reg_id}}/approve", response_model=UserOut, tags=["domains"])
    async def approve(who: Who, reg_id: Annotated[int, Path(ge=1, le=MAX_INT)]) -> UserOut:
        """Make the mailbox asked for (with the password its requester chose)."""
        staff(who)
        scope = None if who.role is Role.ADMIN else who.token.domains
        return UserOut.of(await services.admin.approve(who.actor, reg_id, scope))

    @app.delete(f"{PREFIX}/registrations/{{reg_id}}", status_code=204, tags=["domains"])
    async def reject(who: Who, reg_id: Annotated[int, Path(ge=1, le=MAX_INT)]) -> Response:
        staff(who)
        scope = None if who.role is Role.ADMIN else who.token.domains
        await services.admin.reject(who.actor, reg_id, scope)
        return Response(status_code=204)

    # --- users ----------------------------------------------------------------------------------
    @app.get(f"{PREFIX}/domains/{{domain}}/users", response_model=list[UserOut], tags=["users"])
    async def list_users(who: Who, domain: str, after: Annotated[str, Query(max_length=64)] = "",
                         q: Annotated[str, Query(max_length=200)] = "",
                         limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[UserOut]:
        """One page in local-part order: ``after`` the last local part of the page before; ``q`` keeps those
        whose local part or name contains it."""
        staff(who)
        name = visible_domain(who, domain)
        return [UserOut.of(a) for a in await services.accounts.page_users(name, after=after, search=q, limit=limit)]

    @app.post(f"{PREFIX}/domains/{{domain}}/users", response_model=UserOut, status_code=201, tags=["users"])
    async def add_user(who: Who, domain: str, body: UserIn, response: Response) -> UserOut:
        """Add a user to the domain (an admin, or that domain's admin)."""
        staff(who)
        name = visible_domain(who, domain)
        address = normalize_address(f"{body.local_part}@{name}")
        account = await services.admin.add_user(who.actor, address, body.password, body.name, body.quota_bytes)
        response.headers["Location"] = f"{PREFIX}/users/{quote(address)}"
        return UserOut.of(account)

    @app.post(f"{PREFIX}/domains/{{domain}}/users/import", response_model=Imported, tags=["users"])
    async def import_users(who: Who, domain: str, body: ImportIn, request: Request) -> Imported:
        """Users from CSV text (``address,password[,quota,name]``, or with a header as ``user export``
        writes it: hashes are kept); rows for another domain and bad rows come back with their line."""
        staff(who)
        name = visible_domain(who, domain)
        imported, rejected = await services.admin.import_csv(who.actor, body.csv, language(request), name)
        return Imported(imported=imported, rejected=[ImportError_(line=line, why=why) for line, why in rejected])

    @app.get(f"{PREFIX}/domains/{{domain}}/users/export", tags=["users"],
             responses={200: {"content": {"text/csv": {}}, "description": "address,password,quota,name,status,used"}})
    async def export_users(who: Who, domain: str) -> Response:
        """The domain's users as CSV, re-importable (with their password hashes: admins only)."""
        admin_only(who)
        users = await services.accounts.list_users(visible_domain(who, domain))
        return Response(export_users_csv(users), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="users.csv"'})

    @app.get(f"{PREFIX}/users/{{address}}", response_model=UserOut, tags=["users"])
    async def get_user(who: Who, address: str) -> UserOut:
        return UserOut.of(await services.accounts.get_user(visible_user(who, address)))

    @app.patch(f"{PREFIX}/users/{{address}}", response_model=UserOut, tags=["users"])
    async def change_user(who: Who, address: str, body: UserPatch) -> UserOut:
        """Change a password (a user its own too), or suspend, resume, set the quota (an admin, or the
        domain's admin)."""
        normalized = visible_user(who, address)
        if who.role is Role.USER and (body.status is not None or body.quota_bytes is not None):
            raise ApiError(403, "forbidden")
        if who.role is Role.USER and body.name is not None:
            raise ApiError(403, "forbidden")
        if body.password is not None:
            await services.admin.set_password(who.actor, normalized, body.password)
        if body.name is not None:
            await services.admin.set_name(who.actor, normalized, body.name)
        if body.status is not None:
            await services.admin.set_user_active(who.actor, normalized, body.status == "active")
        if body.quota_bytes is not None:
            await services.admin.set_quota(who.actor, normalized, body.quota_bytes)
        return UserOut.of(await services.accounts.get_user(normalized))

    @app.delete(f"{PREFIX}/users/{{address}}", status_code=204, tags=["users"])
    async def remove_user(who: Who, address: str) -> Response:
        """Remove a user and everything it holds (an admin, or its domain's admin)."""
        staff(who)
        normalized = visible_user(who, address)
        await services.admin.remove_user(who.actor, normalized)
        return Response(status_code=204)

    sieve_routes(app, services.sieve, services.admin, principal, visible_user,
                 lambda address: services.accounts.get_user(address))
    mailing_list_routes(app, services.lists, services.list_mail, services.admin, principal, staff, visible_user,
                        visible_domain)

    # --- aliases --------------------------------------------------------------------------------
    @app.get(f"{PREFIX}/domains/{{domain}}/aliases", response_model=list[AliasOut], tags=["aliases"])
    async def list_aliases(who: Who, domain: str) -> list[AliasOut]:
        staff(who)
        return [AliasOut.of(a) for a in await services.accounts.list_aliases(visible_domain(who, domain))]

    @app.post(f"{PREFIX}/domains/{{domain}}/aliases", response_model=AliasOut, status_code=201, tags=["aliases"])
    async def add_alias(who: Who, domain: str, body: AliasIn, response: Response) -> AliasOut:
        """Add an alias (or more targets to one): local users or remote addresses."""
        staff(who)
        address = normalize_address(f"{body.local_part}@{visible_domain(who, domain)}")
        await services.admin.add_alias(who.actor, address, body.targets)
        response.headers["Location"] = f"{PREFIX}/aliases/{quote(address)}"
        return await find_alias(address)

    async def find_alias(address: str) -> AliasOut:
        found = [a for a in await services.accounts.list_aliases(address.rpartition("@")[2]) if a.address == address]
        if not found:
            raise ApiError(404, "not_found")
        return AliasOut.of(found[0])

    @app.get(f"{PREFIX}/aliases/{{address}}", response_model=AliasOut, tags=["aliases"])
    async def get_alias(who: Who, address: str) -> AliasOut:
        staff(who)
        return await find_alias(visible_user(who, address))

    @app.delete(f"{PREFIX}/aliases/{{address}}", status_code=204, tags=["aliases"])
    async def remove_alias(who: Who, address: str) -> Response:
        staff(who)
        await services.admin.remove_alias(who.actor, visible_user(who, address))
        return Response(status_code=204)

    # --- mail flow: routes, relay networks, DKIM ---------------------------------------------------
    @app.get(f"{PREFIX}/routes", response_model=list[RouteOut], tags=["routes"])
    async def list_routes(who: Who) -> list[RouteOut]:
        """The routing table (push to a next hop, or hold for polling). Admins only."""
        admin_only(who)
        return [RouteOut.of(r) for r in await services.routes.list()]

    @app.post(f"{PREFIX}/routes", response_model=RouteOut, status_code=201, tags=["routes"])
    async def add_route(who: Who, body: RouteIn) -> RouteOut:
        """``target``: HOST[:PORT] or hold:USER; ``domain`` "*" is the default route. Admins only."""
        admin_only(who)
        return RouteOut.of(await services.admin.add_route(who.actor, body.domain, body.target))

    @app.delete(f"{PREFIX}/routes/{{domain}}", status_code=204, tags=["routes"])
    async def remove_route(who: Who, domain: str) -> Response:
        admin_only(who)
        if await services.routes.get(domain) is None:
            raise ApiError(404, "not_found")
        await services.admin.remove_route(who.actor, domain)
        return Response(status_code=204)

    @app.get(f"{PREFIX}/relay", response_model=list[RelayOut], tags=["relay"])
    async def list_relay(who: Who) -> list[RelayOut]:
        """Networks that may relay without logging in: from the config file and added here. Admins only."""
        admin_only(who)
        configured, listed = await services.relay.listed()
        return [RelayOut(network=n, source="config") for n in configured] + [
            RelayOut(network=n, source="relay allow") for n in listed]

    @app.post(f"{PREFIX}/relay", response_model=RelayOut, status_code=201, tags=["relay"])
    async def allow_relay(who: Who, body: RelayIn) -> RelayOut:
        admin_only(who)
        return RelayOut(network=await services.admin.allow_relay(who.actor, body.network), source="relay allow")

    @app.delete(f"{PREFIX}/relay/{{network:path}}", status_code=204, tags=["relay"])
    async def remove_relay(who: Who, network: str) -> Response:
        """``network`` as listed, e.g. /api/v1/relay/10.1.0.0/16."""
        admin_only(who)
        if network not in (await services.relay.listed())[1]:
            raise ApiError(404, "not_found")
        await services.admin.remove_relay(who.actor, network)
        return Response(status_code=204)

    @app.get(f"{PREFIX}/dkim/{{domain}}", response_model=DkimOut, tags=["dkim"])
    async def get_dkim(who: Who, domain: str) -> DkimOut:
        """The domain's signing key as the DNS TXT record to publish (an admin, or that domain's admin)."""
        staff(who)
        key = await services.dkim.key_for(f"x@{visible_domain(who, domain)}")
        if key is None:
            raise ApiError(404, "not_found")
        return DkimOut.of(key)

    @app.post(f"{PREFIX}/dkim/{{domain}}", response_model=DkimOut, status_code=201, tags=["dkim"])
    async def generate_dkim(who: Who, domain: str, body: DkimIn) -> DkimOut:
        """A new signing key (replacing the old one: publish its record first)."""
        staff(who)
        return DkimOut.of(await services.admin.generate_dkim(who.actor, visible_domain(who, domain), body.bits))

    # --- the outbound queue ------------------------------------------------------------------------
    @app.get(f"{PREFIX}/queue", response_model=list[QueuedOut], tags=["queue"])
    async def list_queue(who: Who) -> list[QueuedOut]:
        """Messages with recipients still pending, oldest first. Admins only."""
        admin_only(who)
        return [QueuedOut.of(e) for e in await services.queue.list()]

    @app.get(f"{PREFIX}/queue/concurrency", response_model=Concurrency, tags=["queue"])
    async def get_concurrency(who: Who) -> Concurrency:
        admin_only(who)
        total, per = await services.queue.concurrency(*services.delivery_defaults)
        return Concurrency(total=total, per_destination=per)

    @app.put(f"{PREFIX}/queue/concurrency", response_model=Concurrency, tags=["queue"])
    async def set_concurrency(who: Who, body: ConcurrencyIn) -> Concurrency:
        """Parallel deliveries in all and to one destination; running nodes apply it within a second."""
        admin_only(who)
        total, per = await services.admin.set_concurrency(who.actor, body.total, body.per_destination,
                                                          services.delivery_defaults)
        return Concurrency(total=total, per_destination=per)

    @app.post(f"{PREFIX}/queue/{{action}}", response_model=QueueActed, tags=["queue"])
    async def act_on_queue(who: Who, action: Literal["retry", "hold", "release"], body: QueueAct) -> QueueActed:
        """Deliver now (``retry``), ``hold`` or ``release`` one message, or every one (``queue_id`` null)."""
        admin_only(who)
        return QueueActed(messages=await services.admin.queue_act(who.actor, action, body.queue_id))

    @app.get(f"{PREFIX}/queue/{{queue_id}}", response_model=QueueItemOut, tags=["queue"])
    async def show_queued(who: Who, queue_id: str) -> QueueItemOut:
        """One message: envelope, every recipient's state, and its header section as received (text)."""
        admin_only(who)
        item = await services.queue.show(queue_id)
        headers = (await services.queue.headers(item)).decode("utf-8", "replace")
        return QueueItemOut(**QueuedOut.of(item).model_dump(), headers=headers, params=dict(item.params))

    @app.delete(f"{PREFIX}/queue/{{queue_id}}", status_code=204, tags=["queue"])
    async def delete_queued(who: Who, queue_id: str) -> Response:
        """Remove a message without delivering it (no bounce)."""
        admin_only(who)
        await services.admin.queue_delete(who.actor, queue_id)
        return Response(status_code=204)

    # --- anti-spam: block and allow lists -----------------------------------------------------------
    def list_scope(who: Principal, domain: str | None) -> str | None:
        """A list's scope the token may act on: the whole server (admins), or one of its domains."""
        staff(who)
        if domain is None:
            admin_only(who)
            return None
        return visible_domain(who, domain)

    @app.get(f"{PREFIX}/lists/{{name}}", response_model=list[ListEntryOut], tags=["anti-spam"])
    async def list_entries(who: Who, name: ListName,
                           domain: Annotated[str | None, Query(max_length=253)] = None) -> list[ListEntryOut]:
        """A block or allow list: the whole server's and every domain's (an admin), or one domain's."""
        scope = list_scope(who, domain)
        return [ListEntryOut.of(e) for e in await services.access.entries(name, scope)]

    @app.post(f"{PREFIX}/lists/{{name}}", response_model=ListAdded, status_code=201, tags=["anti-spam"])
    async def add_entries(who: Who, name: ListName, body: ListIn) -> ListAdded:
        """Entries: an address or network, a sender (spam@usa.com), a domain's senders (@usa.com) or its
        subdomains' (*.usa.com); for the whole server (admins) or for mail to one ``domain``."""
        scope = list_scope(who, body.domain)
        return ListAdded(added=await services.admin.list_add(who.actor, name, body.patterns, scope, body.note))

    @app.post(f"{PREFIX}/lists/{{name}}/import", response_model=ListImported, tags=["anti-spam"])
    async def import_entries(who: Who, name: ListName, body: ListImport) -> ListImported:
        """Lines of a file (entry, optional note; # comments); the bad ones come back with their number."""
        scope = list_scope(who, body.domain)
        result = await services.admin.list_import(who.actor, name, body.lines, scope)
        return ListImported(added=result.added, listed=result.listed,
                            rejected=[ListLineError(line=n, text=t, why=w) for n, t, w in result.errors])

    @app.delete(f"{PREFIX}/lists/{{name}}/{{pattern:path}}", status_code=204, tags=["anti-spam"])
    async def remove_entry(who: Who, name: ListName, pattern: str,
                           domain: Annotated[str | None, Query(max_length=253)] = None) -> Response:
        await services.admin.list_remove(who.actor, name, pattern, list_scope(who, domain))
        return Response(status_code=204)

    # --- the quarantine ------------------------------------------------------------------------------
    @app.get(f"{PREFIX}/quarantine", response_model=list[HeldOut], tags=["anti-spam"])
    async def list_held(who: Who) -> list[HeldOut]:
        """Held viruses and spam, newest first, with every finding. Admins only."""
        admin_only(who)
        return [HeldOut.of(e) for e in await services.quarantine.entries(1000)]

    @app.get(f"{PREFIX}/quarantine/{{entry_id}}", response_model=HeldOut, tags=["anti-spam"])
    async def show_held(who: Who, entry_id: Annotated[int, Path(ge=1, le=MAX_INT)]) -> HeldOut:
        admin_only(who)
        return HeldOut.of(await services.quarantine.get(entry_id))

    @app.post(f"{PREFIX}/quarantine/{{entry_id}}/release", response_model=Released, tags=["anti-spam"])
    async def release_held(who: Who, entry_id: Annotated[int, Path(ge=1, le=MAX_INT)], body: ReleaseIn) -> Released:
        """Deliver it to its recipients (a spam one is learnt as ham unless ``learn`` is false)."""
        admin_only(who)
        result = await services.admin.quarantine_release(who.actor, entry_id, learn=body.learn)
        return Released(delivered=len(result.delivered), over_quota=list(result.refused))

    @app.delete(f"{PREFIX}/quarantine/{{entry_id}}", status_code=204, tags=["anti-spam"])
    async def delete_held(who: Who, entry_id: Annotated[int, Path(ge=1, le=MAX_INT)]) -> Response:
        admin_only(who)
        await services.admin.quarantine_delete(who.actor, entry_id)
        return Response(status_code=204)

    # --- spam settings ---------------------------------------------------------------------------------
    def setting_scope(who: Principal, scope: str) -> str:
        """A domain or a user's address the token reaches."""
        staff(who)
        return visible_user(who, scope) if "@" in scope else visible_domain(who, scope)

    @app.get(f"{PREFIX}/spam-settings", response_model=list[SpamSettingOut], tags=["anti-spam"])
    async def list_spam_settings(who: Who) -> list[SpamSettingOut]:
        """Every domain's and user's thresholds the token reaches (unset values are inherited)."""
        staff(who)
        return [SpamSettingOut.of(e) for e in await services.spam_settings.entries()
                if (who.sees_user(e.scope) if "@" in e.scope else who.sees_domain(e.scope))]

    @app.put(f"{PREFIX}/spam-settings/{{scope}}", response_model=SpamSettingOut, tags=["anti-spam"])
    async def set_spam_setting(who: Who, scope: str, body: SpamSettingIn) -> SpamSettingOut:
        """Set a domain's or a user's thresholds (0-10; 10.5: never); values left out stay as they were."""
        target = setting_scope(who, scope)
        return SpamSettingOut.of(await services.admin.set_spam(who.actor, target, **body.model_dump(exclude_unset=True)))

    @app.delete(f"{PREFIX}/spam-settings/{{scope}}", status_code=204, tags=["anti-spam"])
    async def remove_spam_setting(who: Who, scope: str) -> Response:
        await services.admin.remove_spam(who.actor, setting_scope(who, scope))
        return Response(status_code=204)

    # --- fetch accounts and stored secrets ------------------------------------------------------------
    @app.get(f"{PREFIX}/fetch", response_model=list[FetchOut], tags=["fetch"])
    async def list_fetch(who: Who) -> list[FetchOut]:
        """Remote POP3/IMAP mailboxes fetched on a timer, and how their last run went (never a password)."""
        admin_only(who)
        return [FetchOut.of(a) for a in await services.fetch.list()]

    @app.post(f"{PREFIX}/fetch", response_model=FetchOut, status_code=201, tags=["fetch"])
    async def add_fetch(who: Who, body: FetchIn) -> FetchOut:
        """``into``: a local user's INBOX (an external account); null: route by the envelope the gateway
        recorded (poll mode). Admins only."""
        admin_only(who)
        acc = fetch_account(body.server, body.username, body.password, protocol=body.protocol,
                            security=body.security, into=body.into, interval=body.interval_seconds, keep=body.keep,
                            verify=body.verify)
        fetch_id = await services.admin.fetch_add(who.actor, acc)
        return FetchOut.of(next(a for a in await services.fetch.list() if a.id == fetch_id))

    @app.post(f"{PREFIX}/fetch/run", response_model=QueueActed, tags=["fetch"])
    async def run_fetch(who: Who) -> QueueActed:
        """Fetch every account now, once: how many messages came in."""
        admin_only(who)
        return QueueActed(messages=await services.fetch.run_all())

    @app.delete(f"{PREFIX}/fetch/{{fetch_id}}", status_code=204, tags=["fetch"])
    async def remove_fetch(who: Who, fetch_id: Annotated[int, Path(ge=1, le=MAX_INT)]) -> Response:
        admin_only(who)
        await services.admin.fetch_remove(who.actor, fetch_id)
        return Response(status_code=204)

    @app.get(f"{PREFIX}/secrets", response_model=list[SecretOut], tags=["secrets"])
    async def list_secrets(who: Who) -> list[SecretOut]:
        """Which secrets are stored (never a value)."""
        admin_only(who)
        return [SecretOut(name=name, set=stored) for name, stored in await services.secrets.list()]

    @app.put(f"{PREFIX}/secrets/{{name}}", status_code=204, tags=["secrets"])
    async def set_secret(who: Who, name: str, body: SecretIn) -> Response:
        """Store a secret encrypted (e.g. ``smarthost-password``); running nodes use it within a second."""
        admin_only(who)
        await services.admin.secret_set(who.actor, name, body.value)
        return Response(status_code=204)

    @app.delete(f"{PREFIX}/secrets/{{name}}", status_code=204, tags=["secrets"])
    async def remove_secret(who: Who, name: str) -> Response:
        admin_only(who)
        await services.admin.secret_set(who.actor, name, "")
        return Response(status_code=204)

    # --- API tokens -----------------------------------------------------------------------------
    @app.get(f"{PREFIX}/tokens", response_model=list[TokenInfo], tags=["tokens"])
    async def list_tokens(who: Who) -> list[TokenInfo]:
        """Every token (never a secret). Admins only."""
        admin_only(who)
        return [TokenInfo.of(t) for t in await services.tokens.list()]

    @app.post(f"{PREFIX}/tokens", response_model=NewToken, status_code=201, tags=["tokens"])
    async def create_token(who: Who, body: TokenIn) -> NewToken:
        """A new token; its secret is in this answer only. Admins only."""
        admin_only(who)
        token, secret = await services.admin.create_token(who.actor, body.role, domains=body.domains, user=body.user,
                                                          label=body.label, lifetime=body.lifetime_seconds)
        return NewToken(token=TokenInfo.of(token), secret=secret)

    @app.delete(f"{PREFIX}/tokens/{{token_id}}", status_code=204, tags=["tokens"])
    async def revoke_token(who: Who, token_id: Annotated[int, Path(ge=1, le=MAX_INT)]) -> Response:
        """Revoke a token: an admin any, every token itself."""
        if who.role is not Role.ADMIN and token_id != who.token.id:
            raise ApiError(403, "forbidden")
        await services.admin.revoke_token(who.actor, token_id)
        return Response(status_code=204)

    # --- who administers in the browser --------------------------------------------------------------
    @app.get(f"{PREFIX}/admins", response_model=list[GrantOut], tags=["admins"])
    async def list_grants(who: Who) -> list[GrantOut]:
        """Accounts that may log in to the admin pages (``/admin/``). Admins only."""
        admin_only(who)
        return [GrantOut.of(g) for g in await services.logins.list_grants()]

    @app.put(f"{PREFIX}/admins/{{address}}", response_model=GrantOut, tags=["admins"])
    async def grant_admin(who: Who, address: str, body: GrantIn) -> GrantOut:
        """Let an existing account administer: everything (``admin``) or its ``domains``. Admins only."""
        admin_only(who)
        return GrantOut.of(await services.admin.grant_admin(who.actor, address, Role(body.role), body.domains))

    @app.delete(f"{PREFIX}/admins/{{address}}", status_code=204, tags=["admins"])
    async def revoke_admin(who: Who, address: str) -> Response:
        """Take the right away; the account's web sessions end. Admins only."""
        admin_only(who)
        await services.admin.revoke_admin(who.actor, address)
        return Response(status_code=204)

    @app.post(f"{PREFIX}/admins/{{address}}/totp", response_model=TotpOut, status_code=201, tags=["admins"])
    async def totp_setup(who: Who, address: str) -> TotpOut:
        """A new second factor for an administrator: the secret and its otpauth URI, in this answer only."""
        admin_only(who)
        secret, uri = await services.admin.totp_setup(who.actor, address)
        return TotpOut(secret=secret, uri=uri)

    @app.delete(f"{PREFIX}/admins/{{address}}/totp", status_code=204, tags=["admins"])
    async def totp_off(who: Who, address: str) -> Response:
        admin_only(who)
        await services.admin.totp_off(who.actor, address)
        return Response(status_code=204)

    # --- broadcast notices and the usage report ------------------------------------------------------
    @app.post(f"{PREFIX}/notices", response_model=NoticeOut, tags=["notices"])
    async def send_notice(who: Who, body: NoticeIn) -> NoticeOut:
        """Mail a notice to every active user of a domain (its admin too), or of every domain (admins)."""
        staff(who)
        domain = visible_domain(who, body.domain) if body.domain is not None else None
        if domain is None:
            admin_only(who)
        release = body.at.timestamp() if body.at is not None else None
        return NoticeOut(delivered=await services.admin.send_notice(who.actor, body.subject, body.body, domain,
                                                                    release))

    @app.get(f"{PREFIX}/reports/usage", response_model=list[UsageOut], tags=["reports"])
    async def usage(who: Who, month: Annotated[str, Query(pattern=r"^[0-9]{4}-[0-9]{2}$")] = "") -> list[UsageOut]:
        """Per domain the token reaches: mailboxes and storage now, messages and bytes in and out in the month
        (``YYYY-MM``, default this one)."""
        staff(who)
        rows = await usage_report(services.accounts, services.traffic, month or this_month(), who.sees_domain)
        return [UsageOut.of(r) for r in rows]

    @app.get(f"{PREFIX}/reports/usage.csv", tags=["reports"],
             responses={200: {"content": {"text/csv": {}}, "description": "the usage report as CSV"}})
    async def usage_as_csv(who: Who, month: Annotated[str, Query(pattern=r"^[0-9]{4}-[0-9]{2}$")] = "") -> Response:
        staff(who)
        rows = await usage_report(services.accounts, services.traffic, month or this_month(), who.sees_domain)
        return Response(usage_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="usage.csv"'})

    # --- the audit log ----------------------------------------------------------------------------
    @app.get(f"{PREFIX}/audit", response_model=list[AuditOut], tags=["audit"])
    async def audit(who: Who, actor: Annotated[str, Query(max_length=200)] = "",
                    action: Annotated[str, Query(max_length=100)] = "",
                    since: Annotated[float, Query(ge=0, le=MAX_TIME)] = 0.0,
                    until: Annotated[float, Query(ge=0, le=MAX_TIME)] = 0.0,
                    before: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AuditOut]:
        """Administrative actions, newest first (``before``: the smallest id of the page before). A domain
        admin sees its domains' entries only."""
        staff(who)
        domains = None if who.role is Role.ADMIN else who.token.domains
        query = AuditQuery(domains, actor, action, since, until, before, limit)
        return [AuditOut.of(e) for e in await services.admin.entries(query)]

    from dizimail.web.pages import add_pages  # the pages on the same app, the same principals
    add_pages(app, services)
    return app
