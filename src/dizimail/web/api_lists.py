"""The REST resources of mailing lists (邮件列表, issue #12): the same operations as ``dizimail list``, on
``services.lists`` (lists, members, the moderation queue) and ``services.list_mail`` (approve, reject);
every change goes to the audit log through ``services.admin.change_list``. Admins reach every list, a
domain admin its domains' lists (another domain's answers 404, as one that does not exist), a user none.

The resources are under ``/api/v1/mailing-lists``: ``/api/v1/lists/{block or allow}`` are the anti-spam
lists, and a list's address in the same place would be matched by their routes.

No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations at run time."""

from collections.abc import Callable
from typing import Annotated, Any, Literal, Self
from urllib.parse import quote

from fastapi import Depends, FastAPI, Path, Query, Response
from pydantic import ConfigDict, Field

from dizimail.model.lists import ListChange, MailingList, Member
from dizimail.model.tokens import Role
from dizimail.model.types import Quarantined
from dizimail.services.admin import AdminActions, list_state
from dizimail.services.lists.manage import MAX_MEMBERS_AT_ONCE, MAX_NAMED, MAX_TEXT, MailingLists, member_address
from dizimail.services.lists.receive import ListReceiver
from dizimail.web.documents import MAX_INT, Strict

PREFIX = "/api/v1"
BASE = f"{PREFIX}/mailing-lists"
Address = Annotated[str, Field(min_length=1, max_length=320)]
Policy = Literal["anyone", "members", "moderated", "senders"]
Subscription = Literal["confirm", "closed"]
EntryId = Annotated[int, Path(ge=1, le=MAX_INT)]
AUDITED_ADDRESSES = 1000  # of one change of members, named in its audit entry (the count is always there)


class MailingListIn(Strict):
    address: Address
    name: str = Field("", max_length=MAX_TEXT)
    description: str = Field("", max_length=MAX_TEXT)
    policy: Policy = Field("members", description="who may post without moderation")
    subscription: Subscription = Field("confirm", description="confirm: by mail with a confirmation; "
                                                              "closed: administrators only")
    members: list[Address] = Field([], max_length=MAX_MEMBERS_AT_ONCE,
                                   description="addresses, or @domain (every active user of a local domain)")
    moderators: list[Address] = Field([], max_length=MAX_NAMED)
    senders: list[Address] = Field([], max_length=MAX_NAMED, description="who may always post")
    archive: str = Field("", max_length=320, description="a local user keeping every post (empty: none)")
    bounce_limit: int = Field(3, ge=1, le=100, description="hard bounces in a row that disable a member")


class MailingListPatch(Strict):
    """Fields left out (or null) stay as they are; ``archive`` "" removes the archive."""

    name: str | None = Field(None, max_length=MAX_TEXT)
    description: str | None = Field(None, max_length=MAX_TEXT)
    policy: Policy | None = None
    subscription: Subscription | None = None
    moderators: list[Address] | None = Field(None, max_length=MAX_NAMED)
    senders: list[Address] | None = Field(None, max_length=MAX_NAMED)
    archive: str | None = Field(None, max_length=320)
    bounce_limit: int | None = Field(None, ge=1, le=100)

    def change(self) -> ListChange:
        return ListChange(name=self.name, description=self.description, policy=self.policy,
                          subscription=self.subscription,
                          moderators=tuple(self.moderators) if self.moderators is not None else None,
                          senders=tuple(self.senders) if self.senders is not None else None,
                          archive=self.archive, bounce_limit=self.bounce_limit)


class MailingListOut(Strict):
    address: str
    name: str
    description: str
    policy: str
    subscription: str
    moderators: list[str]
    senders: list[str]
    archive: str
    bounce_limit: int
    members: int = Field(description="active members")
    created: float

    @classmethod
    def of(cls, m: MailingList) -> Self:
        return cls(address=m.address, name=m.name, description=m.description, policy=m.policy,
                   subscription=m.subscription, moderators=list(m.moderators), senders=list(m.senders),
                   archive=m.archive, bounce_limit=m.bounce_limit, members=m.members, created=m.created)


class MemberOut(Strict):
    address: str
    status: str = Field(description="active, or disabled (past the list's bounce limit: kept, not sent to)")
    bounces: int
    last_bounce: float
    added: float

    @classmethod
    def of(cls, m: Member) -> Self:
        return cls(address=m.address, status=m.status, bounces=m.bounces, last_bounce=m.last_bounce, added=m.added)


class MembersIn(Strict):
    addresses: list[Address] = Field(min_length=1, max_length=MAX_MEMBERS_AT_ONCE)


class MembersAdded(Strict):
    added: int


class MembersRemoved(Strict):
    removed: int


class HeldPostOut(Strict):
    """A post waiting for a moderator."""

    id: int
    sender: str
    from_: str = Field(alias="from")
    subject: str
    size: int
    created: float
    expires: float

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @classmethod
    def of(cls, e: Quarantined) -> Self:
        return cls(id=e.id, sender=e.sender, from_=e.from_, subject=e.subject, size=e.size, created=e.created,
                   expires=e.expires)


class Approved(Strict):
    delivered: int = Field(description="copies stored for local members (remote ones are queued)")


class RejectIn(Strict):
    reason: str = Field("", max_length=1000, description="told to the sender")


def _held(e: Quarantined) -> dict[str, Any]:
    return {"id": e.id, "sender": e.sender, "subject": e.subject, "size": e.size}


def _named(addresses: list[str]) -> dict[str, Any]:
    return {"addresses": addresses[:AUDITED_ADDRESSES], "count": len(addresses)}


def mailing_list_routes(app: FastAPI, lists: MailingLists, moderation: ListReceiver, admin: AdminActions,
                principal: Callable[..., Any], staff: Callable[[Any], None],
                visible_user: Callable[[Any, str], str], visible_domain: Callable[[Any, str], str]) -> None:
    """``principal``: who asks (the API's token dependency); ``staff``: 403 for a user's token;
    ``visible_user``, ``visible_domain``: an address or a domain as stored if the caller reaches it (404
    otherwise)."""
    asking = Depends(principal)

    async def reached(who: Any, address: str) -> MailingList:
        """The list, if the token reaches its domain: 404 for another domain's, as for none."""
        staff(who)
        return await lists.get(visible_user(who, address))

    def domains_reached(who: Any, addresses: list[str]) -> None:
        """A domain admin names no @domain (every user of it) outside its domains: 404, as for a domain
        that does not exist."""
        if who.role is not Role.ADMIN:
            for text in addresses:
                if text.strip().startswith("@"):
                    visible_domain(who, member_address(text)[1:])

    @app.get(BASE, response_model=list[MailingListOut], tags=["mailing-lists"])
    async def all_lists(who: Any = asking,
                        domain: Annotated[str | None, Query(max_length=253)] = None) -> list[MailingListOut]:
        """The lists the token reaches (``domain``: one domain's)."""
        staff(who)
        return [MailingListOut.of(m) for m in await lists.all(domain)
                if who.sees_domain(m.address.rpartition("@")[2])]

    @app.post(BASE, response_model=MailingListOut, status_code=201, tags=["mailing-lists"])
    async def create_list(body: MailingListIn, response: Response, who: Any = asking) -> MailingListOut:
        """A new list in a local domain (its address is no user's or alias's); 409 if it exists."""
        staff(who)
        address = visible_user(who, body.address)
        domains_reached(who, body.members)
        made = await admin.change_list(
            who.actor, "list.add", address,
            lambda: lists.create(address, name=body.name, description=body.description, policy=body.policy,
                                 members=body.members, moderators=body.moderators, senders=body.senders,
                                 subscription=body.subscription, archive=body.archive,
                                 bounce_limit=body.bounce_limit),
            after=lambda m: {**(list_state(m) or {}), "members": m.members})
        response.headers["Location"] = f"{BASE}/{quote(made.address)}"
        return MailingListOut.of(made)

    @app.get(f"{BASE}/{{address}}", response_model=MailingListOut, tags=["mailing-lists"])
    async def get_list(address: str, who: Any = asking) -> MailingListOut:
        return MailingListOut.of(await reached(who, address))

    @app.patch(f"{BASE}/{{address}}", response_model=MailingListOut, tags=["mailing-lists"])
    async def change_list(address: str, body: MailingListPatch, who: Any = asking) -> MailingListOut:
        """Who may post, the moderators and named senders, the name, subscription, archive, bounce limit."""
        mlist = await reached(who, address)
        changed = await admin.change_list(who.actor, "list.policy", mlist.address,
                                          lambda: lists.change(mlist.address, body.change()),
                                          before=list_state(mlist), after=list_state)
        return MailingListOut.of(changed)

    @app.delete(f"{BASE}/{{address}}", status_code=204, tags=["mailing-lists"])
    async def remove_list(address: str, who: Any = asking) -> Response:
        """Delete the list, its members and the posts waiting for its moderators."""
        mlist = await reached(who, address)
        await admin.change_list(who.actor, "list.remove", mlist.address, lambda: lists.remove(mlist.address),
                                before=list_state(mlist))
        return Response(status_code=204)

    # --- members ----------------------------------------------------------------------------------------
    @app.get(f"{BASE}/{{address}}/members", response_model=list[MemberOut], tags=["mailing-lists"])
    async def members(address: str, who: Any = asking) -> list[MemberOut]:
        """Every member, active or disabled (bounced), in address order."""
        mlist = await reached(who, address)
        return [MemberOut.of(m) for m in await lists.members(mlist.address)]

    @app.post(f"{BASE}/{{address}}/members", response_model=MembersAdded, tags=["mailing-lists"])
    async def add_members(address: str, body: MembersIn, who: Any = asking) -> MembersAdded:
        """Add members (or make disabled ones active again): addresses, or @domain (every user of a
        local domain); how many changed."""
        mlist = await reached(who, address)
        domains_reached(who, body.addresses)
        added = await admin.change_list(who.actor, "list.members.add", mlist.address,
                                        lambda: lists.add_members(mlist.address, body.addresses),
                                        after=lambda n: {**_named(body.addresses), "added": n})
        return MembersAdded(added=added)

    @app.delete(f"{BASE}/{{address}}/members", response_model=MembersRemoved, tags=["mailing-lists"])
    async def remove_members(address: str, body: MembersIn, who: Any = asking) -> MembersRemoved:
        mlist = await reached(who, address)
        removed = await admin.change_list(who.actor, "list.members.remove", mlist.address,
                                          lambda: lists.remove_members(mlist.address, body.addresses),
                                          before=_named(body.addresses), after=lambda n: {"removed": n})
        return MembersRemoved(removed=removed)

    # --- the moderation queue -------------------------------------------------------------------------
    @app.get(f"{BASE}/{{address}}/held", response_model=list[HeldPostOut], tags=["mailing-lists"])
    async def held(address: str, who: Any = asking) -> list[HeldPostOut]:
        """Posts waiting for a moderator, newest first."""
        mlist = await reached(who, address)
        return [HeldPostOut.of(e) for e in await lists.held(mlist.address)]

    @app.post(f"{BASE}/{{address}}/held/{{entry_id}}/approve", response_model=Approved, tags=["mailing-lists"])
    async def approve(address: str, entry_id: EntryId, who: Any = asking) -> Approved:
        """Send the post to the members."""
        mlist = await reached(who, address)
        _mlist, entry = await lists.held_post(mlist.address, entry_id)
        delivered = await admin.change_list(who.actor, "list.approve", mlist.address,
                                            lambda: moderation.approve(mlist.address, entry_id, who.actor.name),
                                            before=_held(entry), after=lambda n: {"delivered": n})
        return Approved(delivered=delivered)

    @app.post(f"{BASE}/{{address}}/held/{{entry_id}}/reject", status_code=204, tags=["mailing-lists"])
    async def reject(address: str, entry_id: EntryId, who: Any = asking, body: RejectIn | None = None) -> Response:
        """Refuse the post: it is deleted and its sender told (with ``reason``, if given)."""
        mlist = await reached(who, address)
        _mlist, entry = await lists.held_post(mlist.address, entry_id)
        reason = body.reason.strip() if body is not None else ""
        await admin.change_list(who.actor, "list.reject", mlist.address,
                                lambda: moderation.reject(mlist.address, entry_id, who.actor.name, reason),
                                before=_held(entry), after=lambda _none: {"reason": reason} if reason else None)
        return Response(status_code=204)
