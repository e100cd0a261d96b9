"""Mailing lists as stored (issue #12, docs/lists.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

POLICIES = ("anyone", "members", "moderated", "senders")
SUBSCRIPTION = ("confirm", "closed")  # by mail with a confirmation, or only by the administrators
ACTIVE, DISABLED = "active", "disabled"


@dataclass(frozen=True)
class MailingList:
    """``address`` (lower-case, U-labels) is where members post. ``policy``: who may post (``anyone``;
    ``members``; ``moderated``: every post waits for a moderator; ``senders``: only ``senders``).
    Moderators and named senders always post without moderation. ``archive``: a local account that keeps
    a copy of every post in its folder ``Lists/<address>`` (empty: none)."""

    id: int
    address: str
    name: str = ""
    description: str = ""
    policy: str = "members"
    senders: tuple[str, ...] = ()
    moderators: tuple[str, ...] = ()
    subscription: str = "confirm"
    archive: str = ""
    bounce_limit: int = 3
    created: float = 0.0
    members: int = 0  # how many (active ones), when listed

    @property
    def list_id(self) -> str:
        """RFC 2919 §3: the list's identifier, ``local.domain`` (a dot for every other character)."""
        local, _, domain = self.address.rpartition("@")
        return "".join(c if c.isalnum() or c in "-" else "." for c in local) + "." + domain

    @property
    def archive_folder(self) -> str:
        return f"Lists/{self.address}"


@dataclass(frozen=True)
class Member:
    """A member: an address (a local user, an alias, an external address) or ``@domain`` (every active
    user of that local domain). ``bounces``: hard bounces counted since ``last_bounce`` began a run;
    past the list's ``bounce_limit`` the member is ``disabled`` (kept, no longer sent to)."""

    id: int
    address: str
    status: str = ACTIVE
    bounces: int = 0
    last_bounce: float = 0.0
    added: float = 0.0


@dataclass(frozen=True)
class ListChange:
    """Fields to change on a list (None: unchanged)."""

    name: str | None = None
    description: str | None = None
    policy: str | None = None
    senders: tuple[str, ...] | None = None
    moderators: tuple[str, ...] | None = None
    subscription: str | None = None
    archive: str | None = None
    bounce_limit: int | None = None


@dataclass(frozen=True)
class Pending:
    """A subscription or unsubscription waiting for the address's confirmation by mail."""

    list_id: int
    action: str  # subscribe | unsubscribe
    address: str
    expires: float
    extra: dict[str, str] = field(default_factory=dict)


ROLES = ("post", "subscribe", "unsubscribe", "confirm", "approve", "reject", "bounces", "bounce")


@dataclass(frozen=True)
class ListTarget:
    """What an address of a list asks for: ``post`` (the list's own address), or a command through
    ``LIST+ROLE[-ARG]@domain``: ``subscribe``, ``unsubscribe``, ``confirm-TOKEN``, ``approve-ID-MAC``,
    ``reject-ID-MAC``, ``bounces`` (the return path of a post), ``bounce-MEMBER-MAC`` (VERP)."""

    mlist: MailingList
    role: str = "post"
    arg: str = ""
