"""The tree a compiled Sieve script is (``compile.py`` builds it, ``interpret.py`` runs it): what each
command and test says, checked and with its arguments already read."""

from __future__ import annotations

from dataclasses import dataclass, field


class CompileError(ValueError):
    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(f"line {line}, column {column}: {message}" if line else message)
        self.line, self.column, self.reason = line, column, message


# --- the tree ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Match:
    """How a test compares: ``match`` (:is, :contains, :matches, :value, :count) with ``comparator``,
    against ``keys``; ``relation`` for :value and :count (RFC 5231)."""

    match: str
    comparator: str
    keys: tuple[str, ...]
    relation: str = ""


@dataclass(frozen=True)
class Test:
    kind: str  # header, address, envelope, exists, size, allof, anyof, not, true, false, body, string
    names: tuple[str, ...] = ()  # header names, envelope parts, mailboxes, the sources of `string`
    part: str = ":all"  # address part
    how: Match | None = None
    over: bool = False  # size :over (else :under)
    limit: int = 0
    tests: tuple[Test, ...] = ()
    index: int = 0  # :index (RFC 5260 §6), 0: every occurrence
    last: bool = False  # :last, counting from the end
    transform: str = ":text"  # body (RFC 5173 §5): :raw, :content, :text; spamtest: :percent
    types: tuple[str, ...] = ()  # body :content's types
    zone: str | None = None  # date, currentdate (RFC 5260): "+hhmm", "" the original zone, None the local one
    date_part: str = ""
    handle: str = ""  # duplicate (RFC 7352): :handle
    uniqueid: str | None = None  # duplicate :uniqueid (else the value of ``names[0]``, Message-ID by default)
    seconds: int = 0  # duplicate :seconds


@dataclass(frozen=True)
class Vacation:
    """RFC 5230 §4 (and RFC 6131's :seconds)."""

    reason: str
    period: int  # seconds between two replies to one sender
    subject: str = ""
    sender: str = ""  # :from
    addresses: tuple[str, ...] = ()
    mime: bool = False
    handle: str = ""


@dataclass(frozen=True)
class Command:
    kind: str  # if, keep, discard, stop, redirect, fileinto, reject, ereject, setflag, addflag, removeflag, set,
    # vacation
    branches: tuple[tuple[Test | None, tuple[Command, ...]], ...] = ()  # if: (test or None for else, block)
    argument: str = ""  # mailbox, address, reason; set: the value
    flags: tuple[str, ...] | None = None  # :flags, or a flag command's list
    copy: bool = False
    create: bool = False  # fileinto :create (RFC 5490 §3.2)
    variable: str = ""  # set, and the flag commands' variable (RFC 5232 §3)
    modifiers: tuple[str, ...] = ()  # set's, in the order they apply
    vacation: Vacation | None = None
    once: bool = False  # include :once (RFC 6609 §3.2)
    optional: bool = False  # include :optional


@dataclass(frozen=True)
class Script:
    commands: tuple[Command, ...]
    requires: frozenset[str] = field(default_factory=frozenset)
    uses: frozenset[str] = field(default_factory=frozenset)  # the tests and commands it has (what to prepare)
    includes: frozenset[str] = field(default_factory=frozenset)  # the personal scripts it includes

    @property
    def variables(self) -> bool:
        return "variables" in self.requires
