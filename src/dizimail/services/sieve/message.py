"""What a Sieve script reads of a message: the envelope, the header fields as users see them (RFC 2047
encoded words decoded, raw UTF-8 kept, folded lines unfolded), the size, and for the body test
(RFC 5173) the text of its parts, read with the MIME codec the IMAP server uses."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.header import decode_header

from dizimail.codec.mime.structure import parse_structure
from dizimail.codec.mime.text import html_to_text, part_content

BODY_LIMIT = 1024 * 1024  # characters of a message's text that body tests read


@dataclass(frozen=True)
class Message:
    """``headers``: name lower-cased → raw values in order; ``raw``: the message as far as it was read
    (the whole of it when the script tests the body); ``mailboxes``: the account's, for mailboxexists."""

    sender: str
    recipient: str
    headers: dict[str, list[str]]
    size: int
    raw: bytes = b""
    mailboxes: frozenset[str] = field(default_factory=frozenset)
    spam_score: float | None = None  # the anti-spam score for this recipient (0-10), None: not judged
    virus_scanned: bool = False  # clamd found it clean (infected mail never reaches a script)

    @classmethod
    def parse(cls, raw: bytes, sender: str, recipient: str, size: int | None = None,
              mailboxes: frozenset[str] = frozenset(), spam_score: float | None = None,
              virus_scanned: bool = False) -> Message:
        """``raw``: the message, or its beginning with the whole header (``size`` then is the whole's)."""
        head = raw[:_body_start(raw)].decode("utf-8", "replace")
        fields: dict[str, list[str]] = {}
        name = None
        for line in head.replace("\r\n", "\n").split("\n"):
            if line[:1] in (" ", "\t") and name is not None:
                fields[name][-1] += " " + line.strip()
            elif ":" in line:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                fields.setdefault(name, []).append(value.strip())
        return cls(sender, recipient, fields, len(raw) if size is None else size, raw, mailboxes, spam_score,
                   virus_scanned)

    def body(self, transform: str, types: tuple[str, ...]) -> list[str]:
        """The texts a body test compares (RFC 5173 §5): ``:raw`` the body undecoded; ``:text`` the
        text parts decoded (HTML as its text); ``:content`` the parts of the given types, decoded."""
        raw = self.raw[:BODY_LIMIT * 4]
        if transform == ":raw":
            return [raw[_body_start(raw):].decode("utf-8", "replace")[:BODY_LIMIT]]
        root = parse_structure(raw)
        out: list[str] = []
        left = BODY_LIMIT
        for part in root.walk():
            if left <= 0:
                break
            if part.children:
                continue
            if transform == ":text":
                if part.content_type not in ("text/plain", "text/html"):
                    continue
            elif not any(t == "" or t == part.content_type or t == part.maintype for t in types):
                continue
            text = part_content(raw, part, left) if part.maintype == "text" or transform == ":content" else ""
            if part.subtype == "html" and transform == ":text":
                text = html_to_text(text)
            out.append(text)
            left -= len(text)
        return out


def _body_start(raw: bytes) -> int:
    """Where the body begins: after the first empty line (at once when the message has no header)."""
    if raw.startswith(b"\r\n"):
        return 2
    if raw.startswith(b"\n"):
        return 1
    ends = [at + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (at := raw.find(sep)) >= 0]
    return min(ends) if ends else len(raw)


_ENCODED_WORD = re.compile(r"=\?[^?\s]{1,40}\?[bBqQ]\?[^?\s]*\?=")
_BETWEEN_WORDS = re.compile(r"(\?=)[ \t]+(?==\?)")


def decoded(value: str) -> str:
    """RFC 2047 encoded words decoded, the rest (raw UTF-8 included) kept as it is; the white space
    between two encoded words goes (RFC 2047 §6.2)."""
    if "=?" not in value:
        return value

    def word(m: re.Match[str]) -> str:
        try:
            return "".join(part.decode(charset or "ascii", "replace") if isinstance(part, bytes) else part
                           for part, charset in decode_header(m.group(0)))
        except (ValueError, LookupError):
            return m.group(0)
    return _ENCODED_WORD.sub(word, _BETWEEN_WORDS.sub(r"\1", value))
