"""What users set without writing Sieve (issue #12): vacation, forwarding and simple filters, stored as
settings and turned into a generated script that runs before the user's own (which it includes, RFC
6609): one interpreter, one delivery path, and what the settings do is a script anyone can read
(``dizimail sieve rules USER --script``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from dizimail.model.errors import InvalidInput
from dizimail.services.sieve.interpret import MAX_REDIRECTS

MAX_FILTERS = 50
MAX_VALUE = 200
MAX_TEXT = 10_000
MAX_ADDRESSES = 10
FIELDS = ("from", "to", "subject")
OPS = ("contains", "is")
ACTIONS = ("fileinto", "discard", "flag", "seen")
USER_SCRIPT = "\x01user"  # the library name of the user's own active script (no stored name has a control character)


@dataclass(frozen=True)
class Vacation:
    text: str
    subject: str = ""
    start: str = ""  # YYYY-MM-DD, first day answered ("" from now)
    end: str = ""  # YYYY-MM-DD, last day answered ("" until turned off)
    addresses: tuple[str, ...] = ()  # the user's other addresses it answers for
    days: int = 1  # one reply per sender per this many days


@dataclass(frozen=True)
class Forwarding:
    targets: tuple[str, ...]
    keep: bool = True  # keep a copy here


@dataclass(frozen=True)
class Filter:
    field: str  # from, to (To and Cc), subject
    op: str  # contains, is
    value: str
    action: str  # fileinto (folder), discard, flag (\\Flagged), seen (\\Seen)
    folder: str = ""


@dataclass(frozen=True)
class MailRules:
    vacation: Vacation | None = None
    forwarding: Forwarding | None = None
    filters: tuple[Filter, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return self.vacation is None and self.forwarding is None and not self.filters

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MailRules:
        data = json.loads(text)
        return checked(data)


def _text(value: Any, limit: int, what: str, *, empty: bool = True, line: bool = True) -> str:
    if not isinstance(value, str) or len(value) > limit or (not empty and not value.strip()):
        raise InvalidInput("bad_rule", f"{what}: text of at most {limit} characters" + ("" if empty else ", not empty"))
    if any(ord(c) < 0x20 and (line or c not in "\r\n\t") for c in value):
        raise InvalidInput("bad_rule", f"{what}: control characters" + (" or line breaks" if line else ""))
    return value


def _day(value: Any, what: str) -> str:
    text = _text(value, 10, what)
    if text:
        try:
            date.fromisoformat(text)
        except ValueError:
            raise InvalidInput("bad_rule", f"{what}: a date as YYYY-MM-DD") from None
    return text


def _addresses(value: Any, limit: int, what: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or len(value) > limit:
        raise InvalidInput("bad_rule", f"{what}: at most {limit} addresses")
    out = []
    for item in value:
        address = _text(item, 254, what, empty=False).strip().lower()
        local, at, domain = address.rpartition("@")
        if not at or not local or "." not in domain or any(c in address for c in ' "\\<>,;'):
            raise InvalidInput("bad_rule", f"{what}: {address[:100]!r} is not an address")
        out.append(address)
    return tuple(dict.fromkeys(out))


def checked(data: Any) -> MailRules:
    """The rules in ``data`` (as the API and the CLI give them, and as stored), or InvalidInput naming the
    fault."""
    if not isinstance(data, dict) or set(data) - {"vacation", "forwarding", "filters"}:
        raise InvalidInput("bad_rule", "vacation, forwarding and filters are the settings")
    vacation = forwarding = None
    if data.get("vacation") is not None:
        v = data["vacation"]
        if not isinstance(v, dict) or set(v) - {"text", "subject", "start", "end", "addresses", "days"}:
            raise InvalidInput("bad_rule", "vacation: text, subject, start, end, addresses, days")
        days = v.get("days", 1)
        if not isinstance(days, int) or not 1 <= days <= 90:
            raise InvalidInput("bad_rule", "vacation: days from 1 to 90")
        vacation = Vacation(_text(v.get("text"), MAX_TEXT, "vacation text", empty=False, line=False),
                            _text(v.get("subject", ""), MAX_VALUE, "vacation subject"),
                            _day(v.get("start", ""), "vacation start"), _day(v.get("end", ""), "vacation end"),
                            _addresses(v.get("addresses", []), MAX_ADDRESSES, "vacation addresses"), days)
        if vacation.start and vacation.end and vacation.end < vacation.start:
            raise InvalidInput("bad_rule", "vacation: the end comes before the start")
    if data.get("forwarding") is not None:
        f = data["forwarding"]
        if not isinstance(f, dict) or set(f) - {"targets", "keep"} or not isinstance(f.get("keep", True), bool):
            raise InvalidInput("bad_rule", "forwarding: targets and keep")
        targets = _addresses(f.get("targets", []), MAX_REDIRECTS, "forwarding targets")
        if targets:
            forwarding = Forwarding(targets, f.get("keep", True))
    filters = []
    raw = data.get("filters") or []
    if not isinstance(raw, list) or len(raw) > MAX_FILTERS:
        raise InvalidInput("bad_rule", f"filters: at most {MAX_FILTERS}")
    for item in raw:
        if not isinstance(item, dict) or set(item) - {"field", "op", "value", "action", "folder"}:
            raise InvalidInput("bad_rule", "a filter: field, op, value, action, folder")
        rule = Filter(item.get("field", ""), item.get("op", "contains"), _text(item.get("value"), MAX_VALUE,
                      "filter value", empty=False), item.get("action", ""), _text(item.get("folder", ""), 512, "folder"))
        if rule.field not in FIELDS or rule.op not in OPS or rule.action not in ACTIONS:
            raise InvalidInput("bad_rule", f"a filter: field {'/'.join(FIELDS)}, op {'/'.join(OPS)}, "
                                           f"action {'/'.join(ACTIONS)}")
        if rule.action == "fileinto" and not rule.folder.strip():
            raise InvalidInput("bad_rule", "a filter that files needs its folder")
        filters.append(rule)
    return MailRules(vacation, forwarding, tuple(filters))


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _list(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(_q(i) for i in items) + "]"


def generate(rules: MailRules, include_user: bool) -> str:
    """The Sieve script of the settings; it ends by including the user's own active script (when there is
    one), unless forwarding keeps no copy."""
    requires: set[str] = set()
    lines: list[str] = []
    for f in rules.filters:
        test = (f'header :{f.op} "subject" {_q(f.value)}' if f.field == "subject" else
                f'address :{f.op} {_list(("to", "cc")) if f.field == "to" else _q("from")} {_q(f.value)}')
        if f.action == "fileinto":
            requires |= {"fileinto", "mailbox"}
            action = f"fileinto :create {_q(f.folder)};"
        elif f.action == "discard":
            action = "discard;"
        else:
            requires.add("imap4flags")
            action = f'addflag {_q(chr(92) + ("Flagged" if f.action == "flag" else "Seen"))};'
        lines.append(f"if {test} {{ {action} }}")
    v = rules.vacation
    if v is not None:
        requires.add("vacation")
        when = []
        if v.start:
            requires |= {"date", "relational"}
            when.append(f'currentdate :value "ge" "date" {_q(v.start)}')
        if v.end:
            requires |= {"date", "relational"}
            when.append(f'currentdate :value "le" "date" {_q(v.end)}')
        reply = (f"vacation :days {v.days}" + (f" :subject {_q(v.subject)}" if v.subject else "")
                 + (f" :addresses {_list(v.addresses)}" if v.addresses else "") + f" {_q(v.text)};")
        lines.append(f"if allof ({', '.join(when)}) {{ {reply} }}" if when else reply)
    forward = rules.forwarding
    if forward is not None:
        requires.add("copy")
        lines += [f"redirect :copy {_q(t)};" for t in forward.targets]
        if not forward.keep:
            lines += ["discard;", "stop;"]
    if include_user:
        requires.add("include")
        lines.append(f"include :personal {_q(USER_SCRIPT)};")
    head = f"require {_list(tuple(sorted(requires)))};\n" if requires else ""
    return "# generated from the user's settings (vacation, forwarding, filters)\n" + head + "\n".join(lines) + "\n"
