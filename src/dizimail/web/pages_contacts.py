"""Webmail's address book (issue #13) on ``services.contacts``: a user's contacts and groups, vCard and CSV
import and export, "add the sender" from a message, the domain's directory (read-only), and the completion
the compose form asks for as the user types (JSON). Preferences (time zone, signature, whose pictures show)
on ``services.prefs``.

No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations at run time."""

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from dizimail.model.contacts import Contact
from dizimail.model.errors import MailError, NotFound
from dizimail.services.contacts import MAX_IMPORT
from dizimail.web.api import WebContext
from dizimail.web.pages import PageError
from dizimail.web.pages_lists import PageKit
from dizimail.web.pages_mail import disposition, logged_in, view

MAX_FIELD = 2000
SHOWN = 500  # contacts listed on the page at once (a search narrows them)


def _text(form: FormData, name: str, limit: int = 200) -> str:
    value = form.get(name, "")
    return value[:limit] if isinstance(value, str) else ""


def _id(text: str) -> int:
    return int(text) if text.isdigit() and len(text) < 10 else 0


def contact_pages(app: FastAPI, services: WebContext, kit: PageKit) -> None:
    book, prefs = services.contacts, services.prefs

    def back(path: str, error: str = "", done: str = "") -> Response:
        sep = "&" if "?" in path else "?"
        return RedirectResponse(path + (f"{sep}error={error}" if error else f"{sep}done={done}" if done else ""),
                                status_code=303)

    @app.get("/mail/contacts", include_in_schema=False)
    async def contacts(request: Request) -> Response:
        p, account = await logged_in(request, services, kit)
        search, group = request.query_params.get("q", "")[:200], _id(request.query_params.get("g", ""))
        edit = _id(request.query_params.get("id", ""))
        listed = await book.contacts(account, search, group or None)
        editing = next((c for c in await book.contacts(account) if c.id == edit), None) if edit else None
        return await view(services, kit, request, "mail/contacts.html", p, account, contacts=listed[:SHOWN],
                          total=len(listed),
                          groups=await book.groups(account), search=search, group=group, editing=editing,
                          max_import=MAX_IMPORT)

    @app.post("/mail/contacts", include_in_schema=False)
    async def change(request: Request) -> Response:
        p, form = await kit.changing(request, staff=False, max_files=1, max_part=MAX_IMPORT + 4096)
        account = await services.accounts.get_user(p.token.subject)
        action, where = _text(form, "action", 20), "/mail/contacts"
        try:
            upload = form.get("file")
            data = await upload.read() if isinstance(upload, UploadFile) else b""
        finally:
            await form.close()
        try:
            if action == "save":
                contact_id = await book.save(account, Contact(
                    _id(_text(form, "id", 12)), _text(form, "name"), _text(form, "email", 320), _text(form, "phone"),
                    _text(form, "org"), _text(form, "note", MAX_FIELD)))
                if form.get("groups_shown"):  # the edit form's group boxes: the contact is in the checked ones
                    chosen = {_id(g) for g in form.getlist("group") if isinstance(g, str)}
                    for group in await book.groups(account):
                        if (group.id in chosen) != (contact_id in group.members):
                            await book.set_member(account, group.id, contact_id, group.id in chosen)
                back_to = _text(form, "back", 1000)
                if back_to.startswith("/mail/read?"):  # "add the sender" from a message: back to it
                    return back(back_to, done="contact_saved")
                return back(where, done="contact_saved")
            if action == "remove":
                await book.remove(account, _id(_text(form, "id", 12)))
            elif action in ("group_add", "group_rename"):
                await book.save_group(account, _id(_text(form, "group", 12)) if action == "group_rename" else 0,
                                      _text(form, "name"))
            elif action == "group_remove":
                await book.remove_group(account, _id(_text(form, "group", 12)))
            elif action == "import":
                kind = "vcf" if _text(form, "kind", 5) == "vcf" else "csv"
                done = await book.import_file(account, data, kind)
                return back(f"{where}?imported={done.added}&refused={len(done.refused)}", done="contacts_imported")
            else:
                return back(where, error="bad_action")
        except MailError as exc:
            return back(where, error=exc.public_key)
        return back(where, done="contact_saved")

    @app.get("/mail/contacts/export", include_in_schema=False)
    async def export(request: Request) -> Response:
        _p, account = await logged_in(request, services, kit)
        kind = "vcf" if request.query_params.get("kind") == "vcf" else "csv"
        text = await book.export_file(account, kind)
        return Response(text.encode(), media_type="text/vcard; charset=utf-8" if kind == "vcf" else
                        "text/csv; charset=utf-8", headers={"Content-Disposition": disposition(
                            "attachment", f"contacts.{kind}")})

    @app.get("/mail/contacts/complete", include_in_schema=False)
    async def complete(request: Request) -> Response:
        """What the compose form offers as the user types: [{label, value, source}]."""
        _p, account = await logged_in(request, services, kit)
        found = await book.complete(account, request.query_params.get("q", "")[:200])
        return JSONResponse([{"label": c.label, "value": c.value, "source": c.source} for c in found])

    @app.get("/mail/directory", include_in_schema=False)
    async def directory(request: Request) -> Response:
        p, account = await logged_in(request, services, kit)
        search, after = request.query_params.get("q", "")[:200], request.query_params.get("after", "")[:320]
        users = await book.directory(account, search, after, limit=101)
        return await view(services, kit, request, "mail/directory.html", p, account, users=users[:100],
                          more=users[99].address if len(users) > 100 else "", search=search)

    # --- preferences ----------------------------------------------------------------------------------
    @app.post("/mail/settings/prefs", include_in_schema=False)
    async def save_prefs(request: Request) -> Response:
        p, form = await kit.changing(request, staff=False)
        account = await services.accounts.get_user(p.token.subject)
        try:
            await prefs.set(account, time_zone=_text(form, "time_zone", 64), signature=_text(form, "signature", 4000))
        except MailError as exc:
            return back("/mail/settings#prefs", error=exc.public_key)
        return back("/mail/settings", done="settings_saved")

    @app.post("/mail/settings/pictures", include_in_schema=False)
    async def trust_pictures(request: Request) -> Response:
        """"Always show pictures from this sender", from a message."""
        p, form = await kit.changing(request, staff=False)
        account = await services.accounts.get_user(p.token.subject)
        folder, uid = _text(form, "f", 1000) or "INBOX", _id(_text(form, "uid", 12))
        try:
            opened = await services.mail.open(account, folder, uid)
        except NotFound:
            raise PageError(404, "unknown_message") from None
        if opened.sender:
            await prefs.set(account, trust_pictures=opened.sender[0][1])
        return back(f"/mail/read?f={quote(folder)}&uid={uid}")
