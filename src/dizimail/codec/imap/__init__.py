"""IMAP4rev1 / IMAP4rev2 wire codec (RFC 3501, RFC 9051 and extension syntax), sans-IO.

Layers, each usable and tested alone:

- :mod:`.parser`: :class:`ImapParser`, framing. Finds line ends and literal
  announcements, enforces line / literal / command limits before keeping
  bytes, skips what it refuses, and yields :mod:`.events`.
- :mod:`.grammar` (with :mod:`.mailbox`, :mod:`.fetch`, :mod:`.search`):
  one complete command to a typed :mod:`.commands` value, by recursive
  descent over a :class:`~.reader.Reader` (index into bytes, compiled
  patterns, no per-byte Python loops).
- :mod:`.types`: :class:`SequenceSet` (resolved lazily against the mailbox),
  :class:`FetchItem`, :class:`BodySection` and the search-key tree.
- :mod:`.utf7`: modified UTF-7 mailbox names (RFC 3501 §5.1.3).
- :mod:`.writer`: quoting, literals, flag lists, dates for responses.

The session owns state (which commands are allowed when, what is enabled,
the continuation replies); the codec owns syntax.
"""

from __future__ import annotations

from dizimail.codec.imap.commands import (
    Append,
    AppendMessage,
    Authenticate,
    CancelUpdate,
    Capability,
    Check,
    Close,
    Command,
    Compress,
    Copy,
    Create,
    Delete,
    Enable,
    Expunge,
    Fetch,
    GetQuota,
    GetQuotaRoot,
    Id,
    Idle,
    List,
    Login,
    Logout,
    Lsub,
    Move,
    Namespace,
    Noop,
    Notify,
    NotifyEvent,
    NotifyGroup,
    QresyncParams,
    Rename,
    Search,
    Select,
    SetQuota,
    Sort,
    StartTls,
    State,
    Status,
    Store,
    Subscribe,
    Thread,
    Unauthenticate,
    Unselect,
    Unsubscribe,
)
from dizimail.codec.imap.events import (
    CommandReady,
    Event,
    IdleDone,
    LiteralTooLarge,
    Malformed,
    NeedContinuation,
    SaslResponse,
)
from dizimail.codec.imap.parser import ImapParser
from dizimail.codec.imap.types import BodySection, FetchItem, SearchKey, SequenceSet
from dizimail.codec.imap.utf7 import decode_mutf7, encode_mutf7

__all__ = [
    "Append",
    "AppendMessage",
    "Authenticate",
    "CancelUpdate",
    "BodySection",
    "Capability",
    "Check",
    "Close",
    "Command",
    "CommandReady",
    "Compress",
    "Copy",
    "Create",
    "Delete",
    "Enable",
    "Event",
    "Expunge",
    "Fetch",
    "FetchItem",
    "GetQuota",
    "GetQuotaRoot",
    "Id",
    "Idle",
    "IdleDone",
    "ImapParser",
    "List",
    "LiteralTooLarge",
    "Login",
    "Logout",
    "Lsub",
    "Malformed",
    "Move",
    "Namespace",
    "NeedContinuation",
    "Noop",
    "Notify",
    "NotifyEvent",
    "NotifyGroup",
    "QresyncParams",
    "Rename",
    "SaslResponse",
    "Search",
    "SearchKey",
    "Select",
    "SequenceSet",
    "SetQuota",
    "Sort",
    "StartTls",
    "State",
    "Status",
    "Store",
    "Subscribe",
    "Thread",
    "Unauthenticate",
    "Unselect",
    "Unsubscribe",
    "decode_mutf7",
    "encode_mutf7",
]
