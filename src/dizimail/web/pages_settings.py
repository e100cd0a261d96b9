"""Webmail's settings (issue #13), each on the service the other issues built, for the logged-in user only:
vacation, forwarding and filters (``services.sieve.rules``: a form that writes the user's generated Sieve),
the raw Sieve editor (``services.sieve.scripts``: checked as ManageSieve's CHECKSCRIPT, the error's line
shown), the spam thresholds and the personal model (``services.content.settings``), and the messages the
quarantine holds for the user (``services.quarantine``: view, release, delete). Every change goes through
``services.admin`` into the audit log with the user as its actor, as the REST API's.

No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations at run time."""

from itertools import zip_longest
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from dizimail.model.errors import MailError
from dizimail.model.types import Account, Quarantined
from dizimail.services.fetch import fetch_account
from dizimail.services.prefs import ZONES
from dizimail.services.sieve.rules import MAX_FILTERS, MailRules, checked
from dizimail.services.sieve.scripts import ScriptRefused
from dizimail.web.api import Principal, WebContext
from dizimail.web.pages import PageError
from dizimail.web.pages_lists import PageKit
from dizimail.web.pages_mail import logged_in, view

WEB_SCRIPT = "webmail"  # the name a script written on the page is kept under (when the user has none active)
MAX_FIELD = 10_000
MAX_HELD = 200  # held messages listed


def _text(form: FormData, name: str, limit: int = 200) -> str:
    value = form.get(name, "")
    return value[:limit].strip() if isinstance(value, str) else ""


def _texts(form: FormData, name: str) -> list[str]:
    return [v[:MAX_FIELD] if isinstance(v, str) else "" for v in form.getlist(name)[:MAX_FILTERS + 1]]


def rules_from(form: FormData) -> MailRules:
    """The rules the settings form gives (checked as the API's: InvalidInput names the fault)."""
    data: dict[str, Any] = {}
    if form.get("vacation") == "on":
        days = _text(form, "vacation_days", 3)
        data["vacation"] = {"text": _text(form, "vacation_text", MAX_FIELD), "subject": _text(form, "vacation_subject"),
                            "start": _text(form, "vacation_start", 10), "end": _text(form, "vacation_end", 10),
                            "days": int(days) if days.isdigit() else 1}
    targets = [t for t in _text(form, "forward_to", 2000).replace("，", ",").replace(";", ",").split(",") if t.strip()]
    if targets:
        data["forwarding"] = {"targets": [t.strip() for t in targets], "keep": form.get("forward_keep") == "on"}
    rows = zip_longest(_texts(form, "filter_field"), _texts(form, "filter_op"), _texts(form, "filter_value"),
                       _texts(form, "filter_action"), _texts(form, "filter_folder"), fillvalue="")
    data["filters"] = [{"field": f, "op": o, "value": v.strip(), "action": a, "folder": d.strip()}
                       for f, o, v, a, d in rows if v.strip()]
    return checked(data)


def held_for(entries: list[Quarantined], address: str) -> list[Quarantined]:
    """The held messages addressed to ``address`` alone (one with other recipients is the admin's to release)."""
    return [e for e in entries if e.kind in ("spam", "virus") and e.recipients
            and all(r.lower() == address for r in e.recipients)][:MAX_HELD]


def settings_pages(app: FastAPI, services: WebContext, kit: PageKit) -> None:
    scripts, admin = services.sieve, services.admin

    async def user(request: Request) -> tuple[Principal, Account]:
        return await logged_in(request, services, kit)

    def back(error: str = "", done: str = "settings_saved", where: str = "") -> Response:
        return RedirectResponse(f"/mail/settings?{'error=' + error if error else 'done=' + done}{where}",
                                status_code=303)

    @app.get("/mail/settings", include_in_schema=False)
    async def settings(request: Request) -> Response:
        p, account = await user(request)
        rules = await scripts.rules(account.id)
        setting = next((s for s in await services.spam_settings.entries() if s.scope == account.address), None)
        return await view(services, kit, request, "mail/settings.html", p, account, rules=rules, blank_filters=max(1, 3 - len(rules.filters)),
                              levels=await services.spam_settings.levels(account.address), setting=setting,
                              personal=await services.spam_settings.personal(account.address),
                              held=held_for(await services.quarantine.entries(), account.address), zones=ZONES,
                              external=await services.fetch.own(account.address),
                              personal_lists=await services.access.personal(account.address))

    @app.post("/mail/settings/rules", include_in_schema=False)
    async def save_rules(request: Request) -> Response:
        p, form = await kit.changing(request, staff=False)
        try:
            chosen = rules_from(form)
            await admin.change_sieve(kit.actor(p), "sieve.rules", p.token.subject, "rules",
                                     lambda a: scripts.set_rules(a.id, chosen))
        except MailError as exc:
            return back(exc.public_key, where="#rules")
        return back(where="#rules")

    @app.post("/mail/settings/spam", include_in_schema=False)
    async def save_spam(request: Request) -> Response:
        p, form = await kit.changing(request, staff=False)
        junk = _text(form, "junk_at", 6)
        try:  # every field checked before anything changes: a refused form leaves the lists as they were
            value = float(junk) if junk else None
            if value is not None and not 0 <= value <= 10.5:
                raise ValueError(junk)
        except ValueError:
            return back("bad_setting", where="#spam")
        lines = {k: _text(form, k, 50_000).splitlines()[:1000] for k in ("allow", "block")}
        try:
            await admin.personal_lists(kit.actor(p), p.token.subject, lines["allow"], lines["block"])
            levels = await services.spam_settings.levels(p.token.subject)
            tag = value if value is not None and value < levels.tag_at else None  # tagged at least where in Junk
            await admin.set_spam(kit.actor(p), p.token.subject, tag_at=tag, junk_at=value,
                                 personal=form.get("personal") == "on")
        except MailError as exc:
            return back(exc.public_key, where="#spam")
        return back(where="#spam")

    @app.post("/mail/settings/held", include_in_schema=False)
    async def held(request: Request) -> Response:
        p, form = await kit.changing(request, staff=False)
        entry = _text(form, "id", 12)
        mine = {e.id: e for e in held_for(await services.quarantine.entries(), p.token.subject)}
        if not entry.isdigit() or int(entry) not in mine:
            return back("unknown_quarantine_id", where="#held")
        try:
            if _text(form, "action", 10) == "release":
                if mine[int(entry)].kind == "virus":  # a virus is the administrator's to let through, if anyone's
                    return back("virus_release_admin", where="#held")
                await admin.quarantine_release(kit.actor(p), int(entry))
                return back(done="released", where="#held")
            await admin.quarantine_delete(kit.actor(p), int(entry))
        except MailError as exc:
            return back(exc.public_key, where="#held")
        return back(done="held_removed", where="#held")

    @app.get("/mail/settings/held/{entry_id}", include_in_schema=False)
    async def held_message(request: Request, entry_id: int) -> Response:
        """A held message's text, as a download (never rendered: it may be what the scanner caught)."""
        p, _account = await user(request)
        if entry_id not in {e.id for e in held_for(await services.quarantine.entries(), p.token.subject)}:
            raise PageError(404, "unknown_quarantine_id")
        data = await services.quarantine.message(await services.quarantine.get(entry_id))
        return Response(data, media_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="held-{entry_id}.eml"'})

    # --- the user's external mailboxes (the fetcher of the two-network issue) ---------------------------
    @app.post("/mail/settings/fetch", include_in_schema=False)
    async def own_fetch(request: Request) -> Response:
        p, form = await kit.changing(request, staff=False)
        address, action = p.token.subject, _text(form, "action", 10)
        try:
            if action == "remove":
                await admin.fetch_remove_own(kit.actor(p), address, int(_text(form, "id", 12) or 0))
                return back(done="fetch_removed", where="#fetch")
            if action == "run":
                for acc in await services.fetch.own(address):
                    await services.fetch.run_one(acc)
                return back(done="fetch_ran", where="#fetch")
            acc = fetch_account(_text(form, "server", 300), _text(form, "username", 320), _text(form, "password", 1000),
                                protocol="imap" if _text(form, "protocol", 10) == "imap" else "pop3",
                                security="starttls" if _text(form, "security", 10) == "starttls" else "tls",
                                into=address, keep=form.get("keep") == "on", verify=form.get("verify") == "on")
            await admin.fetch_add_own(kit.actor(p), address, acc)
        except (MailError, ValueError) as exc:
            return back(exc.public_key if isinstance(exc, MailError) else "bad_setting", where="#fetch")
        return back(done="fetch_added", where="#fetch")

    # --- the raw Sieve editor ---------------------------------------------------------------------------
    async def editor(request: Request, p: Principal, account: Account, name: str, text: str, status: int = 200,
                     problem: ScriptRefused | None = None, checked_ok: bool = False) -> Response:
        lines = text.splitlines()
        line = problem.error.line if problem is not None else 0
        excerpt = [(n, lines[n - 1]) for n in range(max(1, line - 2), min(len(lines), line + 2) + 1)] if line else []
        return await view(services, kit, request, "mail/sieve.html", p, account, status, script_name=name, script=text, problem=problem, excerpt=excerpt, bad_line=line,
                              checked_ok=checked_ok, generated=(await scripts.rules(account.id)).empty is False)

    @app.get("/mail/settings/sieve", include_in_schema=False)
    async def sieve(request: Request) -> Response:
        p, account = await user(request)
        active = next((s.name for s in await scripts.list(account.id) if s.active), None)
        text = await scripts.get(account.id, active) if active else ""
        return await editor(request, p, account, active or WEB_SCRIPT, text)

    @app.post("/mail/settings/sieve", include_in_schema=False)
    async def save_sieve(request: Request) -> Response:
        p, form = await kit.changing(request, staff=False, max_part=256 << 10)
        account = await services.accounts.get_user(p.token.subject)
        name, text = _text(form, "name", 200) or WEB_SCRIPT, form.get("script", "")
        text = text.replace("\r\n", "\n") if isinstance(text, str) else ""
        action = _text(form, "action", 10)
        try:
            if action == "off":
                await admin.change_sieve(kit.actor(p), "sieve.activate", p.token.subject, "",
                                         lambda a: scripts.activate(a.id, None))
                return RedirectResponse("/mail/settings/sieve?done=settings_saved", status_code=303)
            await scripts.verify(text)
            if action == "check":
                return await editor(request, p, account, name, text, checked_ok=True)
            async def put(a: Account) -> None:
                await scripts.put(a.id, name, text, activate=True)
            await admin.change_sieve(kit.actor(p), "sieve.put", p.token.subject, name, put)
        except ScriptRefused as exc:
            return await editor(request, p, account, name, text, 422, exc)
        except MailError as exc:
            return RedirectResponse(f"/mail/settings/sieve?error={exc.public_key}", status_code=303)
        return RedirectResponse("/mail/settings/sieve?done=settings_saved", status_code=303)
