"""Webmail (issue #13), first part: reading. A logged-in user's folders with their counts, a folder's
messages newest first in pages of 50, a message (its header, its text, its HTML in a sandboxed frame,
its attachments to download), on ``services.webmail`` (the services IMAP uses: an IMAP client sees at
once that the browser opened a message, and the browser the client's changes at its next page).

Folders travel as a query parameter (``?f=工作/检修``): names may hold "/" and any character. The HTML of a
message is served by its own URL into ``<iframe sandbox>`` with a policy that runs no script and loads
nothing but inline images (``data:``): remote images stay blocked, a form cannot be sent, a link opens
outside the page. Attachments are downloads (``Content-Disposition: attachment``, ``nosniff``), never
shown inline.

No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations at run time."""

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date, datetime
from typing import Any
from urllib.parse import quote, urlencode

from babel.dates import LOCALTZ
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.datastructures import UploadFile

from dizimail.model.errors import InvalidInput, MailError, NotFound
from dizimail.model.types import Account
from dizimail.services import mbox
from dizimail.services.compose import MAX_FILES, Draft, Upload
from dizimail.services.webmail import Attachment, Search, image_type
from dizimail.web.api import Principal, WebContext
from dizimail.web.pages import PageError
from dizimail.web.pages_lists import PageKit
from dizimail.web.render import PAGE_CSP

FRAME_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'; "
             "form-action 'none'; base-uri 'none'; sandbox allow-popups allow-popups-to-escape-sandbox")
IMAGE_CSP = "default-src 'none'; img-src 'self'; frame-ancestors 'none'; sandbox"
PDF_CSP = "default-src 'none'; object-src 'self'; frame-ancestors 'none'"  # (a sandbox would stop the PDF viewer)
PICTURES_CSP = FRAME_CSP.replace("img-src data:", "img-src data: https: http:")  # the user allowed pictures
FRAME_DOC = ('<!doctype html><html><head><meta charset="utf-8"><base target="_blank">'
             '<style>body{font-family:sans-serif;margin:0.5rem;overflow-wrap:anywhere}img{max-width:100%}</style>'
             '</head><body>{}</body></html>')
MAX_FOLDER = 1000
SEARCH_PARAMS = ("q", "in", "since", "before", "att", "all", "threads")
MAX_FIELD = 10_000  # an address field of the compose form
MAX_MESSAGE_TEXT = 1_000_000  # the text of a message written here
MAX_MBOX = 256 << 20  # octets of an mbox file imported at once
MAX_PART = 4 << 20  # a field of the compose form (its text: a million characters of UTF-8); files apart


def disposition(kind: str, filename: str) -> str:
    """Content-Disposition with the file name in ASCII and in UTF-8 (RFC 6266)."""
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


async def _moment(services: WebContext, account: Account, text: str) -> float:
    """A ``datetime-local`` field (2026-12-08T09:30) in the user's time zone, as a timestamp."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput("bad_send_at", text) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=(await services.prefs.get(account)).zone or LOCALTZ)
    return moment.timestamp()


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text[:10]) if text else None
    except ValueError:
        return None


def _search(request: Request) -> Search:
    """The search box's fields (``q``, ``in``, ``since``, ``before``, ``att``, ``all``)."""
    q = request.query_params
    return Search(q.get("q", "")[:200], q.get("in", "text")[:10], _day(q.get("since", "")), _day(q.get("before", "")),
                  q.get("att") == "1", q.get("all") == "1")


async def _local(services: WebContext, account: Account, moment: float | None) -> str:
    """A timestamp as a ``datetime-local`` field shows it, in the user's time zone ("" for none)."""
    if moment is None:
        return ""
    zone = (await services.prefs.get(account)).zone or LOCALTZ
    return datetime.fromtimestamp(moment, zone).strftime("%Y-%m-%dT%H:%M")


def _folder(request: Request) -> str:
    name = request.query_params.get("f", "INBOX")[:MAX_FOLDER]
    return name or "INBOX"


def _number(request: Request, name: str, default: int = 0) -> int:
    text = request.query_params.get(name, "")
    return int(text) if text.isdigit() and len(text) < 10 else default


async def view(services: WebContext, kit: PageKit, request: Request, template: str, p: Principal, account: Account,
               status: int = 200, **context: Any) -> Response:
    """A webmail page: its own context, the folder list (unless given), and the user's preferences (dates in
    their time zone)."""
    prefs = await services.prefs.get(account)
    if "folders" not in context:
        context["folders"] = await services.mail.folder_list(account)
    context.setdefault("folder", "")
    return await kit.page(request, template, p, status, zone=prefs.zone, prefs=prefs, **context)


async def logged_in(request: Request, services: WebContext, kit: PageKit) -> tuple[Principal, Account]:
    """The session's user and its account (not logged in: to the login page, and back after it)."""
    p = await kit.who(request, staff=False)
    return p, await services.accounts.get_user(p.token.subject)


def mail_pages(app: FastAPI, services: WebContext, kit: PageKit) -> None:
    reader = services.mail

    async def user(request: Request) -> tuple[Principal, Account]:
        return await logged_in(request, services, kit)

    @app.get("/mail", include_in_schema=False)
    async def folder(request: Request) -> Response:
        p, account = await user(request)
        name, number = _folder(request), max(1, _number(request, "page", 1))
        search, threaded = _search(request), request.query_params.get("threads") == "1"
        counts: dict[int, int] = {}
        try:
            if threaded and not search.active:
                total, conversations = await reader.threads(account, name, number)
                messages, counts = [m for m, _n in conversations], {m.uid: n for m, n in conversations}
            else:
                total, messages = await reader.page(account, name, number, search)
        except NotFound:
            raise PageError(404, "unknown_mailbox") from None
        pages = max(1, (total + 49) // 50)
        folders = await reader.folder_list(account)
        special = next((f.special_use for f in folders if f.name == name), None)
        return await view(services, kit, request, "mail/folder.html", p, account, folders=folders, folder=name,
                          messages=messages, total=total, number=number, pages=pages, search=search,
                          query=urlencode({k: v for k, v in request.query_params.items() if k in SEARCH_PARAMS}),
                          threaded=threaded and not search.active, counts=counts,
                          drafts=special == "\\Drafts", junk=special == "\\Junk")

    @app.get("/mail/events", include_in_schema=False)
    async def events(request: Request) -> Response:
        """Server-sent events (the page's EventSource): ``changed`` whenever the user's mail changes."""
        _p, account = await user(request)
        stream = reader.changes(account)
        try:
            first = await anext(stream)  # a refused stream (too many) fails here, before any answer
        except MailError as exc:
            return Response(exc.public_key, status_code=429, media_type="text/plain")

        async def lines() -> AsyncIterator[bytes]:
            yield b"retry: 2000\n\n"
            news: bool | None = first
            try:
                while news is not None:
                    if await request.is_disconnected():
                        break
                    yield b"event: changed\ndata: 1\n\n" if news else b": quiet\n\n"
                    news = await anext(stream, None)
            finally:
                await stream.aclose()
        return StreamingResponse(lines(), media_type="text/event-stream", headers={"Cache-Control": "no-store",
                                                                                   "X-Accel-Buffering": "no"})

    @app.get("/mail/read", include_in_schema=False)
    async def read(request: Request) -> Response:
        p, account = await user(request)
        name, uid = _folder(request), _number(request, "uid")
        try:
            message = await reader.open(account, name, uid)
        except NotFound:
            raise PageError(404, "unknown_message") from None
        folders, prefs = await reader.folder_list(account), await services.prefs.get(account)
        junk = any(f.name == name and f.special_use == "\\Junk" for f in folders)
        trusted = bool(message.sender) and message.sender[0][1].lower() in prefs.pictures_from
        response = await view(services, kit, request, "mail/message.html", p, account, folders=folders, folder=name,
                              message=message, junk=junk,
                              pictures=not junk and (request.query_params.get("pictures") == "1" or trusted))
        response.headers["Content-Security-Policy"] = PAGE_CSP + "; frame-src 'self'"
        return response

    @app.get("/mail/conversation", include_in_schema=False)
    async def conversation(request: Request) -> Response:
        """Every message of a conversation, oldest first (each marked read, as opening it would)."""
        p, account = await user(request)
        name = _folder(request)
        try:
            messages = await reader.conversation(account, name, _number(request, "uid"))
        except NotFound:
            raise PageError(404, "unknown_message") from None
        response = await view(services, kit, request, "mail/conversation.html", p, account, folder=name,
                              messages=messages)
        response.headers["Content-Security-Policy"] = PAGE_CSP + "; frame-src 'self'"
        return response

    @app.get("/mail/html", include_in_schema=False)
    async def html(request: Request) -> Response:
        _p, account = await user(request)
        try:
            message = await reader.open(account, _folder(request), _number(request, "uid"))
        except NotFound:
            raise PageError(404, "unknown_message") from None
        policy = PICTURES_CSP if request.query_params.get("pictures") == "1" else FRAME_CSP
        return Response(FRAME_DOC.replace("{}", message.html or ""), media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": policy, "X-Frame-Options": "SAMEORIGIN",
                                 "Referrer-Policy": "no-referrer"})

    @app.get("/mail/part", include_in_schema=False)
    async def part(request: Request) -> Response:
        _p, account = await user(request)
        try:
            data, _kind, filename = await reader.part(account, _folder(request), _number(request, "uid"),
                                                      _number(request, "n"))
        except NotFound:
            raise PageError(404, "unknown_message") from None
        if request.query_params.get("view") == "1":  # a preview: only what its own bytes show to be an image or a PDF
            kind = image_type(data) or ("application/pdf" if data.startswith(b"%PDF-") else None)
            if kind is not None:
                return Response(data, media_type=kind, headers={
                    "Content-Disposition": disposition("inline", filename),
                    "Content-Security-Policy": PDF_CSP if kind == "application/pdf" else IMAGE_CSP})
        return Response(data, media_type="application/octet-stream",
                        headers={"Content-Disposition": disposition("attachment", filename)})

    @app.get("/mail/zip", include_in_schema=False)
    async def zipped(request: Request) -> Response:
        """Every attachment of a message in one zip (names made safe and unique)."""
        _p, account = await user(request)
        name, uid = _folder(request), _number(request, "uid")
        try:
            data, subject = await reader.zipped(account, name, uid)
        except NotFound:
            raise PageError(404, "unknown_message") from None
        return Response(data, media_type="application/zip",
                        headers={"Content-Disposition": disposition("attachment", f"{subject or uid}.zip")})


def compose_pages(app: FastAPI, services: WebContext, kit: PageKit) -> None:
    """Writing: ``/mail/compose`` (new, ``?reply=UID``, ``?all=UID``, ``?forward=UID`` with ``?f=FOLDER``)
    and its form's POST to ``/mail/send``."""
    sender = services.compose

    async def user(request: Request) -> tuple[Principal, Account]:
        return await logged_in(request, services, kit)

    async def form(request: Request, p: Principal, account: Account, draft: Draft, status: int = 200,
                   error: str = "", kept: list[Attachment] | None = None) -> Response:
        if kept is None and draft.keep and draft.draft_uid:  # the form comes back (refused): its kept files too
            try:
                kept = [a for a in (await sender.reopen(account, draft.draft_uid))[1] if a.index in draft.keep]
            except NotFound:
                kept = []
        return await view(services, kit, request, "mail/compose.html", p, account, status, draft=draft, compose_error=error,  # (the query's error is for redirects)
                              max_size=sender.max_size, kept=kept or [], identities=await sender.identities(account),
                              me_address=account.address, send_at_text=await _local(services, account, draft.send_at))

    @app.get("/mail/compose", include_in_schema=False)
    async def compose(request: Request) -> Response:
        p, account = await user(request)
        draft, kept = Draft(to=request.query_params.get("to", "")[:MAX_FIELD]), list[Attachment]()
        try:
            if request.query_params.get("draft"):
                draft, kept = await sender.reopen(account, _number(request, "draft"))
            for how in ("reply", "all", "forward", "attach"):
                if request.query_params.get(how):
                    draft = await sender.answer(account, _folder(request), _number(request, how), how)
                    break
        except NotFound:
            raise PageError(404, "unknown_message") from None
        signature = (await services.prefs.get(account)).signature
        if signature and not draft.draft_uid:  # "-- " before it (RFC 3676 §4.3), above a quoted original
            draft = replace(draft, body="\n\n-- \n" + signature + draft.body)
        return await form(request, p, account, draft, kept=kept)

    async def posted(request: Request) -> tuple[Principal, Account, Draft, list[Upload], str, bool]:
        """The compose form as posted: the draft, its new files, when to send it ("" now), and whether it is to
        be saved (not sent)."""
        p, fields = await kit.changing(request, staff=False, max_files=MAX_FILES, max_part=MAX_PART)
        account = await services.accounts.get_user(p.token.subject)
        try:
            files = [Upload(f.filename or "", f.content_type or "application/octet-stream", await f.read())
                     for f in fields.getlist("attach") if isinstance(f, UploadFile) and (f.filename or f.size)]
        finally:
            await fields.close()  # the spooled files (on disk past 1 MiB) go now

        def text(name: str, limit: int = MAX_FIELD) -> str:
            value = fields.get(name, "")
            return value[:limit] if isinstance(value, str) else ""
        answered, draft_uid = text("answer_uid", 12), text("draft_uid", 12)
        keep = tuple(int(k) for k in fields.getlist("keep")[:MAX_FILES] if isinstance(k, str) and k.isdigit()
                     and len(k) < 6)
        original = text("original_uid", 12)
        draft = Draft(to=text("to"), cc=text("cc"), bcc=text("bcc"), subject=text("subject", 2000),
                      body=text("body", MAX_MESSAGE_TEXT), in_reply_to=text("in_reply_to", 1000),
                      references=text("references", 8000),
                      answers=(text("answer_f", MAX_FOLDER) or "INBOX", int(answered)) if answered.isdigit() else None,
                      draft_uid=int(draft_uid) if draft_uid.isdigit() else 0, keep=keep,
                      html=text("html", MAX_MESSAGE_TEXT) if fields.get("rich") == "1" else "",
                      priority=text("priority", 10), receipt=fields.get("receipt") == "on",
                      sender=text("sender", 320).strip().lower() if text("sender", 320).strip().lower() != account.address
                      else "",
                      original=(text("original_f", MAX_FOLDER) or "INBOX", int(original)) if original.isdigit() else None)
        return p, account, draft, files, text("send_at", 40), bool(fields.get("save"))

    @app.post("/mail/send", include_in_schema=False)
    async def send(request: Request) -> Response:
        p, account, draft, files, send_at, save = await posted(request)
        try:
            if send_at:
                draft = replace(draft, send_at=await _moment(services, account, send_at))
            if save:
                uid = await sender.save_draft(account, draft, files)
            else:
                await sender.send(account, draft, files)
        except MailError as exc:
            return await form(request, p, account, draft, 422, exc.public_key)
        if save:
            return RedirectResponse(f"/mail/compose?draft={uid}&done=draft_saved", status_code=303)
        return RedirectResponse(f"/mail?done={'scheduled' if draft.send_at else 'sent'}", status_code=303)

    @app.post("/mail/draft", include_in_schema=False)
    async def autosave(request: Request) -> Response:
        """The compose page's script saves the form here now and then (without new files): the new
        draft's UID, for the form's next save to replace."""
        _p, account, draft, files, send_at, _save = await posted(request)
        try:
            if send_at:
                draft = replace(draft, send_at=await _moment(services, account, send_at))
            uid = await sender.save_draft(account, draft, files)
            _saved, kept = await sender.reopen(account, uid)
        except MailError as exc:
            return JSONResponse({"error": exc.public_key}, status_code=422)
        return JSONResponse({"uid": uid, "keep": [a.index for a in kept]})


def scheduled_pages(app: FastAPI, services: WebContext, kit: PageKit) -> None:
    """``/mail/scheduled``: the user's messages waiting for their sending time, each with "cancel"."""

    @app.get("/mail/scheduled", include_in_schema=False)
    async def scheduled(request: Request) -> Response:
        p, account = await logged_in(request, services, kit)
        return await view(services, kit, request, "mail/scheduled.html", p, account,
                          waiting=await services.compose.scheduled(account))

    @app.post("/mail/scheduled", include_in_schema=False)
    async def cancel(request: Request) -> Response:
        p, fields = await kit.changing(request, staff=False)
        account = await services.accounts.get_user(p.token.subject)
        try:
            await services.compose.cancel(account, str(fields.get("id", ""))[:64])
        except MailError as exc:
            return RedirectResponse(f"/mail/scheduled?error={exc.public_key}", status_code=303)
        return RedirectResponse("/mail/scheduled?done=send_cancelled", status_code=303)


def receipt_pages(app: FastAPI, services: WebContext, kit: PageKit) -> None:
    """``POST /mail/receipt``: send the read receipt a message asks for, or decline (both mark it $MDNSent)."""

    @app.post("/mail/receipt", include_in_schema=False)
    async def receipt(request: Request) -> Response:
        p, fields = await kit.changing(request, staff=False)
        account = await services.accounts.get_user(p.token.subject)
        folder = str(fields.get("f", "INBOX"))[:MAX_FOLDER] or "INBOX"
        uid_text = str(fields.get("uid", ""))
        back = f"/mail/read?f={quote(folder)}&uid={uid_text if uid_text.isdigit() else 0}"
        if not uid_text.isdigit() or len(uid_text) > 9:
            raise PageError(404, "unknown_message")
        try:
            sent = await services.compose.receipt(account, folder, int(uid_text), fields.get("action") == "send")
        except NotFound:
            raise PageError(404, "unknown_message") from None
        except MailError as exc:
            return RedirectResponse(f"{back}&error={exc.public_key}", status_code=303)
        return RedirectResponse(f"{back}&done=receipt_sent" if sent else back, status_code=303)


def action_pages(app: FastAPI, services: WebContext, kit: PageKit) -> None:
    """``POST /mail/act``: read, unread, flag, unflag, move, delete, for the messages a form names (the
    folder's check boxes, or the message page's buttons); back to where it came from."""
    reader = services.mail

    @app.post("/mail/act", include_in_schema=False)
    async def act(request: Request) -> Response:
        p, fields = await kit.changing(request, staff=False)
        account = await services.accounts.get_user(p.token.subject)
        folder = str(fields.get("f", "INBOX"))[:MAX_FOLDER] or "INBOX"
        uids = [int(u) for u in fields.getlist("uid")[:1000] if isinstance(u, str) and u.isdigit() and len(u) < 10]
        action, target = str(fields.get("action", ""))[:20], str(fields.get("target", ""))[:MAX_FOLDER]
        back = f"/mail?f={quote(folder)}"
        if action in ("flag", "unflag") and fields.get("from_message") and len(uids) == 1:
            back = f"/mail/read?f={quote(folder)}&uid={uids[0]}"
        try:
            await reader.act(account, folder, uids, action, target)
        except MailError as exc:
            return RedirectResponse(f"{back}&error={exc.public_key}", status_code=303)
        return RedirectResponse(back, status_code=303)


def folder_pages(app: FastAPI, services: WebContext, kit: PageKit) -> None:
    """``/mail/folders``: every folder with its counts, and the forms that create, rename, delete,
    subscribe to and empty them (``POST /mail/folders``), as an IMAP client would."""
    reader = services.mail

    @app.get("/mail/folders", include_in_schema=False)
    async def folders(request: Request) -> Response:
        p, account = await logged_in(request, services, kit)
        return await view(services, kit, request, "mail/folders.html", p, account)

    @app.get("/mail/export", include_in_schema=False)
    async def export_folder(request: Request) -> Response:
        """A folder as an mbox file or a zip of .eml files, streamed (the seed's mail backup)."""
        _p, account = await logged_in(request, services, kit)
        name, kind = _folder(request), "zip" if request.query_params.get("kind") == "zip" else "mbox"
        try:
            await services.mail.folders.get(account, name)
        except NotFound:
            raise PageError(404, "unknown_mailbox") from None
        return StreamingResponse(mbox.export(services.mail.mailstore, account, name, kind),
                                 media_type="application/zip" if kind == "zip" else "application/mbox",
                                 headers={"Content-Disposition": disposition("attachment", mbox.export_name(name, kind))})

    @app.post("/mail/import", include_in_schema=False)
    async def import_folder(request: Request) -> Response:
        """An mbox file's messages into a folder (each as IMAP APPEND: the quota counts)."""
        p, fields = await kit.changing(request, staff=False, max_files=1, max_part=MAX_MBOX)
        account = await services.accounts.get_user(p.token.subject)
        name = str(fields.get("f", "INBOX"))[:MAX_FOLDER] or "INBOX"
        upload = fields.get("file")
        try:
            await services.mail.folders.get(account, name)
            if not isinstance(upload, UploadFile):
                raise InvalidInput("bad_mbox", "no file")
            result = await mbox.import_mbox(services.compose.ingest, account, name, upload.file)
        except MailError as exc:
            return RedirectResponse(f"/mail/folders?error={exc.public_key}", status_code=303)
        finally:
            await fields.close()
        return RedirectResponse(f"/mail/folders?done=mbox_imported&added={result.added}&skipped={result.skipped}",
                                status_code=303)

    @app.post("/mail/folders", include_in_schema=False)
    async def change(request: Request) -> Response:
        p, fields = await kit.changing(request, staff=False)
        account = await services.accounts.get_user(p.token.subject)
        action = str(fields.get("action", ""))[:20]
        name, new = str(fields.get("f", ""))[:MAX_FOLDER], str(fields.get("new", ""))[:MAX_FOLDER]
        try:
            await reader.change_folder(account, action, name, new)
        except MailError as exc:
            return RedirectResponse(f"/mail/folders?error={exc.public_key}", status_code=303)
        return RedirectResponse("/mail/folders?done=folder_changed", status_code=303)

