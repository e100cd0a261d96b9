"""What the scoring checks found, as a message carries it: the Authentication-Results header (RFC 8601)
and a one-line summary for the log."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from dizimail.codec.mime.headers import split_header
from dizimail.model.spam import Levels
from dizimail.services.policy.verdict import Finding

_TOKEN = re.compile(r"[A-Za-z0-9._+@-]+")
_COMMENT_BAD = re.compile(r"[^A-Za-z0-9._= -]")


def _value(text: str) -> str:
    """A property value: as it is when it is a plain token (domains, addresses), else quoted; non-ASCII
    addresses are given by their domain only (the header stays ASCII whatever the message is)."""
    if not text.isascii():
        domain = text.rpartition("@")[2]
        try:
            text = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return '""'
    if _TOKEN.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def authentication_results(authserv_id: str, findings: Iterable[Finding]) -> bytes:
    """``Authentication-Results: <us>; iprev=pass policy.iprev=192.0.2.1 (name); spf=fail
    smtp.mailfrom=x@y`` for the findings that are authentication results; b"" when there are none."""
    parts = []
    for f in findings:
        if not f.method:
            continue
        props = "".join(f" {ptype}={_value(value)}" for ptype, value in f.properties)
        comment = f" ({_COMMENT_BAD.sub('', f.comment)[:253]})" if f.comment else ""
        parts.append(f"{f.method}={f.result}{props}{comment}")
    if not parts:
        return b""
    return (f"Authentication-Results: {authserv_id};\r\n\t" + ";\r\n\t".join(parts) + "\r\n").encode("ascii")


def summary(findings: Iterable[Finding]) -> str:
    """``iprev=fail(+1.5) spf=pass helo(+1.0)``: each finding, its result and its points."""
    items = []
    for f in findings:
        label = f"{f.check}={f.result}" if f.result else f.check
        items.append(label + (f"(+{f.score:g})" if f.score else ""))
    return " ".join(items)


GLOBAL_MODEL, PERSONAL = "global", "personal"  # the results of the content filter's score findings


def findings_for(findings: Iterable[Finding], rcpt: str) -> list[Finding]:
    """What counts for one recipient: every finding, but the content score of their own model (a content
    finding with result ``personal`` and their ``rcpt`` property) in place of the global one when they
    have it; a finding about another recipient (their personal score, their own allow list) never."""
    mine = rcpt.lower()
    items = [f for f in findings if not any(k == "rcpt" and v.lower() != mine for k, v in f.properties)]
    own = [f for f in items if f.result == PERSONAL and ("rcpt", rcpt) in f.properties]
    return [f for f in items if f.result != PERSONAL and not (own and f.result == GLOBAL_MODEL)] + own


def score(findings: Iterable[Finding]) -> float:
    return sum(f.score for f in findings)


def total(findings: Iterable[Finding]) -> float:
    """The spam score a message is judged by: every finding's points, within 0–10."""
    return min(max(score(findings), 0.0), 10.0)


def printable(text: str, limit: int = 40) -> str:
    """Mail-borne text (a token, a name) as it may appear in a header we write: ASCII, no controls, short."""
    safe = text[:limit].encode("ascii", "backslashreplace").decode("ascii")
    return "".join(c if 31 < ord(c) < 127 and c not in ";()\\\"" else "?" for c in safe.replace("\\", "/"))


@dataclass(frozen=True, slots=True)
class SpamMarks:
    """What the spam score does to a message at ingest: its X-Spam-* header lines, the [SPAM] subject
    tag, the Junk folder."""

    score: float
    headers: bytes
    tag: bool
    junk: bool


class SpamRule:
    """The subject tag, and where each recipient's thresholds come from (services.content.settings)."""

    def __init__(self, subject_tag: str, levels: Callable[[str], Awaitable[Levels]]) -> None:
        self.subject_tag = subject_tag
        self.levels = levels

    def judge(self, findings: list[Finding], levels: Levels, rcpt: str = "") -> SpamMarks | None:
        """What the findings do to the message for one recipient (``rcpt``: whose personal score counts)
        with their ``levels``; None when nothing judged the message (a logged-in user's, a trusted
        network's)."""
        if not findings:
            return None
        findings = findings_for(findings, rcpt)
        points = total(findings)
        flagged = points >= levels.tag_at
        report = [printable(f.reason, 200) if f.check == "content" else
                  f.check + (f"={f.result}" if f.result else "") + f" {f.score:+g}"
                  for f in findings if f.score or (f.check == "content" and not f.refusal)]
        lines = [f"X-Spam-Score: {points:.1f}",
                 f"X-Spam-Status: {'Yes' if flagged else 'No'}, score={points:.1f} tag={levels.tag_at:g} "
                 f"junk={levels.junk_at:g}"]
        if flagged:
            lines.append("X-Spam-Flag: YES")
        if report:
            lines.append("X-Spam-Report: " + ";\r\n\t".join(report))
        return SpamMarks(points, ("\r\n".join(lines) + "\r\n").encode("ascii"), flagged, points >= levels.junk_at)


def tag_subject(message: bytes, tag: str) -> bytes:
    """``message`` with ``tag`` before its first Subject's value (or a Subject of its own when there is
    none); one already tagged is left as it is."""
    block = split_header(message)
    prefix = tag.encode("utf-8")
    for f in block.fields:
        if f.name == "subject":
            colon = message.index(b":", f.start) + 1
            value_start = colon + len(message[colon:f.end]) - len(message[colon:f.end].lstrip(b" \t"))
            if message[value_start:value_start + len(prefix.strip())] == prefix.strip():
                return message
            return message[:value_start] + prefix + message[value_start:]
    return message[:block.end] + b"Subject: " + prefix.strip() + b"\r\n" + message[block.end:]
