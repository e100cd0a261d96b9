"""What a check answers: a :class:`Verdict` (accept, tempfail or reject), with the reply and the reason."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from dizimail.model.errors import MailError


class Stage(StrEnum):
    """The points of an SMTP transaction where checks run (RFC 5321 §3.3); other ways in use the same."""

    CONNECT = "connect"
    HELO = "helo"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"
    GREET = "greet"  # after the greeting's first line, before its last (postscreen's pregreet test)


class Action(StrEnum):
    ACCEPT = "accept"
    TEMPFAIL = "tempfail"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class Verdict:
    """One decision. ``key`` names the reply text in the i18n catalogue (formatted with ``args``), so
    SMTP, webmail and the importers each word it their own way; ``check`` and ``reason`` say who decided
    and why (for the log, never for the client). An accepting verdict may carry ``findings``: what a
    scoring check saw (anti-spam layer 2 on), kept with the message."""

    action: Action
    code: int = 250
    enhanced: str = ""
    key: str = ""
    args: Mapping[str, str] = field(default_factory=dict)
    check: str = ""
    reason: str = ""
    findings: tuple[Finding, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.action is Action.ACCEPT

    def softened(self) -> Verdict:
        """The same refusal as a temporary one (4xx, 4.x.x): an operator trying a check out."""
        if self.action is not Action.REJECT:
            return self
        enhanced = "4" + self.enhanced[1:] if self.enhanced else ""
        return Verdict(Action.TEMPFAIL, 400 + self.code % 100 if self.code >= 500 else self.code, enhanced,
                       self.key, self.args, self.check, self.reason)


@dataclass(frozen=True, slots=True)
class Finding:
    """What a scoring check found: points towards the message's spam score (0 for a pass), why, and for
    an authentication method (iprev, spf, dkim, dmarc, arc) its result and properties as the
    Authentication-Results header (RFC 8601) gives them. ``refusal`` is the answer when the operator set
    the check to ``reject`` (policy.actions), e.g. 550 5.7.23 for an SPF fail (RFC 7372); ``enforced``
    findings refuse whatever the setting says unless it is ``log`` (a DMARC p=reject). ``quarantine``: why
    the message is to be held for a human instead of delivered (the ingest does it); ``strip``: header
    fields to take out of it (forged verdict headers)."""

    check: str
    score: float
    reason: str
    method: str = ""
    result: str = ""
    properties: tuple[tuple[str, str], ...] = ()
    comment: str = ""
    refusal: Verdict | None = None
    enforced: bool = False
    quarantine: str = ""
    strip: tuple[tuple[int, int], ...] = ()  # byte ranges of the received message the ingest removes


ACCEPT = Verdict(Action.ACCEPT)


def found(*findings: Finding) -> Verdict:
    """An acceptance that reports what the check saw."""
    return Verdict(Action.ACCEPT, findings=findings)


def reject(code: int, enhanced: str, key: str, reason: str = "", **args: str) -> Verdict:
    """A permanent refusal (5xx); the engine fills in which check gave it."""
    return Verdict(Action.REJECT, code, enhanced, key, args, reason=reason)


def tempfail(code: int, enhanced: str, key: str, reason: str = "", **args: str) -> Verdict:
    """A temporary refusal (4xx): the client may try again later."""
    return Verdict(Action.TEMPFAIL, code, enhanced, key, args, reason=reason)


class Refused(MailError):
    """A policy refusal raised to a caller with no conversation to speak it in (the submitter): the
    verdict's code and text, and the verdict itself for those who report it further (a bounce)."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.action is Action.TEMPFAIL, verdict.code, verdict.enhanced, verdict.key,
                         f"{verdict.check}: {verdict.reason}")
        self.verdict = verdict
