"""The admin pages (``/admin/``) and the users' login and self-service page (``/``), issue #11.

Every page calls the same service functions as the REST API and the command line (services.admin for
every change, so each lands in the audit log with ``web:ADDRESS`` as its actor) and applies the same
roles (web.api.Principal): a domain admin reaches only its domains, and another domain answers 404 as
one that does not exist. Changes are POST forms with a CSRF token (web.session), answered by a redirect
(303) to a page that says what happened: the message is chosen by a key from a fixed set, never text
taken from the request.

No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations at run time."""

import asyncio
import csv
import io
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile
from starlette.staticfiles import StaticFiles

from dizimail.i18n.catalog import CATALOG
from dizimail.model.access import ListName
from dizimail.model.audit import Actor
from dizimail.model.domains import DomainProfile
from dizimail.model.errors import InvalidInput, LockedOut, MailError, NotFound
from dizimail.model.tokens import Role
from dizimail.model.traffic import Flow
from dizimail.services.accounts import normalize_address, normalize_domain
from dizimail.services.admin import AuditQuery, entry_dict
from dizimail.services.dkim import record_name, txt_record
from dizimail.services.fetch import fetch_account
from dizimail.services.traffic import this_month, today, usage_csv, usage_report
from dizimail.services.weblogin import SESSION_LIFETIME
from dizimail.web.api import Principal, WebContext
from dizimail.web.render import HERE, gettext_for, render
from dizimail.web.session import (
    LANG_COOKIE,
    LANGUAGES,
    LOGIN_COOKIE,
    YEAR,
    clear_session,
    csrf_for,
    csrf_ok,
    language,
    login_token,
    safe_next,
    session_secret,
    set_cookie,
    set_session,
)

PAGE = 100  # users on one page of a domain
MAX_FIELD = 4096  # characters of one form field (passwords, names, targets)
DISK_EVERY = 60.0  # seconds a measured size of the data directory is shown before it is measured again
DONE = {  # what a page says after a change: key → message (the keys a redirect may carry)
    "sent",
    "domain_added", "domain_removed", "domain_suspended", "domain_resumed", "user_added", "user_removed",
    "user_suspended", "user_resumed", "password_set", "quota_set", "alias_added", "alias_removed", "queue_done",
    "queue_removed", "admin_granted", "admin_revoked", "route_added", "route_removed", "relay_added",
    "relay_removed", "dkim_generated", "language_set", "totp_off", "notice_sent", "notice_scheduled", "settings_saved",
    "registration_approved", "registration_rejected", "name_set", "list_changed", "released", "held_removed",
    "fetch_added", "fetch_removed", "fetch_ran", "token_revoked", "secret_saved", "mlist_added", "mlist_saved",
    "mlist_removed", "members_added", "members_removed", "post_approved", "post_rejected", "folder_changed",
    "draft_saved", "contact_saved", "contacts_imported", "scheduled", "mbox_imported", "receipt_sent", "send_cancelled"}


class PageRedirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class PageError(Exception):
    def __init__(self, status: int, key: str) -> None:
        super().__init__(key)
        self.status, self.key = status, key


@dataclass
class Job:
    """A CSV import running in the background: its page shows the progress bar and, at the end, the rows
    refused with their reasons."""

    id: str
    owner: str  # the session's account: only it sees the job
    domain: str
    total: int
    done: int = 0
    imported: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    finished: bool = False
    started: float = field(default_factory=time.time)


def _form_text(form: FormData, name: str, limit: int = MAX_FIELD) -> str:
    value = form.get(name, "")
    if not isinstance(value, str):
        return ""
    return value[:limit].strip() if name != "password" else value[:limit]


def _go(path: str, **query: str) -> RedirectResponse:
    return RedirectResponse(path + ("?" + urlencode(query) if query else ""), status_code=303)


def add_pages(app: FastAPI, services: WebContext) -> None:
    jobs: dict[str, Job] = {}
    tasks: set[asyncio.Task[None]] = set()
    disk: dict[str, tuple[float, int]] = {}
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    # --- sessions and roles ------------------------------------------------------------------------
    def ip_of(request: Request) -> str:
        return request.client.host if request.client else "?"

    async def who(request: Request, *, staff: bool = True, admin: bool = False) -> Principal:
        """The session's principal; not logged in: to the login page (and back here after it); ``admin``:
        a system admin's page (403 for a domain admin)."""
        secret = session_secret(request)
        session = await services.logins.session(secret) if secret else None
        login = "/admin/login" if staff else "/"
        if session is None:
            raise PageRedirect(f"{login}?{urlencode({'next': request.url.path})}")
        if staff and session.role is Role.USER:
            raise PageRedirect(f"{login}?{urlencode({'next': request.url.path})}")
        principal = Principal(session.token, ip_of(request))
        if admin:
            admin_only(principal)
        return principal

    async def changing(request: Request, *, staff: bool = True, admin: bool = False,
                       max_files: int = 1, max_part: int = 1 << 20) -> tuple[Principal, FormData]:
        """A form that changes something: its principal and fields, once its CSRF token is checked."""
        principal = await who(request, staff=staff, admin=admin)
        form = await request.form(max_files=max_files, max_fields=50, max_part_size=max_part)
        if not csrf_ok(request, _form_text(form, "csrf"), session_secret(request)):
            raise PageError(403, "csrf")
        return principal, form

    def admin_only(p: Principal) -> None:
        if p.role is not Role.ADMIN:
            raise PageError(403, "forbidden")

    def domain_of(p: Principal, name: str) -> str:
        try:
            normalized = normalize_domain(name)
        except InvalidInput:
            raise PageError(404, "not_found") from None
        if not p.sees_domain(normalized):
            raise PageError(404, "not_found")
        return normalized

    def user_of(p: Principal, address: str) -> str:
        try:
            normalized = normalize_address(address)
        except InvalidInput:
            raise PageError(404, "not_found") from None
        if not p.sees_user(normalized) or (p.role is Role.USER):
            raise PageError(404, "not_found")
        return normalized

    def actor(p: Principal) -> Actor:
        return Actor(f"web:{p.token.subject}", p.ip, str(p.role))

    async def page(request: Request, name: str, p: Principal | None, status: int = 200, **context: Any) -> Response:
        done = request.query_params.get("done", "")
        error = request.query_params.get("error", "")
        secret = session_secret(request)
        return await render(request, name, status, me=p, role=str(p.role) if p else "",
                            csrf=csrf_for(secret) if secret else "",
                            done=done if done in DONE else "", error=error if error in CATALOG else "", **context)

    async def acting(back: str, step: Callable[[], Awaitable[Any]], done: str) -> Response:
        """Run a change; back to ``back`` saying it is done, or what the service refused."""
        try:
            await step()
        except MailError as exc:
            return _go(back, error=exc.public_key)
        return _go(back, done=done)

    # --- errors of pages ---------------------------------------------------------------------------
    @app.exception_handler(PageRedirect)
    async def on_redirect(request: Request, exc: PageRedirect) -> Response:
        return RedirectResponse(exc.location, status_code=303)

    @app.exception_handler(PageError)
    async def on_page_error(request: Request, exc: PageError) -> Response:
        return await page(request, "error.html", None, exc.status, key=exc.key)

    async def page_error(request: Request, status: int, key: str) -> Response:
        return await page(request, "error.html", None, status, key=key)
    app.state.page_error = page_error  # 404 and 405 outside the API (web.api's handler)

    # --- language ----------------------------------------------------------------------------------
    @app.get("/lang/{lang}", include_in_schema=False)
    async def switch_language(request: Request, lang: str, next: str = "/") -> Response:
        response = RedirectResponse(safe_next(next, "/"), status_code=303)
        if lang in LANGUAGES:
            set_cookie(response, LANG_COOKIE, lang, YEAR)
        return response

    # --- logging in and out ------------------------------------------------------------------------
    async def brand(request: Request, named: str = "") -> DomainProfile | None:
        """The domain whose login page this is: ``named`` (a form's), ``?domain=``, else the host name the
        browser asked for (``mail.example.com`` or ``example.com``); its name, logo, whether it takes requests."""
        names = [named[:255], request.query_params.get("domain", "")[:255]]
        host = request.headers.get("host", "").rsplit(":", 1)[0].lower()[:255]
        names += [host, host.partition(".")[2]]
        for name in names:
            try:
                if name:
                    return await services.profiles.profile(name)
            except MailError:
                continue
        return None

    async def login_form(request: Request, admin: bool, status: int = 200, error: str = "") -> Response:
        token = login_token(request)
        response = await render(request, "login.html", status, admin=admin, csrf=token, error=error,
                                next=safe_next(request.query_params.get("next", ""), ""), me=None, role="", done="",
                                brand=None if admin else await brand(request))
        set_cookie(response, LOGIN_COOKIE, token, 3600)
        return response

    def login_csrf_ok(request: Request, form: FormData) -> bool:
        cookie = request.cookies.get(LOGIN_COOKIE, "")
        sent = _form_text(form, "csrf")
        return bool(cookie and sent and secrets.compare_digest(sent, cookie) and csrf_ok(request, csrf_for(cookie),
                                                                                            cookie))

    async def login(request: Request, admin: bool) -> Response:
        form = await request.form(max_files=0, max_fields=10)
        if not login_csrf_ok(request, form):
            return await login_form(request, admin, 403, "csrf")
        try:
            session, secret = await services.logins.login(_form_text(form, "address", 320), _form_text(form, "password"),
                                                          _form_text(form, "code", 20), ip_of(request), admin=admin)
        except LockedOut:
            return await login_form(request, admin, 429, "locked_out")
        except MailError as exc:
            return await login_form(request, admin, 401, exc.public_key)
        old = session_secret(request)
        if old:  # whatever session the browser brought ends: a fixed session is never the logged-in one
            await services.logins.logout(old)
        default = "/admin/" if admin else "/mail"
        response = RedirectResponse(safe_next(_form_text(form, "next", 500), default), status_code=303)
        set_session(response, secret, SESSION_LIFETIME)
        return response

    def login_page(path: str, admin: bool) -> None:
        async def show(request: Request) -> Response:
            return await login_form(request, admin)

        async def send(request: Request) -> Response:
            return await login(request, admin)
        app.add_api_route(path, show, methods=["GET"], include_in_schema=False)
        app.add_api_route(path, send, methods=["POST"], include_in_schema=False)
    login_page("/admin/login", True)  # administrators (a grant, and its second factor)
    login_page("/", False)  # users: their own page (webmail, issue #13, comes here)

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=5)
        secret = session_secret(request)
        if not csrf_ok(request, _form_text(form, "csrf"), secret):
            raise PageError(403, "csrf")
        await services.logins.logout(secret)
        response = RedirectResponse("/", status_code=303)
        clear_session(response)
        return response

    # --- asking for a mailbox, and a domain's logo ------------------------------------------------------
    @app.get("/register", include_in_schema=False)
    async def register_page(request: Request) -> Response:
        return await register_form(request)

    async def register_form(request: Request, status: int = 200, error: str = "", sent: bool = False,
                            domain: str = "") -> Response:
        profile = await brand(request, domain)
        if profile is None or not profile.self_registration:
            raise PageError(404, "registration_closed")
        token = login_token(request)
        response = await render(request, "register.html", status, brand=profile, csrf=token, error=error, sent=sent,
                                me=None, role="", done="")
        set_cookie(response, LOGIN_COOKIE, token, 3600)
        return response

    @app.post("/register", include_in_schema=False)
    async def register(request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=10)
        domain = _form_text(form, "domain", 255)
        if not login_csrf_ok(request, form):
            return await register_form(request, 403, "csrf", domain=domain)
        if _form_text(form, "password") != _form_text(form, "again"):
            return await register_form(request, 422, "passwords_differ", domain=domain)
        try:
            await services.profiles.register(domain, _form_text(form, "local_part", 64), _form_text(form, "name", 200),
                                             _form_text(form, "password"), ip_of(request))
        except MailError as exc:
            status = {"address_taken": 409, "too_many_requests": 429}.get(exc.public_key, 422)
            return await register_form(request, status, exc.public_key, domain=domain)
        return await register_form(request, sent=True, domain=domain)

    @app.get("/brand/{domain}/logo", include_in_schema=False)
    async def logo(domain: str) -> Response:
        found = await services.profiles.logo(domain)
        if found is None:
            raise PageError(404, "not_found")
        return Response(found[0], media_type=found[1], headers={"Cache-Control": "max-age=300"})

    # --- a user's own page -------------------------------------------------------------------------
    @app.get("/account", include_in_schema=False)
    async def account(request: Request) -> Response:
        p = await who(request, staff=False)
        user = await services.accounts.get_user(p.token.subject)
        return await page(request, "account.html", p, user=user)

    @app.post("/account/password", include_in_schema=False)
    async def own_password(request: Request) -> Response:
        p, form = await changing(request, staff=False)
        new = _form_text(form, "password")
        if new != _form_text(form, "again"):
            return _go("/account", error="passwords_differ")
        try:
            await services.accounts.authenticate(p.token.subject, _form_text(form, "current"), p.ip)
        except MailError:
            return _go("/account", error="auth_failed")
        return await acting("/account", lambda: services.admin.set_password(actor(p), p.token.subject, new),
                            "password_set")

    # --- the dashboard -----------------------------------------------------------------------------
    async def data_size() -> int:
        """Bytes under the data directory (measured in a thread, at most once a minute)."""
        now = time.monotonic()
        seen = disk.get("data")
        if seen is not None and now - seen[0] < DISK_EVERY:
            return seen[1]

        def measure() -> int:
            total = 0
            for root, _dirs, files in os.walk(services.data_dir):
                for name in files:
                    try:
                        total += os.lstat(os.path.join(root, name)).st_blocks * 512
                    except OSError:
                        pass
            return total
        size = await asyncio.to_thread(measure)
        disk["data"] = (now, size)
        return size

    async def live(p: Principal) -> dict[str, Any]:
        domains = [d for d in await services.accounts.list_domains() if p.sees_domain(d.name)]
        mine = None if p.role is Role.ADMIN else {d.name for d in domains}
        users = 0
        for d in domains:
            users += 0 if d.alias_of else len(await services.accounts.list_users(d.name))
        totals = await services.traffic.day_totals(today(), mine)
        facts: dict[str, Any] = {"users": users, "domains": len(domains), "accepted": totals[Flow.IN] + totals[Flow.OUT],
                                 "received": totals[Flow.IN], "sent": totals[Flow.OUT],
                                 "delivered": totals[Flow.DELIVERED], "bounced": totals[Flow.BOUNCED],
                                 "updated": time.time()}
        if p.role is Role.ADMIN:
            queue = await services.queue.list()
            facts["queue"] = len(queue)
            facts["oldest"] = min((e.created for e in queue), default=0.0)
            facts["data_bytes"] = await data_size()
            usage = os.statvfs(services.data_dir)
            facts["disk_free"] = usage.f_bavail * usage.f_frsize
            facts["disk_total"] = usage.f_blocks * usage.f_frsize
        facts["pending"] = sum(1 for r in await services.profiles.pending() if p.sees_domain(r.domain))
        facts["events"] = await services.admin.entries(AuditQuery(domains=None if mine is None else tuple(mine),
                                                                  limit=10))
        return facts

    @app.get("/admin/", include_in_schema=False)
    async def dashboard(request: Request) -> Response:
        p = await who(request)
        return await page(request, "admin/dashboard.html", p, facts=await live(p))

    @app.get("/admin/live", include_in_schema=False)
    async def dashboard_live(request: Request) -> Response:
        p = await who(request)
        return await page(request, "admin/_live.html", p, facts=await live(p))

    # --- domains -----------------------------------------------------------------------------------
    @app.get("/admin/domains", include_in_schema=False)
    async def domains(request: Request) -> Response:
        p = await who(request)
        listed = [d for d in await services.accounts.list_domains() if p.sees_domain(d.name)]
        counts = {d.name: len(await services.accounts.list_users(d.name)) for d in listed if not d.alias_of}
        return await page(request, "admin/domains.html", p, domains=listed, counts=counts)

    @app.post("/admin/domains", include_in_schema=False)
    async def add_domain(request: Request) -> Response:
        p, form = await changing(request, admin=True)
        alias_of = _form_text(form, "alias_of", 255) or None
        return await acting("/admin/domains",
                            lambda: services.admin.add_domain(actor(p), _form_text(form, "name", 255), alias_of),
                            "domain_added")

    @app.get("/admin/domains/{domain}", include_in_schema=False)
    async def domain_page(request: Request, domain: str, after: str = "", q: str = "") -> Response:
        p = await who(request)
        name = domain_of(p, domain)
        found = next((d for d in await services.accounts.list_domains() if d.name == name), None)
        if found is None:
            raise PageError(404, "not_found")
        users = await services.accounts.page_users(name, after=after[:64], search=q[:200], limit=PAGE + 1)
        more = len(users) > PAGE
        users = users[:PAGE]
        aliases = [a for a in await services.accounts.list_aliases(name)]
        key = await services.dkim.key_for(f"postmaster@{name}")
        dkim = {"name": record_name(key), "txt": txt_record(key)} if key else None
        profile = None if found.alias_of else await services.profiles.profile(name)
        return await page(request, "admin/domain.html", p, domain=found, users=users, aliases=aliases, q=q[:200],
                          after=after[:64], more=more, next_after=users[-1].address.partition("@")[0] if users else "",
                          dkim=dkim, profile=profile, pending=await services.profiles.pending(name))

    @app.post("/admin/domains/{domain}/settings", include_in_schema=False)
    async def domain_settings(request: Request, domain: str) -> Response:
        """The name on the login page and self-registration (the domain's admins too); the limits (system
        admins: a domain admin cannot raise its own)."""
        p, form = await changing(request)
        name = domain_of(p, domain)
        back = f"/admin/domains/{quote(name)}"
        changes: dict[str, Any] = {"display_name": _form_text(form, "display_name", 200),
                                   "self_registration": form.get("self_registration") == "on"}
        if p.role is Role.ADMIN:
            try:
                changes["quota_bytes"] = _quota(_form_text(form, "quota_mib", 20))
                changes["max_users"] = _optional(_form_text(form, "max_users", 9), 0, 0, 10**8)
            except MailError as exc:
                return _go(back, error=exc.public_key)
        return await acting(back, lambda: services.admin.change_domain(actor(p), name, **changes), "settings_saved")

    @app.post("/admin/domains/{domain}/logo", include_in_schema=False)
    async def domain_logo(request: Request, domain: str) -> Response:
        p, form = await changing(request)
        name = domain_of(p, domain)
        upload = form.get("logo")
        data = await upload.read(256 * 1024 + 1) if isinstance(upload, UploadFile) else b""
        await form.close()
        return await acting(f"/admin/domains/{quote(name)}",
                            lambda: services.admin.set_logo(actor(p), name, data or None), "settings_saved")

    @app.post("/admin/registrations/{reg_id}", include_in_schema=False)
    async def registration(request: Request, reg_id: int) -> Response:
        p, form = await changing(request)
        scope = None if p.role is Role.ADMIN else p.token.domains
        back = safe_next(_form_text(form, "back", 500), "/admin/domains")
        if _form_text(form, "action", 10) == "approve":
            return await acting(back, lambda: services.admin.approve(actor(p), reg_id, scope), "registration_approved")
        return await acting(back, lambda: services.admin.reject(actor(p), reg_id, scope), "registration_rejected")

    @app.post("/admin/domains/{domain}/status", include_in_schema=False)
    async def domain_status(request: Request, domain: str) -> Response:
        p, form = await changing(request, admin=True)
        name = domain_of(p, domain)
        active = _form_text(form, "status") == "active"
        return await acting(f"/admin/domains/{quote(name)}",
                            lambda: services.admin.set_domain_active(actor(p), name, active),
                            "domain_resumed" if active else "domain_suspended")

    @app.post("/admin/domains/{domain}/delete", include_in_schema=False)
    async def delete_domain(request: Request, domain: str) -> Response:
        """Delete a domain with everything it holds: the form names the domain again to confirm."""
        p, form = await changing(request, admin=True)
        name = domain_of(p, domain)
        if _form_text(form, "confirm", 255) not in (name, domain):
            return _go(f"/admin/domains/{quote(name)}", error="confirm_name")

        async def everything() -> None:
            for alias in await services.accounts.list_aliases(name):
                await services.admin.remove_alias(actor(p), alias.address)
            for user in await services.accounts.list_users(name):
                await services.admin.remove_user(actor(p), user.address)
            await services.admin.remove_domain(actor(p), name)
        try:
            await everything()
        except MailError as exc:
            return _go(f"/admin/domains/{quote(name)}", error=exc.public_key)
        return _go("/admin/domains", done="domain_removed")

    @app.post("/admin/domains/{domain}/users", include_in_schema=False)
    async def add_user(request: Request, domain: str) -> Response:
        p, form = await changing(request)
        name = domain_of(p, domain)
        try:
            quota = _quota(_form_text(form, "quota_mib", 20))
            address = normalize_address(f"{_form_text(form, 'local_part', 64)}@{name}")
        except MailError as exc:
            return _go(f"/admin/domains/{quote(name)}", error=exc.public_key)
        return await acting(f"/admin/domains/{quote(name)}",
                            lambda: services.admin.add_user(actor(p), address, _form_text(form, "password"),
                                                            _form_text(form, "name", 200), quota), "user_added")

    @app.post("/admin/domains/{domain}/aliases", include_in_schema=False)
    async def add_alias(request: Request, domain: str) -> Response:
        p, form = await changing(request)
        name = domain_of(p, domain)
        targets = [t.strip() for t in _form_text(form, "targets").replace(",", "\n").splitlines() if t.strip()]
        back = _form_text(form, "back", 500)
        try:
            address = normalize_address(f"{_form_text(form, 'local_part', 64)}@{name}")
        except MailError as exc:
            return _go(f"/admin/domains/{quote(name)}", error=exc.public_key)
        return await acting(safe_next(back, f"/admin/domains/{quote(name)}"),
                            lambda: services.admin.add_alias(actor(p), address, targets), "alias_added")

    @app.post("/admin/aliases/{address}/delete", include_in_schema=False)
    async def remove_alias(request: Request, address: str) -> Response:
        p, form = await changing(request)
        normalized = user_of(p, address)
        back = safe_next(_form_text(form, "back", 500), f"/admin/domains/{quote(normalized.rpartition('@')[2])}")
        return await acting(back, lambda: services.admin.remove_alias(actor(p), normalized), "alias_removed")

    @app.post("/admin/domains/{domain}/dkim", include_in_schema=False)
    async def new_dkim(request: Request, domain: str) -> Response:
        p, _form = await changing(request)
        name = domain_of(p, domain)
        return await acting(f"/admin/domains/{quote(name)}", lambda: services.admin.generate_dkim(actor(p), name),
                            "dkim_generated")

    # --- importing and exporting users ---------------------------------------------------------------
    @app.post("/admin/domains/{domain}/import", include_in_schema=False)
    async def start_import(request: Request, domain: str) -> Response:
        p, form = await changing(request)
        name = domain_of(p, domain)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return _go(f"/admin/domains/{quote(name)}", error="bad_request")
        raw = await upload.read()
        await form.close()
        text = raw.decode("utf-8-sig", "replace")
        lang = language(request)
        job = Job(secrets.token_urlsafe(12), p.token.subject, name, total=max(1, text.count("\n") + 1))

        def progress(done: int, total: int) -> None:
            job.done, job.total = done, max(total, 1)

        async def work() -> None:
            try:
                job.imported, job.rejected = await services.admin.import_csv(actor(p), text, lang, name, progress)
            except MailError as exc:
                job.rejected.append((0, exc.public_key))
            finally:
                job.done, job.finished = job.total, True
        jobs[job.id] = job
        for old in [j for j in jobs.values() if j.finished and time.time() - j.started > 3600]:
            jobs.pop(old.id, None)
        task = asyncio.get_running_loop().create_task(work())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return _go(f"/admin/jobs/{job.id}")

    def job_of(p: Principal, job_id: str) -> Job:
        job = jobs.get(job_id)
        if job is None or job.owner != p.token.subject:
            raise PageError(404, "not_found")
        return job

    @app.get("/admin/jobs/{job_id}", include_in_schema=False)
    async def job_page(request: Request, job_id: str) -> Response:
        p = await who(request)
        return await page(request, "admin/job.html", p, job=job_of(p, job_id))

    @app.get("/admin/jobs/{job_id}/live", include_in_schema=False)
    async def job_live(request: Request, job_id: str) -> Response:
        p = await who(request)
        return await page(request, "admin/_job.html", p, job=job_of(p, job_id))

    @app.get("/admin/domains/{domain}/users.csv", include_in_schema=False)
    async def export_users(request: Request, domain: str) -> Response:
        """The users of a domain as CSV, without password hashes (the command line and the API, for admins,
        export those), opened in a spreadsheet (UTF-8 with a BOM)."""
        p = await who(request)
        name = domain_of(p, domain)
        users = await services.accounts.list_users(name)

        def write() -> str:
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(("address", "name", "status", "quota", "used", "messages"))
            for u in users:
                writer.writerow((u.address, _cell(u.name), str(u.status), u.quota_bytes, u.used_bytes, u.message_count))
            return "\ufeff" + out.getvalue()
        return Response(await asyncio.to_thread(write), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}-users.csv"})

    # --- one user ----------------------------------------------------------------------------------
    @app.get("/admin/users/{address}", include_in_schema=False)
    async def user_page(request: Request, address: str) -> Response:
        p = await who(request)
        normalized = user_of(p, address)
        user = await services.accounts.get_user(normalized)
        domain = normalized.rpartition("@")[2]
        aliases = [a for a in await services.accounts.list_aliases(domain) if normalized in a.targets]
        return await page(request, "admin/user.html", p, user=user, aliases=aliases, domain=domain)

    @app.post("/admin/users/{address}", include_in_schema=False)
    async def change_user(request: Request, address: str) -> Response:
        p, form = await changing(request)
        normalized = user_of(p, address)
        back = f"/admin/users/{quote(normalized)}"
        what = _form_text(form, "action", 20)
        if what == "password":
            return await acting(back, lambda: services.admin.set_password(actor(p), normalized,
                                                                           _form_text(form, "password")), "password_set")
        if what == "quota":
            try:
                quota = _quota(_form_text(form, "quota_mib", 20))
            except MailError as exc:
                return _go(back, error=exc.public_key)
            return await acting(back, lambda: services.admin.set_quota(actor(p), normalized, quota), "quota_set")
        if what == "name":
            return await acting(back, lambda: services.admin.set_name(actor(p), normalized,
                                                                       _form_text(form, "name", 300)), "name_set")
        if what in ("suspend", "resume"):
            return await acting(back, lambda: services.admin.set_user_active(actor(p), normalized, what == "resume"),
                                "user_resumed" if what == "resume" else "user_suspended")
        if what == "delete":
            if _form_text(form, "confirm", 320) != normalized:
                return _go(back, error="confirm_name")
            return await acting(f"/admin/domains/{quote(normalized.rpartition('@')[2])}",
                                lambda: services.admin.remove_user(actor(p), normalized), "user_removed")
        raise PageError(400, "bad_request")

    # --- the queue ---------------------------------------------------------------------------------
    @app.get("/admin/queue", include_in_schema=False)
    async def queue(request: Request, q: str = "", held: str = "") -> Response:
        p = await who(request, admin=True)
        entries = await services.queue.list()
        needle = q[:200].lower()
        if needle:
            entries = [e for e in entries if needle in e.sender.lower() or needle in e.queue_id.lower()
                       or any(needle in r.address.lower() or needle in r.last_error.lower() for r in e.recipients)]
        if held in ("yes", "no"):
            entries = [e for e in entries if e.held == (held == "yes")]
        total_, per = await services.queue.concurrency(*services.delivery_defaults)
        return await page(request, "admin/queue.html", p, entries=entries[:500], total=len(entries), q=q[:200],
                          held=held, concurrency=(total_, per))

    @app.get("/admin/queue/{queue_id}", include_in_schema=False)
    async def queued(request: Request, queue_id: str) -> Response:
        p = await who(request, admin=True)
        try:
            item = await services.queue.show(queue_id[:64])
        except NotFound:
            raise PageError(404, "not_found") from None
        headers = (await services.queue.headers(item)).decode("utf-8", "replace")
        return await page(request, "admin/queued.html", p, item=item, headers=headers)

    @app.post("/admin/queue", include_in_schema=False)
    async def queue_act(request: Request) -> Response:
        p, form = await changing(request, admin=True)
        what = _form_text(form, "action", 20)
        queue_id = _form_text(form, "queue_id", 64) or None
        if what == "delete" and queue_id:
            return await acting("/admin/queue", lambda: services.admin.queue_delete(actor(p), queue_id),
                                "queue_removed")
        if what == "concurrency":
            try:
                total_ = _bounded(_form_text(form, "total", 6), 1, 1000)
                per = _bounded(_form_text(form, "per_destination", 6), 1, 1000)
            except MailError as exc:
                return _go("/admin/queue", error=exc.public_key)
            return await acting("/admin/queue", lambda: services.admin.set_concurrency(
                actor(p), total_, per, services.delivery_defaults), "queue_done")
        if what in ("retry", "hold", "release"):
            back = f"/admin/queue/{quote(queue_id)}" if queue_id else "/admin/queue"
            return await acting(back, lambda: services.admin.queue_act(actor(p), what, queue_id), "queue_done")
        raise PageError(400, "bad_request")

    # --- routes and relay networks -------------------------------------------------------------------
    @app.get("/admin/routing", include_in_schema=False)
    async def routing(request: Request) -> Response:
        p = await who(request, admin=True)
        configured, listed = await services.relay.listed()
        return await page(request, "admin/routing.html", p, routes=await services.routes.list(),
                          configured=configured, listed=listed)

    @app.post("/admin/routing", include_in_schema=False)
    async def routing_act(request: Request) -> Response:
        p, form = await changing(request, admin=True)
        what = _form_text(form, "action", 20)
        if what == "add_route":
            return await acting("/admin/routing", lambda: services.admin.add_route(
                actor(p), _form_text(form, "domain", 255), _form_text(form, "target", 300)), "route_added")
        if what == "remove_route":
            return await acting("/admin/routing", lambda: services.admin.remove_route(
                actor(p), _form_text(form, "domain", 255)), "route_removed")
        if what == "add_relay":
            return await acting("/admin/routing", lambda: services.admin.allow_relay(
                actor(p), _form_text(form, "network", 100)), "relay_added")
        if what == "remove_relay":
            return await acting("/admin/routing", lambda: services.admin.remove_relay(
                actor(p), _form_text(form, "network", 100)), "relay_removed")
        raise PageError(400, "bad_request")

    # --- anti-spam: lists, thresholds, the quarantine ----------------------------------------------------
    def list_scope(p: Principal, domain: str) -> str | None:
        """A list's scope the session may act on: the whole server (admins), or one of its domains."""
        if not domain:
            admin_only(p)
            return None
        return domain_of(p, domain)

    @app.get("/admin/antispam", include_in_schema=False)
    async def antispam(request: Request) -> Response:
        p = await who(request)
        entries = [e for e in await services.access.entries()
                   if (p.role is Role.ADMIN or (e.scope and p.sees_domain(e.scope)))]
        settings = [e for e in await services.spam_settings.entries()
                    if (p.sees_user(e.scope) if "@" in e.scope else p.sees_domain(e.scope))]
        domains = [d.name for d in await services.accounts.list_domains() if not d.alias_of and p.sees_domain(d.name)]
        return await page(request, "admin/antispam.html", p, entries=entries, settings=settings, domains=domains)

    @app.post("/admin/antispam", include_in_schema=False)
    async def antispam_act(request: Request) -> Response:
        p, form = await changing(request)
        what = _form_text(form, "action", 20)
        back = "/admin/antispam"
        if what in ("block", "allow", "unlist"):
            listed = what if what != "unlist" else _form_text(form, "list", 10)
            if listed not in ("block", "allow"):
                raise PageError(400, "bad_request")
            name = ListName(listed)
            scope = list_scope(p, _form_text(form, "domain", 255))
            if what == "unlist":
                return await acting(back, lambda: services.admin.list_remove(actor(p), name, _form_text(
                    form, "pattern", 300), scope), "list_changed")
            patterns = [x.strip() for x in _form_text(form, "patterns", 20_000).splitlines() if x.strip()][:1000]
            return await acting(back, lambda: services.admin.list_add(actor(p), name, patterns, scope,
                                                                       _form_text(form, "note", 200)), "list_changed")
        if what in ("threshold", "unset"):
            target = _form_text(form, "scope", 320)
            scope = user_of(p, target) if "@" in target else domain_of(p, target)
            if what == "unset":
                return await acting(back, lambda: services.admin.remove_spam(actor(p), scope), "settings_saved")
            try:
                values = {k: _score(_form_text(form, k, 10)) for k in ("tag_at", "junk_at", "reject_at")
                          if _form_text(form, k, 10)}
            except MailError as exc:
                return _go(back, error=exc.public_key)
            return await acting(back, lambda: services.admin.set_spam(actor(p), scope, **values), "settings_saved")
        raise PageError(400, "bad_request")

    @app.get("/admin/quarantine", include_in_schema=False)
    async def quarantine(request: Request) -> Response:
        p = await who(request, admin=True)
        return await page(request, "admin/quarantine.html", p, held=await services.quarantine.entries(500))

    @app.post("/admin/quarantine", include_in_schema=False)
    async def quarantine_act(request: Request) -> Response:
        p, form = await changing(request, admin=True)
        entry_id = _int(_form_text(form, "id", 20))
        if _form_text(form, "action", 20) == "release":
            learn = form.get("learn") == "on"
            return await acting("/admin/quarantine", lambda: services.admin.quarantine_release(
                actor(p), entry_id, learn=learn), "released")
        return await acting("/admin/quarantine", lambda: services.admin.quarantine_delete(actor(p), entry_id),
                            "held_removed")

    # --- fetch accounts ----------------------------------------------------------------------------------
    @app.get("/admin/fetch", include_in_schema=False)
    async def fetch(request: Request) -> Response:
        p = await who(request, admin=True)
        return await page(request, "admin/fetch.html", p, accounts=await services.fetch.list())

    @app.post("/admin/fetch", include_in_schema=False)
    async def fetch_act(request: Request) -> Response:
        p, form = await changing(request, admin=True)
        what = _form_text(form, "action", 20)
        if what == "remove":
            return await acting("/admin/fetch", lambda: services.admin.fetch_remove(
                actor(p), _int(_form_text(form, "id", 20))), "fetch_removed")
        if what == "run":
            return await acting("/admin/fetch", services.fetch.run_all, "fetch_ran")
        try:
            acc = fetch_account(_form_text(form, "server", 300), _form_text(form, "username", 320),
                                _form_text(form, "password"),
                                protocol="imap" if _form_text(form, "protocol", 10) == "imap" else "pop3",
                                security={"starttls": "starttls", "none": "none"}.get(_form_text(form, "security", 10),
                                                                                      "tls"),
                                into=_form_text(form, "into", 320) or None,
                                interval=_optional(_form_text(form, "minutes", 6), 2, 1, 7 * 1440) * 60.0,
                                keep=form.get("keep") == "on", verify=form.get("verify") == "on")
        except MailError as exc:
            return _go("/admin/fetch", error=exc.public_key)
        return await acting("/admin/fetch", lambda: services.admin.fetch_add(actor(p), acc), "fetch_added")

    # --- API tokens and stored secrets ----------------------------------------------------------------
    async def tokens_page(request: Request, p: Principal, secret: str = "", created: Any = None) -> Response:
        return await page(request, "admin/tokens.html", p, tokens=await services.tokens.list(), now=time.time(),
                          secrets_=await services.secrets.list(), secret=secret, created=created,
                          domains=[d.name for d in await services.accounts.list_domains() if not d.alias_of])

    @app.get("/admin/tokens", include_in_schema=False)
    async def tokens(request: Request) -> Response:
        return await tokens_page(request, await who(request, admin=True))

    @app.post("/admin/tokens", include_in_schema=False)
    async def tokens_act(request: Request) -> Response:
        """Create (the secret is shown once, on the answer to this form) or revoke an API token; set or
        remove a stored secret (never shown)."""
        p, form = await changing(request, admin=True)
        what = _form_text(form, "action", 20)
        if what == "revoke":
            return await acting("/admin/tokens", lambda: services.admin.revoke_token(
                actor(p), _int(_form_text(form, "id", 20))), "token_revoked")
        if what in ("set_secret", "remove_secret"):
            value = _form_text(form, "password") if what == "set_secret" else ""
            return await acting("/admin/tokens", lambda: services.admin.secret_set(
                actor(p), _form_text(form, "name", 100), value), "secret_saved")
        if what != "create":
            raise PageError(400, "bad_request")
        role = {"admin": Role.ADMIN, "domain-admin": Role.DOMAIN_ADMIN}.get(_form_text(form, "role", 20), Role.USER)
        try:
            token, secret = await services.admin.create_token(
                actor(p), role, domains=[d for d in form.getlist("domains") if isinstance(d, str)][:100]
                if role is Role.DOMAIN_ADMIN else [], user=_form_text(form, "user", 320) if role is Role.USER else "",
                label=_form_text(form, "label", 200), lifetime=_int(_form_text(form, "days", 5)) * 86400.0)
        except MailError as exc:
            return _go("/admin/tokens", error=exc.public_key)
        return await tokens_page(request, p, secret, token)

    # --- who administers -------------------------------------------------------------------------------
    @app.get("/admin/admins", include_in_schema=False)
    async def admins(request: Request) -> Response:
        p = await who(request, admin=True)
        return await page(request, "admin/admins.html", p, grants=await services.logins.list_grants(),
                          domains=[d.name for d in await services.accounts.list_domains() if not d.alias_of])

    @app.post("/admin/admins", include_in_schema=False)
    async def admins_act(request: Request) -> Response:
        p, form = await changing(request, admin=True)
        what = _form_text(form, "action", 20)
        address = _form_text(form, "address", 320)
        if what == "grant":
            role = Role.DOMAIN_ADMIN if _form_text(form, "role", 20) == "domain-admin" else Role.ADMIN
            named = [d for d in form.getlist("domains") if isinstance(d, str)][:100]
            return await acting("/admin/admins", lambda: services.admin.grant_admin(actor(p), address, role, named),
                                "admin_granted")
        if what == "revoke":
            return await acting("/admin/admins", lambda: services.admin.revoke_admin(actor(p), address),
                                "admin_revoked")
        if what == "totp_off":
            return await acting("/admin/admins", lambda: services.admin.totp_off(actor(p), address), "totp_off")
        raise PageError(400, "bad_request")

    @app.get("/admin/security", include_in_schema=False)
    async def security(request: Request) -> Response:
        p = await who(request)
        grant = await services.logins.get_grant(p.token.subject)
        return await page(request, "admin/security.html", p, grant=grant, secret="", uri="")

    @app.post("/admin/security", include_in_schema=False)
    async def security_act(request: Request) -> Response:
        """An admin sets up its own second factor: the secret is shown once, on the answer to this form."""
        p, form = await changing(request)
        if _form_text(form, "action", 20) == "off":
            return await acting("/admin/security", lambda: services.admin.totp_off(actor(p), p.token.subject),
                                "totp_off")
        secret, uri = await services.admin.totp_setup(actor(p), p.token.subject)
        grant = await services.logins.get_grant(p.token.subject)
        return await page(request, "admin/security.html", p, grant=grant, secret=secret, uri=uri)

    # --- the usage report and broadcast notices ------------------------------------------------------
    async def usage_of(p: Principal, month: str) -> tuple[str, list[Any]]:
        month = month[:7] or this_month()
        try:
            return month, await usage_report(services.accounts, services.traffic, month, p.sees_domain)
        except MailError as exc:
            raise PageError(422, exc.public_key) from None

    @app.get("/admin/reports", include_in_schema=False)
    async def reports(request: Request, month: str = "") -> Response:
        p = await who(request)
        month, rows = await usage_of(p, month)
        return await page(request, "admin/reports.html", p, rows=rows, month=month)

    @app.get("/admin/reports/usage.csv", include_in_schema=False)
    async def reports_csv(request: Request, month: str = "") -> Response:
        month, rows = await usage_of(await who(request), month)
        return Response(usage_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="usage-{month}.csv"'})

    @app.get("/admin/notice", include_in_schema=False)
    async def notice(request: Request) -> Response:
        p = await who(request)
        return await page(request, "admin/notice.html", p, domains=[
            d.name for d in await services.accounts.list_domains() if not d.alias_of and p.sees_domain(d.name)])

    @app.post("/admin/notice", include_in_schema=False)
    async def send_notice(request: Request) -> Response:
        p, form = await changing(request)
        domain = _form_text(form, "domain", 255) or None
        if domain is None:
            admin_only(p)  # every user of the system: a system admin's notice
        else:
            domain = domain_of(p, domain)
        at = _form_text(form, "at", 40)
        try:  # a datetime-local field: the server's time zone (the plant's own)
            release = datetime.fromisoformat(at).astimezone().timestamp() if at else None
        except ValueError:
            raise PageError(422, "future_release_bad") from None
        return await acting("/admin/notice", lambda: services.admin.send_notice(
            actor(p), _form_text(form, "subject", 1000), _form_text(form, "body", 200_000), domain, release),
            "notice_scheduled" if release is not None else "notice_sent")

    # --- the REST API's reference ------------------------------------------------------------------------
    @app.get("/api/v1/docs", include_in_schema=False)
    async def api_docs(request: Request) -> Response:
        """Every operation of /api/v1/openapi.json, rendered on the server (no script, nothing from outside)."""
        spec = app.openapi()
        operations: dict[str, list[dict[str, Any]]] = {}
        for route, methods in spec["paths"].items():
            for method, op in methods.items():
                body = op.get("requestBody", {}).get("content", {})
                operations.setdefault((op.get("tags") or ["other"])[0], []).append({
                    "method": method.upper(), "path": route, "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "parameters": [(x["name"], x["in"], _type(x.get("schema", {})), x.get("required", False))
                                   for x in op.get("parameters", [])],
                    "body": ", ".join(f"{kind}: {_type(v.get('schema', {}))}" for kind, v in body.items()),
                    "responses": [(code, r.get("description", "")) for code, r in op.get("responses", {}).items()]})
        schemas = {name: [(prop, _type(detail), prop in schema.get("required", []))
                          for prop, detail in schema.get("properties", {}).items()]
                   for name, schema in spec.get("components", {}).get("schemas", {}).items()}
        return await page(request, "api_docs.html", None, operations=operations, schemas=schemas,
                          version=spec["info"]["version"])

    # --- the audit log ---------------------------------------------------------------------------------
    def audit_query(p: Principal, request: Request, limit: int) -> AuditQuery:
        params = request.query_params
        scope = None if p.role is Role.ADMIN else p.token.domains
        return AuditQuery(domains=scope, actor=params.get("actor", "")[:200], action=params.get("action", "")[:100],
                          since=_day(params.get("since", "")), until=_day(params.get("until", ""), end=True),
                          before_id=_int(params.get("before", "")), limit=limit)

    @app.get("/admin/audit", include_in_schema=False)
    async def audit(request: Request) -> Response:
        p = await who(request)
        entries = await services.admin.entries(audit_query(p, request, 101))
        params = request.query_params
        return await page(request, "admin/audit.html", p, entries=entries[:100], more=len(entries) > 100,
                          actor=params.get("actor", "")[:200], action=params.get("action", "")[:100],
                          since=params.get("since", "")[:10], until=params.get("until", "")[:10],
                          query=urlencode({k: v[:200] for k, v in params.items() if k != "before"}))

    @app.get("/admin/audit.csv", include_in_schema=False)
    async def audit_csv(request: Request) -> Response:
        p = await who(request)
        entries = await services.admin.entries(audit_query(p, request, 1000))

        def write() -> str:
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(("id", "at", "actor", "role", "ip", "action", "target", "domain", "before", "after"))
            for e in entries:
                d = entry_dict(e)
                writer.writerow([_cell(str(d[k] if d[k] is not None else "")) for k in
                                 ("id", "at", "actor", "role", "ip", "action", "target", "domain")]
                                + [_cell(e.before), _cell(e.after)])
            return "\ufeff" + out.getvalue()
        return Response(await asyncio.to_thread(write), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="audit.csv"'})

    from dizimail.web.pages_lists import PageKit, list_pages  # mailing lists: the same helpers, their own module
    list_pages(app, services, PageKit(who, changing, page, actor, domain_of))
    from dizimail.web.pages_contacts import contact_pages
    from dizimail.web.pages_mail import (  # webmail (issue #13)
        action_pages,
        compose_pages,
        folder_pages,
        mail_pages,
        receipt_pages,
        scheduled_pages,
    )
    from dizimail.web.pages_settings import settings_pages
    kit = PageKit(who, changing, page, actor, domain_of)
    for add in (mail_pages, compose_pages, action_pages, folder_pages, settings_pages, contact_pages, receipt_pages,
                scheduled_pages):
        add(app, services, kit)

    _ = gettext_for  # pages' own texts are in the templates


def _quota(text: str) -> int:
    """MiB from a form (empty: unlimited) → bytes."""
    if not text:
        return 0
    if not text.isdigit() or len(text) > 9:
        raise InvalidInput("bad_quota")
    return int(text) * 1024 * 1024


def _type(schema: dict[str, Any]) -> str:
    """A JSON Schema's type in a few words: ``DomainIn``, ``array of UserOut``, ``string | null``."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " | ".join(f'"{v}"' for v in schema["enum"])
    return str(schema.get("type", "any")) + (f" ({schema['format']})" if "format" in schema else "")


def _optional(text: str, default: int, low: int, high: int) -> int:
    """A whole number from a form, ``default`` when left empty; anything else is refused (bad_setting)."""
    return _bounded(text, low, high) if text else default


def _bounded(text: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise InvalidInput("bad_setting")
    return int(text)


def _score(text: str) -> float:
    """A spam threshold from a form: 0 to 10, or 10.5 (never)."""
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput("bad_setting") from None
    if not 0 <= value <= 10.5:
        raise InvalidInput("bad_setting")
    return value


def _day(text: str, end: bool = False) -> float:
    try:
        start = time.mktime(time.strptime(text[:10], "%Y-%m-%d"))
    except ValueError:
        return 0.0
    return start + 86400 if end else start


def _int(text: str) -> int:
    return int(text) if text.isdigit() and len(text) < 12 else 0


def _cell(text: str) -> str:
    """A CSV cell a spreadsheet shows as text: a leading =, +, - or @ would make it a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text

