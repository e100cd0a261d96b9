"""Every reply the SMTP front-end sends, in one catalogue (RFC 5321 §4.2, RFC 3463 enhanced codes).

Protocol replies (syntax, command order, TLS) are named here; the replies to policy decisions come
from the verdict (code, enhanced code, and the i18n key of its text: English on the wire)."""

from __future__ import annotations

from dataclasses import dataclass

from dizimail.i18n import translate
from dizimail.model.errors import MailError
from dizimail.services.policy.verdict import Verdict


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    enhanced: str
    text: str


def of_verdict(verdict: Verdict) -> Reply:
    return Reply(verdict.code, verdict.enhanced, translate(verdict.key, "en").format_map(dict(verdict.args)))


def of_error(error: MailError) -> Reply:
    return Reply(error.code, error.enhanced, translate(error.public_key, "en"))


OK = Reply(250, "2.0.0", "Ok")
SENDER_OK = Reply(250, "2.1.0", "Ok")
RCPT_OK = Reply(250, "2.1.5", "Ok")
START_DATA = Reply(354, "", "End data with <CR><LF>.<CR><LF>")
READY_TLS = Reply(220, "2.0.0", "Ready to start TLS")
AUTH_OK = Reply(235, "2.7.0", "Authentication successful")
VRFY = Reply(252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery")
LINE_TOO_LONG = Reply(500, "5.5.6", "Line too long")
NEED_HELO = Reply(503, "5.5.1", "Send HELO/EHLO first")
NEED_EHLO = Reply(503, "5.5.1", "Send EHLO first")
NESTED_MAIL = Reply(503, "5.5.1", "Nested MAIL command")
NEED_MAIL_FOR_RCPT = Reply(503, "5.5.1", "Need MAIL before RCPT")
NEED_MAIL = Reply(503, "5.5.1", "Need MAIL command")
NO_RECIPIENTS = Reply(554, "5.5.1", "No valid recipients")
BDAT_ONLY = Reply(503, "5.5.1", "Only BDAT, RSET, NOOP or QUIT during a BDAT transfer")
TLS_UNAVAILABLE = Reply(503, "5.5.1", "TLS not available")
TLS_ACTIVE = Reply(503, "5.5.1", "TLS already active")
ALREADY_AUTHENTICATED = Reply(503, "5.5.1", "Already authenticated")
AUTH_IN_TRANSACTION = Reply(503, "5.5.1", "AUTH not allowed during a mail transaction")
AUTH_NOT_HERE = Reply(502, "5.5.1", "AUTH is not offered on this port; use the submission or smtps port")
ENCRYPTION_REQUIRED = Reply(538, "5.7.11", "Encryption required for requested authentication mechanism")
UNKNOWN_MECHANISM = Reply(504, "5.5.4", "Unrecognized authentication type")
CANNOT_DECODE = Reply(501, "5.5.2", "Cannot decode response")
AUTH_LINE_TOO_LONG = Reply(500, "5.5.6", "Authentication Exchange line is too long")  # RFC 4954 §6
AUTH_CANCELLED = Reply(501, "5.7.0", "Authentication cancelled")
PARAMS_NEED_EHLO = Reply(555, "5.5.4", "MAIL parameters require EHLO")
NEEDS_SMTPUTF8 = Reply(553, "5.6.7", "Address requires SMTPUTF8")
TOO_BIG = Reply(552, "5.3.4", "Message size exceeds fixed maximum message size")


def challenge(text: str) -> Reply:
    return Reply(334, "", text)


def hello(hostname: str, helo: str, ip: str) -> str:
    return f"{hostname} Hello {helo} [{ip}]"


def chunk_received(size: int) -> Reply:
    return Reply(250, "2.0.0", f"{size} octets received")


def queued(queue_id: str, deferred: int) -> Reply:
    return Reply(250, "2.0.0", f"Ok: queued as {queue_id}" + (f" ({deferred} deferred: mailbox full)" if deferred else ""))


def greeting(hostname: str) -> Reply:
    return Reply(220, "", f"{hostname} ESMTP dizimail")


def bye(hostname: str) -> Reply:
    return Reply(221, "2.0.0", f"{hostname} Bye")


def too_many_errors(hostname: str) -> Reply:
    return Reply(421, "4.7.0", f"{hostname} Too many errors, closing connection")


def timeout(hostname: str) -> Reply:
    return Reply(421, "4.4.2", f"{hostname} Timeout, closing connection")


def refused_connection(hostname: str, key: str) -> Reply:
    return Reply(421, "4.7.0", f"{hostname} {translate(key, 'en')}")


HELP = ("Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT STARTTLS AUTH", "See RFC 5321")
