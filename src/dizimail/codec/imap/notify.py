"""NOTIFY (RFC 5465 §3.1, §8) and CANCELUPDATE (RFC 5267 §4.3.5) arguments.

``notify-set = "SET" [SP "STATUS"] SP event-groups``; each event group names the
mailboxes it watches and the events wanted there. What RFC 5465 answers with BAD
is refused here (a :class:`ParseError`); an unknown event is kept for the session,
which must answer NO [BADEVENT] instead (RFC 5465 §3.1).
"""

from __future__ import annotations

from dizimail.codec.imap.commands import CancelUpdate, Notify, NotifyEvent, NotifyGroup
from dizimail.codec.imap.fetch import fetch_att
from dizimail.codec.imap.reader import ParseError, Reader, utf8
from dizimail.codec.imap.types import FetchItem

MAX_GROUPS = 64
MAX_MAILBOXES = 1000
MESSAGE_EVENTS = ("MessageNew", "MessageExpunge", "FlagChange", "AnnotationChange")
MAILBOX_EVENTS = ("MailboxName", "SubscriptionChange", "MailboxMetadataChange")
USER_EVENTS = ("ServerMetadataChange",)
EVENTS = {name.upper(): name for name in MESSAGE_EVENTS + MAILBOX_EVENTS + USER_EVENTS}
SELECTED_FILTERS = frozenset({"SELECTED", "SELECTED-DELAYED"})
OTHER_FILTERS = frozenset({"INBOXES", "PERSONAL", "SUBSCRIBED"})
NAMED_FILTERS = frozenset({"SUBTREE", "MAILBOXES"})


def _mailboxes(r: Reader) -> tuple[str, ...]:
    """``one-or-more-mailbox = mailbox / "(" mailbox *(SP mailbox) ")"``."""
    names = tuple(r.items(r.mailbox, "mailbox list")) if r.peek() == 0x28 else (r.mailbox(),)
    if len(names) > MAX_MAILBOXES:
        raise ParseError("too many mailboxes")
    return names


def _event(r: Reader, selected: bool) -> NotifyEvent:
    word = r.keyword("event")
    name = EVENTS.get(word, word)
    fetch: tuple[FetchItem, ...] = ()
    if name == "MessageNew" and r.data.startswith(b" (", r.pos):
        if not selected:
            raise ParseError("MessageNew fetch attributes are only for SELECTED")
        r.sp("fetch attributes")
        fetch = tuple(r.items(lambda: fetch_att(r), "fetch attribute"))
    return NotifyEvent(name, fetch)


def _check_events(events: tuple[NotifyEvent, ...], selected: bool) -> None:
    """RFC 5465 §5 and §6.1: the combinations a server answers with BAD.

    The pairing rules are for the selected mailbox, where message numbers must stay in step
    with what the client was told. For other mailboxes each event only changes which STATUS
    items are sent: RFC 5465's own example (§3.1, as corrected by erratum 1804) watches a
    subtree with ``(MessageNew)`` alone, and Dovecot accepts any combination there."""
    names = {e.name for e in events}
    if not selected:
        return
    if ("MessageNew" in names) != ("MessageExpunge" in names):
        raise ParseError("MessageNew and MessageExpunge go together")
    if names & {"FlagChange", "AnnotationChange"} and "MessageNew" not in names:
        raise ParseError("FlagChange needs MessageNew and MessageExpunge")
    if names & set(MAILBOX_EVENTS + USER_EVENTS):
        raise ParseError("only message events apply to the selected mailbox")


def _group(r: Reader) -> NotifyGroup:
    r.expect(b"(", "event group")
    kind = r.keyword("mailbox filter")
    mailboxes: tuple[str, ...] = ()
    if kind in NAMED_FILTERS:
        r.sp("mailboxes")
        mailboxes = _mailboxes(r)
    elif kind not in SELECTED_FILTERS and kind not in OTHER_FILTERS:
        raise ParseError(f"unknown mailbox filter {kind[:40]}")
    selected = kind in SELECTED_FILTERS
    r.sp("events")
    events: tuple[NotifyEvent, ...] = ()
    if r.peek() == 0x28:
        events = tuple(r.items(lambda: _event(r, selected), "events"))
    elif not r.accept_keyword("NONE"):  # the unparenthesised form of RFC 5465's own examples
        bare = [_event(r, selected)]
        while r.accept(b" "):
            bare.append(_event(r, selected))
        events = tuple(bare)
    _check_events(events, selected)
    r.expect(b")", "')' after event group")
    return NotifyGroup(kind, mailboxes, events)


def parse_notify(r: Reader, uid: bool) -> Notify:
    """``NOTIFY NONE`` / ``NOTIFY SET [STATUS] event-group *(SP event-group)`` (RFC 5465 §8)."""
    r.sp("NONE or SET")
    verb = r.keyword("NONE or SET")
    if verb == "NONE":
        return Notify(None)
    if verb != "SET":
        raise ParseError("expected NONE or SET")
    r.sp("event groups")
    status = r.accept_keyword("STATUS")
    if status:
        r.sp("event groups")
    groups = [_group(r)]
    while r.accept(b" "):
        if len(groups) >= MAX_GROUPS:
            raise ParseError("too many event groups")
        groups.append(_group(r))
    if sum(g.filter in SELECTED_FILTERS for g in groups) > 1:
        raise ParseError("SELECTED or SELECTED-DELAYED may appear once")
    return Notify(tuple(groups), status)


def parse_cancelupdate(r: Reader, uid: bool) -> CancelUpdate:
    """``CANCELUPDATE 1*(SP quoted)`` (RFC 5267 §5): the tags of the searching commands."""
    r.sp("tag")
    tags = [utf8(r.string("tag"), "tag")]
    while r.accept(b" "):
        tags.append(utf8(r.string("tag"), "tag"))
    return CancelUpdate(tuple(tags))
