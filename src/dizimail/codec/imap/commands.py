"""IMAP commands as typed values (RFC 3501 §6, RFC 9051 §6 and extensions).

Every command carries its ``tag`` (see :class:`Tagged`). Field conventions: keywords, options and item names are upper-cased;
mailbox names are the wire string decoded as UTF-8 (still modified UTF-7 for
IMAP4rev1 clients: the session applies :func:`~dizimail.codec.imap.utf7.decode_mutf7`
unless UTF8=ACCEPT is enabled), with ``INBOX`` in any case normalised to
``"INBOX"`` (RFC 3501 §5.1; only the name itself, not ``inbox/child``).
System flags are in their canonical spelling (``\\Seen``), keywords as sent.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, TypeAlias

from dizimail.codec.imap.searchkeys import SearchKey
from dizimail.codec.imap.seqset import SequenceSet
from dizimail.codec.imap.types import FetchItem


class State(StrEnum):
    """The connection states a command can be given in (RFC 9051 §3); logout needs no command."""

    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"


ANY_STATE = frozenset(State)
BEFORE_LOGIN = frozenset({State.NOT_AUTHENTICATED})
AFTER_LOGIN = frozenset({State.AUTHENTICATED, State.SELECTED})
WITH_MAILBOX = frozenset({State.SELECTED})


@dataclass(frozen=True, slots=True, kw_only=True)
class Tagged:
    """Base of every command: ``tag`` is the client's tag (RFC 9051 §2.2.1).

    The parser fills it in; it is keyword-only and left out of equality, so
    ``Login("u", "p")`` equals a parsed ``Login`` whatever its tag. ``states``
    (a class attribute, not a field) are the states the command is valid in;
    in any other the session answers BAD without running it.
    """

    tag: str = field(default="", compare=False)
    states: ClassVar[frozenset[State]] = ANY_STATE


@dataclass(frozen=True, slots=True)
class Capability(Tagged):
    """CAPABILITY (RFC 9051 §6.1.1)."""


@dataclass(frozen=True, slots=True)
class Noop(Tagged):
    """NOOP (RFC 9051 §6.1.2)."""


@dataclass(frozen=True, slots=True)
class Logout(Tagged):
    """LOGOUT (RFC 9051 §6.1.3)."""


@dataclass(frozen=True, slots=True)
class StartTls(Tagged):
    """STARTTLS (RFC 9051 §6.2.1)."""

    states: ClassVar[frozenset[State]] = BEFORE_LOGIN


@dataclass(frozen=True, slots=True)
class Authenticate(Tagged):
    """AUTHENTICATE mechanism [initial-response] (RFC 9051 §6.2.2, SASL-IR RFC 4959 §3).

    ``mechanism`` upper-cased; ``initial`` is the base64 text as sent, ``"="`` for empty.
    """

    states: ClassVar[frozenset[State]] = BEFORE_LOGIN

    mechanism: str
    initial: str | None


@dataclass(frozen=True, slots=True)
class Login(Tagged):
    """LOGIN userid password (RFC 9051 §6.2.3)."""

    states: ClassVar[frozenset[State]] = BEFORE_LOGIN

    user: str
    password: str


@dataclass(frozen=True, slots=True)
class Enable(Tagged):
    """ENABLE capability... (RFC 5161 §3.1, RFC 9051 §6.3.1)."""

    states: ClassVar[frozenset[State]] = AFTER_LOGIN

    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QresyncParams:
    """The QRESYNC select parameter (RFC 7162 §3.2.5).

    ``known_uids`` and ``seq_match`` (known sequence numbers, their UIDs) are
    optional hints; ``known_uids`` never contains ``*``.
    """

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None


@dataclass(frozen=True, slots=True)
class Select(Tagged):
    """SELECT, or EXAMINE with ``readonly`` (RFC 9051 §6.3.2-3); CONDSTORE / QRESYNC parameters (RFC 7162)."""

    states: ClassVar[frozenset[State]] = AFTER_LOGIN

    mailbox: str
    readonly: bool = False
    condstore: bool = False
    qresync: QresyncParams | None = None


@dataclass(frozen=True, slots=True)
class Create(Tagged):
    """CREATE mailbox [(USE (special-use...))] (RFC 9051 §6.3.4, RFC 6154 §3)."""

    states: ClassVar[frozenset[State]] = AFTER_LOGIN

    mailbox: str
    special_use: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Delete(Tagged):
    """DELETE mailbox (RFC 9051 §6.3.5)."""

    states: ClassVar[frozenset[State]] = AFTER_LOGIN

    mailbox: str


@dataclass(frozen=True, slots=True)
class Rename(Tagged):
    """RENAME old new (RFC 9051 §6.3.6)."""

    states: ClassVar[frozenset[State]] = AFTER_LOGIN

    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Subscribe(Tagged):
    """SUBSCRIBE mailbox (RFC 9051 §6.3.7)."""

    states: ClassVar[frozenset[State]] = AFTER_LOGIN

    mailbox: str


@dataclass(frozen=True, slots=True)
class Unsubscribe(Tagged):
    """UNSUBSCRIBE mailbox (RFC 9051 §6.3.8)."""

    states: ClassVar[frozenset[State]] = AFTER_LOGIN

    mailbox: str


@dataclass(frozen=True, slots=True)
class List(Tagged):
    """LIST, basic or extended (RFC 9051 §6.3.9, LIST-EXTENDED RFC 5258 §3, RFC 5819, RFC 6154).

    ``reference`` is not INBOX-normalised (it is a prefix). ``selection``
    holds SUBSCRIBED, REMOTE, RECURSIVEMATCH, SPECIAL-USE; ``returns`` holds
    SUBSCRIBED, CHILDREN, SPECIAL-USE and STATUS, the last with its items in
    ``status_items``.
    """

    states: ClassVar[frozenset[State]] = AFTER_LOGIN

    reference: str
    patterns: tuple[str, ...]
    selection: tuple[str, ...] = ()
    returns: tuple[str, ...] = ()
    status_items: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Lsub(Tagged):
    """LSUB reference pattern (RFC 3501 §6.3.9)."""

    states: ClassVar[frozenset[State]] = AFTER_LOGIN

    reference: str
    pattern: str


@dataclass(frozen=True, slots=True)
class Namespace(Tagged):
    """NAMESPACE (RFC 2342 §5, RFC 9051 §6.3.10)."""

    states: ClassVar[frozenset[State]] = AFTER_LOGIN


@dataclass(frozen=True, slots=True)
class Status(Tagged):
    """STATUS mailbox (items) (RFC 9051 §6.3.11; HIGHESTMODSEQ RFC 7162, APPENDLIMIT RFC 7889,
    MAILBOXID RFC 8474, SIZE and DELETED RFC 9051)."""

    states: ClassVar[frozenset[State]] = AFTER_LOGIN

    mailbox: str
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AppendMessage:
    """One message of APPEND (RFC 9051 §6.3.12, MULTIAPPEND RFC 3502 §6).

    ``binary`` when sent as literal8 (RFC 3516 §4.4). With CATENATE
    (RFC 4469 §5) ``data`` is empty and ``catenate`` holds ``("TEXT", bytes)``
    and ``("URL", str)`` parts in order.
    """

    flags: tuple[str, ...]
    date: _dt.datetime | None
    data: bytes
    binary: bool = False
    catenate: tuple[tuple[str, bytes | str], ...] | None = None


@dataclass(frozen=True, slots=True)
class Append(Tagged):
    """APPEND mailbox message... (RFC 9051 §6.3.12, RFC 3502)."""

    states: ClassVar[frozenset[State]] = AFTER_LOGIN

    mailbox: str
    messages: tuple[AppendMessage, ...]


@dataclass(frozen=True, slots=True)
class Check(Tagged):
    """CHECK (RFC 3501 §6.4.1)."""

    states: ClassVar[frozenset[State]] = WITH_MAILBOX


@dataclass(frozen=True, slots=True)
class Close(Tagged):
    """CLOSE (RFC 9051 §6.4.1)."""

    states: ClassVar[frozenset[State]] = WITH_MAILBOX


@dataclass(frozen=True, slots=True)
class Unselect(Tagged):
    """UNSELECT (RFC 3691 §2, RFC 9051 §6.4.2)."""

    states: ClassVar[frozenset[State]] = WITH_MAILBOX


@dataclass(frozen=True, slots=True)
class Expunge(Tagged):
    """EXPUNGE, or UID EXPUNGE set with ``uids`` (RFC 9051 §6.4.3, §6.4.9; RFC 4315 §2.1)."""

    states: ClassVar[frozenset[State]] = WITH_MAILBOX

    uids: SequenceSet | None = None


@dataclass(frozen=True, slots=True)
class Search(Tagged):
    """[UID] SEARCH (RFC 9051 §6.4.4); ``returns`` from ESEARCH RETURN (RFC 4731 §3.1, SAVE RFC 5182,
    CONTEXT, UPDATE and PARTIAL RFC 5267 §4).

    ``returns`` is None without RETURN and ``()`` for ``RETURN ()`` (which means ALL).
    ``partial`` is the PARTIAL range (first, last) with first <= last, both positive, or both
    negative (RFC 9394 §3.1: counted from the last result, first the one nearer the end).
    ``charset`` is upper-cased, None when not given.
    """

    states: ClassVar[frozenset[State]] = WITH_MAILBOX

    uid: bool
    charset: str | None
    key: SearchKey
    returns: tuple[str, ...] | None = None
    partial: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Fetch(Tagged):
    """[UID] FETCH set items [(CHANGEDSINCE n [VANISHED])] (RFC 9051 §6.4.5, RFC 7162 §3.1.4, §3.2.6)."""

    states: ClassVar[frozenset[State]] = WITH_MAILBOX

    uid: bool
    sequence: SequenceSet
    items: tuple[FetchItem, ...]
    changedsince: int | None = None
    vanished: bool = False


@dataclass(frozen=True, slots=True)
class Store(Tagged):
    """[UID] STORE set [(UNCHANGEDSINCE n)] [+|-]FLAGS[.SILENT] flags (RFC 9051 §6.4.6, RFC 7162 §3.1.3)."""

    states: ClassVar[frozenset[State]] = WITH_MAILBOX

    uid: bool
    sequence: SequenceSet
    mode: str
    silent: bool
    flags: tuple[str, ...]
    unchangedsince: int | None = None


@dataclass(frozen=True, slots=True)
class Copy(Tagged):
    """[UID] COPY set mailbox (RFC 9051 §6.4.7)."""

    states: ClassVar[frozenset[State]] = WITH_MAILBOX

    uid: bool
    sequence: SequenceSet
    mailbox: str


@dataclass(frozen=True, slots=True)
class Move(Tagged):
    """[UID] MOVE set mailbox (RFC 6851 §3, RFC 9051 §6.4.8)."""

    states: ClassVar[frozenset[State]] = WITH_MAILBOX

    uid: bool
    sequence: SequenceSet
    mailbox: str


@dataclass(frozen=True, slots=True)
class Idle(Tagged):
    """IDLE (RFC 2177 §3, RFC 9051 §6.3.13); then call ``ImapParser.expect_idle_done()``."""

    states: ClassVar[frozenset[State]] = AFTER_LOGIN


@dataclass(frozen=True, slots=True)
class Id(Tagged):
    """ID (field value ...) or ID NIL (RFC 2971 §3.1); fields as sent, values None for NIL."""

    params: tuple[tuple[str, str | None], ...] | None


@dataclass(frozen=True, slots=True)
class Compress(Tagged):
    """COMPRESS mechanism (RFC 4978 §3), upper-cased."""

    states: ClassVar[frozenset[State]] = AFTER_LOGIN

    mechanism: str


@dataclass(frozen=True, slots=True)
class GetQuota(Tagged):
    """GETQUOTA root (RFC 9208 §4.2)."""

    states: ClassVar[frozenset[State]] = AFTER_LOGIN

    root: str


@dataclass(frozen=True, slots=True)
class GetQuotaRoot(Tagged):
    """GETQUOTAROOT mailbox (RFC 9208 §4.3)."""

    states: ClassVar[frozenset[State]] = AFTER_LOGIN

    mailbox: str


@dataclass(frozen=True, slots=True)
class SetQuota(Tagged):
    """SETQUOTA root ((resource limit)...) (RFC 9208 §4.4); resource names upper-cased."""

    states: ClassVar[frozenset[State]] = AFTER_LOGIN

    root: str
    limits: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Sort(Tagged):
    """[UID] SORT [RETURN (...)] (criteria) charset keys (RFC 5256 §3, ESORT RFC 5267 §3.2,
    CONTEXT=SORT RFC 5267 §4); ``returns`` and ``partial`` as for :class:`Search`.

    ``criteria`` are ``(reverse, key)`` with key ARRIVAL, CC, DATE, FROM,
    SIZE, SUBJECT, TO, DISPLAYFROM or DISPLAYTO (RFC 5957).
    """

    states: ClassVar[frozenset[State]] = WITH_MAILBOX

    uid: bool
    criteria: tuple[tuple[bool, str], ...]
    charset: str
    key: SearchKey
    returns: tuple[str, ...] | None = None
    partial: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Thread(Tagged):
    """[UID] THREAD algorithm charset keys (RFC 5256 §3); algorithm upper-cased."""

    states: ClassVar[frozenset[State]] = WITH_MAILBOX

    uid: bool
    algorithm: str
    charset: str
    key: SearchKey


@dataclass(frozen=True, slots=True)
class CancelUpdate(Tagged):
    """CANCELUPDATE "tag"... (RFC 5267 §4.3.5): stop the updates of these searching commands."""

    states: ClassVar[frozenset[State]] = WITH_MAILBOX

    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NotifyEvent:
    """One event of a NOTIFY event group (RFC 5465 §5, §8).

    ``name`` is spelled as registered (``MessageNew``, ``FlagChange``, ...); an
    event the codec does not know (``event-ext``) is upper-cased, for the session
    to refuse with BADEVENT. ``fetch`` holds the fetch-atts of ``MessageNew``.
    """

    name: str
    fetch: tuple[FetchItem, ...] = ()


@dataclass(frozen=True, slots=True)
class NotifyGroup:
    """``"(" filter-mailboxes SP events ")"`` (RFC 5465 §6, §8).

    ``filter`` is SELECTED, SELECTED-DELAYED, INBOXES, PERSONAL, SUBSCRIBED,
    SUBTREE or MAILBOXES; the last two carry ``mailboxes`` (names as sent, INBOX
    normalised). ``events`` is empty for ``NONE``.
    """

    filter: str
    mailboxes: tuple[str, ...]
    events: tuple[NotifyEvent, ...]


@dataclass(frozen=True, slots=True)
class Notify(Tagged):
    """NOTIFY NONE (``groups`` None) / NOTIFY SET [STATUS] event-groups (RFC 5465 §3.1).

    The rules RFC 5465 answers with BAD are checked here: MessageNew and
    MessageExpunge together, FlagChange and AnnotationChange only with both, fetch-atts
    and message events only where allowed, at most one SELECTED / SELECTED-DELAYED group.
    """

    states: ClassVar[frozenset[State]] = AFTER_LOGIN

    groups: tuple[NotifyGroup, ...] | None
    status: bool = False


@dataclass(frozen=True, slots=True)
class Unauthenticate(Tagged):
    """UNAUTHENTICATE (RFC 8437 §3)."""

    states: ClassVar[frozenset[State]] = AFTER_LOGIN


Command: TypeAlias = (
    Capability | Noop | Logout | StartTls | Authenticate | Login | Enable | Select | Create | Delete
    | Rename | Subscribe | Unsubscribe | List | Lsub | Namespace | Status | Append | Check | Close
    | Unselect | Expunge | Search | Fetch | Store | Copy | Move | Idle | Id | Compress | GetQuota
    | GetQuotaRoot | SetQuota | Sort | Thread | Notify | CancelUpdate | Unauthenticate
)  # fmt: skip
