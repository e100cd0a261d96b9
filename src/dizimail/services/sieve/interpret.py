"""Running a compiled Sieve script against one message (RFC 5228 §2.10): the actions, and whether the
implicit keep still stores the message in INBOX.

Every comparison is linear in its text times its key (``match.py``); variables are bounded in number and
length (as Pigeonhole's defaults), actions and redirects too: a script that passes a limit keeps the
message in INBOX and says why. The script is the user's own and its size is bounded when stored."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import getaddresses

from dizimail.services.sieve import dates
from dizimail.services.sieve.compile import Command, Match, Script, Test, zone_ok
from dizimail.services.sieve.match import captures, compare, fold
from dizimail.services.sieve.message import Message, decoded

__all__ = ["Message", "Outcome", "Seen", "Store", "VacationReply", "run", "run_message"]

log = logging.getLogger("dizimail.sieve")
MAX_ACTIONS = 32  # as Pigeonhole's sieve_max_actions
MAX_REDIRECTS = 4  # as Pigeonhole's sieve_max_redirects
MAX_VARIABLES = 255  # as Pigeonhole's sieve_variables_max_scope_size
MAX_VALUE = 4096  # characters of a variable, as Pigeonhole's sieve_variables_max_variable_size
SUBADDRESS = "+"  # the separator of user and detail (RFC 5233)
MAX_INCLUDE_DEPTH = 5  # scripts including scripts
PAUSE_EVERY, PAUSE = 0.002, 0.0005  # seconds of processor time between two pauses, and a pause
MAX_CPU = 2.0  # seconds of processor time a script may take on one message (Pigeonhole: sieve_max_cpu_time)


class RuntimeFailure(Exception):
    """The script cannot finish (too many actions): the message is kept in INBOX (RFC 5228 §2.10.6)."""


class TooSlow(Exception):
    """A run with a short budget (on the event loop, services.sieve.deliver) spent it: the caller runs the
    script again where the whole budget applies. Nothing a script does has happened yet when it is cut:
    its actions are only collected."""


@dataclass(frozen=True)
class Store:
    mailbox: str
    flags: frozenset[str] = frozenset()
    create: bool = False  # fileinto :create (RFC 5490 §3.2)


@dataclass(frozen=True)
class VacationReply:
    """What the script's vacation asks for (RFC 5230); delivery decides whether it is sent."""

    reason: str
    period: int
    subject: str = ""
    sender: str = ""
    addresses: tuple[str, ...] = ()
    mime: bool = False
    handle: str = ""


@dataclass
class Outcome:
    stores: list[Store] = field(default_factory=list)  # explicit keep and fileinto, in order, once each
    redirects: list[str] = field(default_factory=list)
    discarded: bool = False
    reject: str | None = None
    ereject: bool = False
    implicit_keep: bool = True
    keep_flags: frozenset[str] = frozenset()  # the flags of the implicit keep
    vacation: VacationReply | None = None
    error: str = ""  # set when the script failed: only the implicit keep applies


def _part(address: str, part: str) -> str | None:
    """An address part (RFC 5228 §2.7.4, RFC 5233); None where there is none."""
    if part == ":all":
        return address
    if "@" not in address:
        local, domain = address, None
    else:
        local, _, domain = address.rpartition("@")
    if part == ":domain":
        return domain
    if part == ":localpart":
        return local
    user, separator, detail = local.partition(SUBADDRESS)
    if part == ":user":
        return user
    return detail if separator else None


def _normal_flag(flag: str) -> str:
    return flag.lower() if flag.startswith("\\") else flag


class _Return(Exception):
    """``return`` (RFC 6609 §3.3): back to the including script."""


Seen = Callable[[str, int, bool], bool]  # duplicate: (key, seconds, :last) → seen within the period


class _Run:
    def __init__(self, script: Script, message: Message, library: dict[str, Script] | None = None,
                 seen: Seen | None = None, cpu: float = MAX_CPU, quick: bool = False) -> None:
        self.message = message
        self.out = Outcome()
        self.flags: set[str] = set()
        self.actions = 0
        self.expanding = script.variables
        self.variables: dict[str, str] = {}
        self.shared: set[str] = set()  # the names this script declared global (RFC 6609 §3.4)
        self.globals: dict[str, str] = {}
        self.matched: list[str] = []  # ${0} … ${9} of the last :matches that succeeded (RFC 5229 §3.2)
        self.library = library or {}
        self.seen = seen
        self.included: set[str] = set()
        self.depth = 0
        self.deadline = time.thread_time() + cpu  # processor time of the thread it runs in
        self.quick = quick
        self.pause_at = time.thread_time() + PAUSE_EVERY
        self.parsed: dict[str, list[str]] = {}  # a header value → its addresses

    def tick(self) -> None:
        now = time.thread_time()
        if now > self.deadline:
            if self.quick:
                raise TooSlow()
            raise RuntimeFailure(f"the script took more than {MAX_CPU:g} s of processor time")
        if not self.quick and now >= self.pause_at:
            # A long script on the scripts' thread lets go of the interpreter every 2 ms of its work: the
            # event loop (greetings, every session) gets it then, instead of waiting out a whole switch
            # interval each of the many times it needs it back (a flood of hostile mail: 140 ms greetings).
            time.sleep(PAUSE)
            self.pause_at = time.thread_time() + PAUSE_EVERY

    # --- variables (RFC 5229) ------------------------------------------------------------------------
    def x(self, text: str) -> str:
        """``text`` with its variable references expanded, once (a value is never expanded again)."""
        if not self.expanding or "${" not in text:
            return text
        out: list[str] = []
        i = 0
        while True:
            start = text.find("${", i)
            end = text.find("}", start + 2) if start >= 0 else -1
            if start < 0 or end < 0:
                out.append(text[i:])
                return "".join(out)
            name = text[start + 2:end]
            value = self._value(name)
            if value is None:  # not a reference: kept as written, and the search goes on after "${"
                out.append(text[i:start + 2])
                i = start + 2
                continue
            out.append(text[i:start])
            out.append(value)
            i = end + 1

    def _value(self, name: str) -> str | None:
        if name.isdigit() and name.isascii():
            n = int(name)
            return self.matched[n] if n < len(self.matched) else ""
        if name and (name[0].isalpha() or name[0] == "_") and name.isascii() and all(
                c.isalnum() or c == "_" for c in name):
            name = name.lower()
            return (self.globals if name in self.shared else self.variables).get(name, "")
        if "." in name:  # a namespace we do not have (RFC 5229 §3): empty, as Pigeonhole runs it
            return ""
        return None

    def xs(self, texts: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(self.x(t) for t in texts) if self.expanding else texts

    def assign(self, name: str, value: str) -> None:
        scope = self.globals if name in self.shared else self.variables
        if name not in scope and len(scope) >= MAX_VARIABLES:
            raise RuntimeFailure(f"more than {MAX_VARIABLES} variables")
        scope[name] = value[:MAX_VALUE]

    def variable(self, name: str) -> str:
        return (self.globals if name in self.shared else self.variables).get(name, "")

    # --- tests ---------------------------------------------------------------------------------------
    def compare(self, values: list[str], how: Match, *, expanded: bool = False) -> bool:
        keys = how.keys if expanded else self.xs(how.keys)
        if how.match == ":count":
            count = str(len(values))
            return any(compare(count, key, Match(":value", how.comparator, (), how.relation)) for key in keys)
        for value in values:
            for key in keys:
                self.tick()
                if compare(value, key, how, self.tick):
                    if how.match == ":matches" and self.expanding:
                        found = captures(fold(value, how.comparator), fold(key, how.comparator), value, self.tick)
                        if found is not None:
                            self.matched = found
                    return True
        return False

    def headers(self, names: tuple[str, ...], index: int, last: bool) -> list[str]:
        out: list[str] = []
        for name in self.xs(names):
            out += self.message.headers.get(name.lower(), [])
        if index:  # counted over the fields of all the names, in the order they are named (as Pigeonhole)
            position = len(out) - index if last else index - 1
            out = [out[position]] if 0 <= position < len(out) else []
        return out

    def test(self, t: Test) -> bool:
        m = self.message
        kind = t.kind
        if kind in ("true", "false"):
            return kind == "true"
        if kind == "not":
            return not self.test(t.tests[0])
        if kind == "allof":
            return all(self.test(x) for x in t.tests)
        if kind == "anyof":
            return any(self.test(x) for x in t.tests)
        if kind == "exists":
            return all(name.lower() in m.headers for name in self.xs(t.names))
        if kind == "size":
            return m.size > t.limit if t.over else m.size < t.limit
        if kind == "mailboxexists":
            return all(name in m.mailboxes or name.upper() == "INBOX" for name in self.xs(t.names))
        if kind == "duplicate":
            return self.duplicate(t)
        assert t.how is not None
        if kind in ("date", "currentdate"):
            return self.compare(self.dates(t), t.how)
        if kind == "spamtest":  # RFC 5235: "0" not judged; 1 (clean) to 10 from our 0-10 score, or a percentage
            score = m.spam_score
            if t.transform == ":percent":
                value = "0" if score is None else str(min(100, max(0, round(score * 10))))
            else:
                value = "0" if score is None else str(1 + min(9, max(0, int(score))))
            return self.compare([value], t.how)
        if kind == "virustest":  # "0" not scanned, "1" clean (infected mail is refused or held before)
            return self.compare(["1" if m.virus_scanned else "0"], t.how)
        assert t.how is not None
        if kind == "header":
            return self.compare([decoded(v) for v in self.headers(t.names, t.index, t.last)], t.how)
        if kind == "hasflag":
            held = {f for name in t.names for f in self.variable(name).split()} if t.names else self.flags
            keys = Match(t.how.match, t.how.comparator, tuple(k for key in self.xs(t.how.keys) for k in key.split()),
                         t.how.relation)
            return self.compare(sorted(held), keys, expanded=True)
        if kind == "string":
            return self.compare([v for v in self.xs(t.names)], t.how)
        if kind == "body":
            return self.compare(m.body(t.transform, t.types), t.how)
        if kind == "envelope":
            values = [{"from": m.sender, "to": m.recipient}.get(name.lower()) for name in self.xs(t.names)]
            parts = [_part(v, t.part) for v in values if v is not None]
            if t.how.match == ":count":  # the addresses, whether or not they have the part (RFC 5231 §4.2)
                return self.compare([""] * len(parts), t.how)
            return self.compare([p for p in parts if p is not None], t.how)
        addresses: list[str] = []
        for value in self.headers(t.names, t.index, t.last):
            found = self.parsed.get(value)
            if found is None:  # a header field is parsed once per message, however many tests read it
                found = self.parsed[value] = [a for _n, a in getaddresses([value]) if a]
            if found:
                addresses += found
            elif t.part == ":all":  # not an address (a group, a typo): :all compares the text as it is
                addresses.append(value.strip())  # (RFC 5228 §2.7.4; so does Pigeonhole)
        parts = [_part(a, t.part) for a in addresses]
        if t.how.match == ":count":
            return self.compare([""] * len(parts), t.how)
        return self.compare([p for p in parts if p is not None], t.how)

    def dates(self, t: Test) -> list[str]:
        zone = None if t.zone is None else self.x(t.zone)
        part = self.x(t.date_part).lower()
        if zone and not zone_ok(zone):
            return []
        if t.kind == "currentdate":
            moments = [dates.now()]
        else:
            moments = [d for v in self.headers(t.names, t.index, t.last) if (d := dates.parse_date(v)) is not None]
        out = [dates.date_part(dates.in_zone(when, zone), part) for when in moments]
        return [v for v in out if v is not None]

    def duplicate(self, t: Test) -> bool:
        """RFC 7352: whether this (handle, value) came within the period; the message's id by default."""
        if t.uniqueid is not None:
            value = self.x(t.uniqueid)
        else:
            found = self.message.headers.get(self.x(t.names[0]).lower(), [])
            value = found[0].strip() if found else ""
        if not value or self.seen is None:
            return False
        key = hashlib.sha256(f"duplicate\0{self.x(t.handle)}\0{value}".encode()).hexdigest()
        return self.seen(key, t.seconds, t.last)

    # --- actions -------------------------------------------------------------------------------------
    def act(self) -> None:
        self.actions += 1
        if self.actions > MAX_ACTIONS:
            raise RuntimeFailure(f"more than {MAX_ACTIONS} actions")

    def flag_set(self, values: tuple[str, ...]) -> set[str]:
        return {f for value in self.xs(values) for f in value.split()}

    def store(self, mailbox: str, flags: tuple[str, ...] | None, create: bool = False) -> bool:
        """False when the mailbox was stored into already: once only, with the latest flags, and the
        earlier action's effect on the implicit keep stays (as Pigeonhole merges duplicates)."""
        self.act()
        listed = self.flags if flags is None else self.flag_set(flags)  # RFC 5232 §3
        chosen = frozenset(_normal_flag(f) for f in listed)
        for i, earlier in enumerate(self.out.stores):
            if earlier.mailbox == mailbox:
                self.out.stores[i] = Store(mailbox, chosen, create or earlier.create)
                return False
        self.out.stores.append(Store(mailbox, chosen, create))
        return True

    def block(self, commands: tuple[Command, ...]) -> bool:
        """False once ``stop`` ran."""
        for c in commands:
            kind = c.kind
            if kind == "if":
                for test, body in c.branches:
                    if test is None or self.test(test):
                        if not self.block(body):
                            return False
                        break
            elif kind == "stop":
                return False
            elif kind == "keep":
                if self.store("INBOX", c.flags):
                    self.out.implicit_keep = False
            elif kind == "discard":
                self.out.discarded = True
                self.out.implicit_keep = False
            elif kind == "fileinto":
                if self.store(self.x(c.argument), c.flags, c.create) and not c.copy:
                    self.out.implicit_keep = False
            elif kind == "redirect":
                self.act()
                if len(self.out.redirects) >= MAX_REDIRECTS:
                    raise RuntimeFailure(f"more than {MAX_REDIRECTS} redirects")
                target = self.x(c.argument)
                if target not in self.out.redirects:
                    self.out.redirects.append(target)
                    if not c.copy:
                        self.out.implicit_keep = False
            elif kind in ("reject", "ereject"):
                self.act()
                self.out.reject, self.out.ereject = self.x(c.argument), kind == "ereject"
                self.out.implicit_keep = False
            elif kind in ("setflag", "addflag", "removeflag"):
                self.flag(c)
            elif kind == "set":
                self.assign(c.variable, _modified(self.x(c.argument), c.modifiers))
            elif kind == "vacation":
                self.vacation(c)
            elif kind == "include":
                if not self.include(c):
                    return False
            elif kind == "return":
                raise _Return()
            elif kind == "global":
                for name in c.flags or ():
                    if name not in self.shared:
                        self.globals.setdefault(name, self.variables.pop(name, ""))
                    self.shared.add(name)
        return True

    def include(self, c: Command) -> bool:
        """RFC 6609 §3.2: run another of the user's scripts here, with variables of its own (the
        globals shared); False when it ran ``stop``."""
        name = c.argument
        if c.once and name in self.included:
            return True
        script = self.library.get(name)
        if script is None:
            if c.optional:
                return True
            raise RuntimeFailure(f"the included script {name[:100]!r} does not exist or does not compile")
        if self.depth >= MAX_INCLUDE_DEPTH:
            raise RuntimeFailure(f"scripts included more than {MAX_INCLUDE_DEPTH} deep")
        self.included.add(name)
        saved = (self.variables, self.shared, self.matched, self.expanding)
        self.variables, self.shared, self.matched, self.expanding = {}, set(), [], script.variables
        self.depth += 1
        try:
            return self.block(script.commands)
        except _Return:
            return True
        finally:
            self.depth -= 1
            self.variables, self.shared, self.matched, self.expanding = saved

    def flag(self, c: Command) -> None:
        flags = self.flag_set(c.flags or ())
        if c.variable:  # RFC 5232 §3: the flags kept in a variable
            held = set(self.variable(c.variable).split())
            held = flags if c.kind == "setflag" else held | flags if c.kind == "addflag" else held - flags
            self.assign(c.variable, " ".join(sorted(held)))
        elif c.kind == "setflag":
            self.flags = flags
        elif c.kind == "addflag":
            self.flags |= flags
        else:
            self.flags -= flags

    def vacation(self, c: Command) -> None:
        v = c.vacation
        assert v is not None
        if self.out.vacation is not None:
            raise RuntimeFailure("more than one vacation action")  # RFC 5230 §4.7
        self.act()
        self.out.vacation = VacationReply(self.x(v.reason), v.period, self.x(v.subject), self.x(v.sender),
                                          self.xs(v.addresses), v.mime, self.x(v.handle))


def _modified(value: str, modifiers: tuple[str, ...]) -> str:
    """RFC 5229 §4.1, the modifiers already in their order of precedence."""
    for m in modifiers:
        if m == ":lower":
            value = value.lower()
        elif m == ":upper":
            value = value.upper()
        elif m == ":lowerfirst":
            value = value[:1].lower() + value[1:]
        elif m == ":upperfirst":
            value = value[:1].upper() + value[1:]
        elif m == ":quotewildcard":
            value = "".join("\\" + ch if ch in "*?\\" else ch for ch in value)
        elif m == ":length":
            value = str(len(value))
    return value


def run(script: Script, raw: bytes, sender: str, recipient: str, library: dict[str, Script] | None = None,
        seen: Seen | None = None) -> Outcome:
    """The actions ``script`` takes on the message ``raw`` delivered from ``sender`` to ``recipient``."""
    return run_message(script, Message.parse(raw, sender, recipient), library, seen)


def run_message(script: Script, message: Message, library: dict[str, Script] | None = None,
                seen: Seen | None = None, *, cpu: float = MAX_CPU, quick: bool = False) -> Outcome:
    """The actions ``script`` takes on ``message``; ``library``: the user's scripts it may include, by name;
    ``seen``: the duplicate test's memory. A failing script keeps the message in INBOX and says why
    (``error``); nothing is lost. ``quick``: past ``cpu`` seconds raise TooSlow instead."""
    state = _Run(script, message, library, seen, cpu, quick)
    try:
        state.block(script.commands)
    except _Return:  # return in the main script ends it, as stop does
        pass
    except TooSlow:
        raise
    except RuntimeFailure as exc:
        return Outcome(error=str(exc))
    except Exception:  # a fault of ours, not of the script: the message is kept all the same
        log.exception("sieve.interpreter.failed recipient=%s", message.recipient)
        return Outcome(error="the rules could not run (an internal error, logged)")
    state.out.keep_flags = frozenset(_normal_flag(f) for f in state.flags)
    return state.out
