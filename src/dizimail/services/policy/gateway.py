"""Verdict headers across the two networks (the ``verdict-headers`` check, at DATA).

A message's spam verdict travels in its header: ``Authentication-Results`` (RFC 8601) and ``X-Spam-*``.
Only a server of our own may write them. From the networks in ``antispam.gateways`` (the inner
server's own gateway) they are believed: the gateway's ``X-Spam-Score`` becomes a finding here, so
the inner server files the message by its recipient's thresholds (Junk, tag) without judging it
again. From anyone else they are forgeries (RFC 8601 §5: a header claiming our trust boundary that
did not come from it is removed): every ``X-Spam-*`` field, and every ``Authentication-Results``
naming this server or one of ``antispam.authserv_ids``, is taken out of the message at ingest; from
logged-in users too (their colleagues' mail programs may act on such fields), and from mail fetched
out of a user's external mailbox (``fetch``). Mail the inner server polls from its gateway's holding
mailbox (``poll``, a fetch account in envelope mode the administrator set up) is the gateway's, as
if it had been pushed over SMTP.
"""

from __future__ import annotations

import ipaddress
import re

from dizimail.codec.mime.headers import field_value, split_header
from dizimail.config.schema import AntispamConfig
from dizimail.services.access import client_address
from dizimail.services.policy.checks import Check
from dizimail.services.policy.facts import Facts, Mode
from dizimail.services.policy.relay import Network
from dizimail.services.policy.verdict import Finding, Stage, Verdict, found

SPAM_FIELDS = frozenset({"x-spam-score", "x-spam-status", "x-spam-flag", "x-spam-report", "x-spam-level"})
_AUTHSERV = re.compile(rb"\s*(?:\([^()]*\)\s*)*([^\s;()]+)")
_SCORE = re.compile(rb"\s*(-?\d{1,3}(?:\.\d{1,3})?)\s*$")


def authserv_id(value: bytes) -> str:
    """The authserv-id an Authentication-Results value starts with (RFC 8601 §2.2), lower-case."""
    match = _AUTHSERV.match(value)
    return match.group(1).decode("ascii", "replace").lower() if match else ""


def verdict_fields(message: bytes, ids: frozenset[str]) -> list[tuple[int, int]]:
    """(start, end) of each field a foreign server may not give us: X-Spam-* and our authserv-ids'
    Authentication-Results."""
    block = split_header(message)
    return [(f.start, f.end) for f in block.fields
            if f.name in SPAM_FIELDS or (f.name == "authentication-results"
                                         and authserv_id(field_value(message, f)) in ids)]


def strip_fields(message: bytes, spans: list[tuple[int, int]]) -> bytes:
    """``message`` without the given (ascending, disjoint) byte ranges."""
    out, pos = [], 0
    for start, end in spans:
        out.append(message[pos:start])
        pos = end
    out.append(message[pos:])
    return b"".join(out)


class VerdictHeaders(Check):
    name = "verdict-headers"
    stages = frozenset({Stage.DATA})

    def __init__(self, config: AntispamConfig, hostname: str) -> None:
        self.gateways: list[Network] = [ipaddress.ip_network(n, strict=False) for n in config.gateways]
        self.ids = frozenset(i.lower() for i in [hostname, *config.authserv_ids])

    def from_gateway(self, facts: Facts) -> bool:
        addr = client_address(facts.client.ip)
        return (facts.client.mode is Mode.MX and facts.client.account is None and addr is not None
                and any(addr in net for net in self.gateways))

    async def evaluate(self, facts: Facts) -> Verdict | None:
        message = facts.message
        if (facts.client.mode is Mode.LOCAL or message is None or message.read is None or message.too_big
                or not message.verdict_fields):
            return None  # most mail: nothing to read (the fields were counted as the message streamed in)
        data = await message.read()
        if facts.client.mode is Mode.POLL or self.from_gateway(facts):
            block = split_header(data)
            score = next((m for f in block.fields if f.name == "x-spam-score"
                          for m in [_SCORE.match(field_value(data, f))] if m), None)
            if score is None:
                return None
            points = min(max(float(score.group(1)), 0.0), 10.0)
            where = "the gateway's holding mailbox" if facts.client.mode is Mode.POLL else f"gateway {facts.client.ip}"
            return found(Finding("gateway", points, f"{where} scored {points:g}", result="trusted"))
        spans = verdict_fields(data, self.ids)
        if not spans:
            return None
        source = "a fetched mailbox" if facts.client.mode is Mode.FETCH else facts.client.ip
        return found(Finding(self.name, 0.0, f"{len(spans)} verdict header field(s) from {source} removed",
                             result="stripped", strip=tuple(spans)))
