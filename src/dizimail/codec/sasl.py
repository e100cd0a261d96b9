"""Server side of one SASL exchange (RFC 4422 §3): PLAIN (RFC 4616) and LOGIN, sans-IO.

SMTP (RFC 4954), POP3 (RFC 5034) and IMAP (RFC 9051 §6.2.2, SASL-IR RFC 4959) run the same
:class:`SaslServer`; each session only frames its challenges (``334 text`` or ``+ text``), reads
one line per challenge with its own line limit, and speaks the result in its own replies::

    exchange = SaslServer(mechanism)
    step = exchange.start(initial)          # None: no initial response; "=": an empty one
    while isinstance(step, Challenge):
        send(step.text)                     # then read one line:
        step = exchange.respond(line)       # or exchange.too_long() when it exceeded the limit
    # step is Credentials or Failed

Base64 is validated strictly (RFC 4648 §3.3: no characters outside the alphabet, canonical
padding) so that one credential has one encoding.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Literal, TypeAlias

MECHANISMS = ("PLAIN", "LOGIN")  # offered by every protocol, in this order
MAX_INPUT = 4096  # characters of base64; larger inputs are refused before decoding
_MAX_FIELD = 255  # RFC 4616 §2: authzid, authcid and passwd are at most 255 octets


class SaslError(Exception):
    """Malformed SASL input (an exchange ends with ``Failed("malformed")``)."""


def _b64decode(s: str) -> bytes:
    if len(s) > MAX_INPUT:
        raise SaslError("SASL input too long")
    if not s.isascii():
        raise SaslError("invalid base64")
    try:
        raw = binascii.a2b_base64(s, strict_mode=True)
    except binascii.Error:
        raise SaslError("invalid base64") from None
    # strict_mode still accepts non-zero padding bits; re-encoding catches them.
    if base64.b64encode(raw).decode("ascii") != s:
        raise SaslError("invalid base64")
    return raw


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslError("invalid UTF-8") from None


def decode_plain(b64: str) -> tuple[str, str, str]:
    """Decode a PLAIN message ``[authzid] NUL authcid NUL passwd`` (RFC 4616 §2).

    Returns (authzid, authcid, password); authzid is "" when absent. authcid
    and passwd must be non-empty; each field is at most 255 octets of UTF-8.
    """
    parts = _b64decode(b64).split(b"\x00")
    if len(parts) != 3:
        raise SaslError("PLAIN needs exactly two NUL separators")
    authzid, authcid, password = parts
    if not authcid or not password:
        raise SaslError("empty PLAIN authcid or password")
    if max(len(p) for p in parts) > _MAX_FIELD:
        raise SaslError("PLAIN field too long")
    return _utf8(authzid), _utf8(authcid), _utf8(password)


def b64_decode_text(s: str) -> str:
    """Decode one LOGIN step (user name or password): strict base64 of UTF-8 text without NUL."""
    text = _utf8(_b64decode(s))
    if "\x00" in text:
        raise SaslError("NUL in SASL text")
    return text


def b64_encode_text(s: str) -> str:
    """Base64 of the UTF-8 text ``s`` (RFC 4648 §4), e.g. a LOGIN prompt ``Username:``."""
    return base64.b64encode(s.encode("utf-8")).decode("ascii")


# --- the exchange ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Challenge:
    """Send ``text`` (base64, "" for an empty challenge) and pass the client's next line to ``respond``."""

    text: str


@dataclass(frozen=True, slots=True)
class Credentials:
    """The exchange is complete: verify ``password`` for ``user``. ``authzid`` is "" when not asked for."""

    authzid: str
    user: str
    password: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The exchange ended without credentials: the client cancelled ("*"), sent something malformed,
    or a line longer than the session's limit (RFC 4954 §4: ``500 5.5.6``)."""

    reason: Literal["cancelled", "malformed", "too-long"]
    detail: str


Step: TypeAlias = Challenge | Credentials | Failed

_USERNAME = b64_encode_text("Username:")
_PASSWORD = b64_encode_text("Password:")


class SaslServer:
    """One exchange for one mechanism of :data:`MECHANISMS`; raises ValueError for any other."""

    def __init__(self, mechanism: str) -> None:
        self.mechanism = mechanism.upper()
        if self.mechanism not in MECHANISMS:
            raise ValueError(f"unsupported SASL mechanism {mechanism!r}")
        self._user: str | None = None  # LOGIN: the name, once given
        self._done = False

    def start(self, initial: str | None) -> Step:
        """The first step: ``initial`` is the initial response as sent (None: none, "=": empty)."""
        if initial is None or (initial == "=" and self.mechanism == "LOGIN"):
            return Challenge("" if self.mechanism == "PLAIN" else _USERNAME)
        return self.respond(initial.encode("utf-8", "replace"))

    def respond(self, line: bytes | str) -> Step:
        """The client's answer to the last challenge (one line, without its CRLF)."""
        if self._done:
            raise RuntimeError("the SASL exchange is over")
        if isinstance(line, str):
            line = line.encode("utf-8", "replace")
        text = line.strip()
        if text == b"*":
            return self._end(Failed("cancelled", "authentication cancelled"))
        if len(text) > MAX_INPUT:
            return self.too_long()
        try:
            response = "" if text == b"=" else text.decode("ascii")
            if self.mechanism == "PLAIN":
                return self._end(Credentials(*decode_plain(response)))
            if self._user is None:
                self._user = b64_decode_text(response)
                return Challenge(_PASSWORD)
            return self._end(Credentials("", self._user, b64_decode_text(response)))
        except (SaslError, UnicodeDecodeError) as exc:
            return self._end(Failed("malformed", str(exc)))

    def too_long(self) -> Failed:
        """The client's line exceeded the session's limit (and was discarded): the exchange fails."""
        return self.unreadable("too-long", "SASL response line too long")

    def unreadable(self, reason: Literal["malformed", "too-long"], detail: str) -> Failed:
        """The session's own reader refused the client's line (e.g. IMAP's parser): the exchange fails."""
        self._done = True
        return Failed(reason, detail)

    def _end(self, step: Credentials | Failed) -> Credentials | Failed:
        self._done = True
        return step
