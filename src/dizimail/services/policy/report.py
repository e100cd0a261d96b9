"""What the scoring checks found, as a message carries it: the Authentication-Results header (RFC 8601)
and a one-line summary for the log."""

from __future__ import annotations

import re
from collections.abc import Iterable

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


def score(findings: Iterable[Finding]) -> float:
    return sum(f.score for f in findings)
