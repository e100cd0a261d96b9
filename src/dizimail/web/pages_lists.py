"""The admin pages of mailing lists (``/admin/lists``, issue #12) and the members' one-click unsubscription
(``/list/unsubscribe``, RFC 8058), on ``services.lists`` and ``services.list_mail`` as the REST API
(web.api_lists) and ``dizimail list``; every change through ``services.admin.change_list`` into the audit log.

The admin pages follow web.pages: a system admin reaches every list, a domain admin its domains' (404
for another's), each change a POST form with its CSRF token answered by a redirect. The unsubscription
is the one form without a CSRF token or a session: a mail provider POSTs it directly from the link in
a member's copy (List-Unsubscribe, List-Unsubscribe-Post), and the link's MAC (services.lists.addresses)
is what makes it valid. Its GET only shows the confirmation form: link checkers and previews fetch
links, and must unsubscribe nobody.

No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations at run time."""

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import Response
from markupsafe import Markup
from starlette.datastructures import FormData

from dizimail.model.audit import Actor
from dizimail.model.errors import InvalidInput, MailError, NotFound
from dizimail.model.lists import ListChange, MailingList
from dizimail.model.tokens import Role
from dizimail.services.accounts import normalize_address
from dizimail.services.admin import list_state
from dizimail.services.lists.manage import member_address
from dizimail.web.api import Principal, WebContext
from dizimail.web.pages import PageError, _form_text, _go, _int
from dizimail.web.render import environment, render
from dizimail.web.session import LANGUAGES, language

MAX_AT_ONCE = 10_000  # members added from one form
SPLIT = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class PageKit:
    """What web.pages gives every page: the session's principal, a checked form, the rendered page, the
    audit actor, a domain the principal reaches (404 otherwise)."""

    who: Callable[..., Awaitable[Principal]]
    changing: Callable[..., Awaitable[tuple[Principal, FormData]]]
    page: Callable[..., Awaitable[Response]]
    actor: Callable[[Principal], Actor]
    domain_of: Callable[[Principal, str], str]


def _addresses(text: str) -> list[str]:
    return [a for a in SPLIT.split(text) if a][:MAX_AT_ONCE]


def list_pages(app: FastAPI, services: WebContext, kit: PageKit) -> None:
    lists, actor = services.lists, kit.actor

    def address_of(p: Principal, address: str) -> str:
        """A list's address the session reaches, as stored: 404 for another domain's."""
        try:
            normalized = normalize_address(address)
        except InvalidInput:
            raise PageError(404, "not_found") from None
        kit.domain_of(p, normalized.rpartition("@")[2])
        return normalized

    async def mailing_list(p: Principal, address: str) -> MailingList:
        try:
            return await lists.get(address_of(p, address))
        except NotFound:
            raise PageError(404, "unknown_list") from None

    def domains_reached(p: Principal, addresses: list[str]) -> None:
        """A domain admin names no @domain (every user of it) outside its domains."""
        if p.role is not Role.ADMIN:
            for text in addresses:
                if text.startswith("@"):
                    kit.domain_of(p, member_address(text)[1:])

    # --- every list ----------------------------------------------------------------------------------
    @app.get("/admin/lists", include_in_schema=False)
    async def index(request: Request) -> Response:
        p = await kit.who(request)
        reached = [m for m in await lists.all() if p.sees_domain(m.address.rpartition("@")[2])]
        held = {m.address: len(await lists.held(m.address)) for m in reached}
        domains = [d.name for d in await services.accounts.list_domains() if not d.alias_of and p.sees_domain(d.name)]
        return await kit.page(request, "admin/lists.html", p, lists=reached, held=held, domains=domains)

    @app.post("/admin/lists", include_in_schema=False)
    async def create(request: Request) -> Response:
        p, form = await kit.changing(request)
        try:
            address = normalize_address(f"{_form_text(form, 'local_part', 64)}@{_form_text(form, 'domain', 255)}")
        except MailError as exc:
            return _go("/admin/lists", error=exc.public_key)
        address = address_of(p, address)
        try:
            made = await services.admin.change_list(
                actor(p), "list.add", address,
                lambda: lists.create(address, name=_form_text(form, "name", 2000),
                                     policy=_form_text(form, "policy", 20) or "members"),
                after=list_state)
        except MailError as exc:
            return _go("/admin/lists", error=exc.public_key)
        return _go(f"/admin/lists/{quote(made.address)}", done="mlist_added")

    # --- one list ------------------------------------------------------------------------------------
    @app.get("/admin/lists/{address}", include_in_schema=False)
    async def one(request: Request, address: str) -> Response:
        p = await kit.who(request)
        mlist = await mailing_list(p, address)
        return await kit.page(request, "admin/list.html", p, mlist=mlist, members=await lists.members(mlist.address),
                              held=await lists.held(mlist.address))

    @app.post("/admin/lists/{address}", include_in_schema=False)
    async def change(request: Request, address: str) -> Response:
        p, form = await kit.changing(request)
        mlist = await mailing_list(p, address)
        back = f"/admin/lists/{quote(mlist.address)}"
        what = _form_text(form, "action", 20)
        try:
            step = _step(what, form, p, mlist, services, actor, domains_reached)
            if step is None:
                raise PageError(400, "bad_request")
            done = await step()
        except MailError as exc:
            return _go(back, error=exc.public_key)
        return _go("/admin/lists" if what == "delete" else back, done=done)

    # --- one-click unsubscription (RFC 8058) ---------------------------------------------------------
    def link(request: Request) -> tuple[str, str, str]:
        params = request.query_params
        return params.get("list", "")[:320], params.get("member", "")[:320], params.get("mac", "")[:64]

    async def valid(list_address: str, member: str, mac: str) -> bool:
        try:
            mlist = await lists.get(list_address)
        except (NotFound, InvalidInput):
            return False
        return services.list_mail.keys.verify_unsubscribe(mlist, member, mac)

    async def answer(request: Request, status: int, state: str, list_address: str, member: str,
                     mac: str = "") -> Response:
        """The page in both languages (the member's language is not known), the caller's first."""
        first = language(request)
        order = [first, *(lang for lang in LANGUAGES if lang != first)]
        context = {"state": state, "list_address": list_address, "member": member,
                   "action": "/list/unsubscribe?" + urlencode({"list": list_address, "member": member, "mac": mac},
                                                              quote_via=quote) if mac else ""}

        def parts() -> list[Markup]:
            return [Markup(environment(lang).get_template("_unsubscribe.html").render(**context)) for lang in order]
        return await render(request, "unsubscribe.html", status, parts=await asyncio.to_thread(parts), me=None,
                            role="", csrf="", done="", error="")

    @app.get("/list/unsubscribe", include_in_schema=False)
    async def unsubscribe_page(request: Request) -> Response:
        list_address, member, mac = link(request)
        if not await valid(list_address, member, mac):
            return await answer(request, 400, "invalid", list_address, member)
        return await answer(request, 200, "confirm", list_address, member, mac)

    @app.post("/list/unsubscribe", include_in_schema=False)
    async def unsubscribe(request: Request) -> Response:
        """RFC 8058 §3.2: the body is ``List-Unsubscribe=One-Click`` (form-encoded or multipart), no cookie."""
        list_address, member, mac = link(request)
        form = await request.form(max_files=0, max_fields=5)  # a malformed body: 400 (starlette)
        if form.get("List-Unsubscribe") != "One-Click" or not await services.list_mail.one_click(
                list_address, member, mac):
            return await answer(request, 400, "invalid", list_address, member)
        return await answer(request, 200, "done", list_address, member)


def _step(what: str, form: FormData, p: Principal, mlist: MailingList, services: WebContext,
          actor: Callable[[Principal], Actor],
          domains_reached: Callable[[Principal, list[str]], None]) -> Callable[[], Awaitable[str]] | None:
    """The change a form of a list's page asks for: a coroutine that makes it and says which (a key of
    web.pages.DONE); None for an action that does not exist."""
    lists, admin, who, address = services.lists, services.admin, actor(p), mlist.address

    async def settings() -> str:
        change = ListChange(name=_form_text(form, "name", 2000), description=_form_text(form, "description", 2000),
                            policy=_form_text(form, "policy", 20), subscription=_form_text(form, "subscription", 20),
                            moderators=tuple(_addresses(_form_text(form, "moderators", 100_000))),
                            senders=tuple(_addresses(_form_text(form, "senders", 100_000))),
                            archive=_form_text(form, "archive", 320),
                            bounce_limit=_bounce_limit(_form_text(form, "bounce_limit", 4)))
        await admin.change_list(who, "list.policy", address, lambda: lists.change(address, change),
                                before=list_state(mlist), after=list_state)
        return "mlist_saved"

    async def add_members() -> str:
        addresses = _addresses(_form_text(form, "addresses", 1_000_000))
        if not addresses:
            raise InvalidInput("bad_address")
        domains_reached(p, addresses)
        await admin.change_list(who, "list.members.add", address, lambda: lists.add_members(address, addresses),
                                after=lambda n: {"addresses": addresses[:1000], "count": len(addresses), "added": n})
        return "members_added"

    async def remove_member() -> str:
        member = _form_text(form, "member", 320)
        await admin.change_list(who, "list.members.remove", address, lambda: lists.remove_members(address, [member]),
                                before={"addresses": [member]}, after=lambda n: {"removed": n})
        return "members_removed"

    async def moderate() -> str:
        entry_id = _int(_form_text(form, "id", 20))
        _mlist, entry = await lists.held_post(address, entry_id)
        held: dict[str, Any] = {"id": entry.id, "sender": entry.sender, "subject": entry.subject, "size": entry.size}
        if what == "approve":
            await admin.change_list(who, "list.approve", address,
                                    lambda: services.list_mail.approve(address, entry_id, who.name), before=held,
                                    after=lambda n: {"delivered": n})
            return "post_approved"
        reason = _form_text(form, "reason", 1000)
        await admin.change_list(who, "list.reject", address,
                                lambda: services.list_mail.reject(address, entry_id, who.name, reason), before=held,
                                after=lambda _none: {"reason": reason} if reason else None)
        return "post_rejected"

    async def delete() -> str:
        if _form_text(form, "confirm", 320).lower() != address:
            raise InvalidInput("confirm_name")
        await admin.change_list(who, "list.remove", address, lambda: lists.remove(address), before=list_state(mlist))
        return "mlist_removed"
    steps = {"settings": settings, "add_members": add_members, "remove_member": remove_member, "approve": moderate,
             "reject": moderate, "delete": delete}
    return steps.get(what)


def _bounce_limit(text: str) -> int | None:
    """From the form: empty leaves it as it is; anything but a number is refused as the service refuses one
    out of range."""
    if not text:
        return None
    if not text.isdigit():
        raise InvalidInput("bad_bounce_limit", text)
    return int(text)
