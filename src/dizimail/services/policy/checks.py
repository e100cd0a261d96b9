"""The core checks: who may send, as whom, to whom, how much, and how many hops.

Each is a small named object with the stages it hooks (DESIGN.md §5); ``mandatory`` ones keep this
server from becoming an open relay, so config can reorder them but never switch them off
(CONVENTIONS habit 11).
"""

from __future__ import annotations

from typing import ClassVar

from dizimail.config.schema import LimitsConfig, PolicyConfig, SmtpConfig
from dizimail.services.policy.facts import OWN, Client, Facts, Mode
from dizimail.services.policy.quota import QuotaRule
from dizimail.services.policy.relay import RelayNetworks
from dizimail.services.policy.verdict import Stage, Verdict, reject, tempfail
from dizimail.services.routing import Kind, Router

ROUTING_CHARS = "%!@:"  # RFC 1123 §5.2.16 / RFC 2505 §2.3: a local part that itself carries a route


class Check:
    """Base of every check: ``name`` (kebab-case, stable: config and logs use it), the ``stages``
    it hooks, and :meth:`evaluate`, which returns None when it has nothing to say."""

    name: ClassVar[str]
    stages: ClassVar[frozenset[Stage]]
    mandatory: ClassVar[bool] = False

    async def evaluate(self, facts: Facts) -> Verdict | None:
        raise NotImplementedError


class AuthRequired(Check):
    """Submission ports take mail from logged-in users only (RFC 6409 §4.3)."""

    name = "auth-required"
    stages = frozenset({Stage.MAIL})
    mandatory = True

    async def evaluate(self, facts: Facts) -> Verdict | None:
        if facts.client.mode in (Mode.SUBMISSION, Mode.SMTPS) and facts.client.account is None:
            return reject(530, "5.7.0", "auth_required", "submission without AUTH")
        return None


class MaySendAs(Check):
    """A user sends as their own addresses (aliases that reach them included); on a gateway, the inner
    server's relay login may also send for the domains the gateway routes inward."""

    name = "may-send-as"
    stages = frozenset({Stage.MAIL})

    def __init__(self, router: Router) -> None:
        self.router = router

    async def evaluate(self, facts: Facts) -> Verdict | None:
        account = facts.client.account
        if account is None or not facts.sender:
            return None
        resolution = await self.router.resolve(facts.sender.lower())
        if resolution.kind is Kind.REMOTE and resolution.ours:
            return None
        if any(a.id == account.id for a in resolution.accounts):
            return None
        return reject(553, "5.7.1", "sender_not_owned", f"{account.address} is not {facts.sender}",
                      user=account.address)


class Size(Check):
    """``limits.max_message_size``: refused at MAIL when SIZE= declares more (RFC 1870 §6.1), and at
    the end of DATA/BDAT when the message turned out larger."""

    name = "size"
    stages = frozenset({Stage.MAIL, Stage.DATA})

    def __init__(self, limits: LimitsConfig) -> None:
        self.max_size = limits.max_message_size

    async def evaluate(self, facts: Facts) -> Verdict | None:
        if facts.stage is Stage.MAIL:
            declared = _int(facts.params.get("SIZE"))
            if declared > self.max_size:
                return reject(552, "5.3.4", "message_too_big", f"SIZE={declared}")
        elif facts.message is not None and (facts.message.too_big or facts.message.size > self.max_size):
            return reject(552, "5.3.4", "message_too_big", f"{facts.message.size} octets")
        return None


class RecipientLimit(Check):
    name = "recipient-limit"
    stages = frozenset({Stage.RCPT})

    def __init__(self, limits: LimitsConfig) -> None:
        self.max_recipients = limits.max_recipients

    async def evaluate(self, facts: Facts) -> Verdict | None:
        if facts.recipients >= self.max_recipients:
            return tempfail(452, "4.5.3", "too_many_recipients", f"{facts.recipients} recipients")
        return None


class Recipient(Check):
    """The recipient must exist here (or be routed or relayed) and be enabled."""

    name = "recipient"
    stages = frozenset({Stage.RCPT})
    mandatory = True

    async def evaluate(self, facts: Facts) -> Verdict | None:
        kind = facts.resolution.kind if facts.resolution is not None else Kind.UNKNOWN
        if kind is Kind.UNKNOWN:
            return reject(550, "5.1.1", "rcpt_unknown", "no such user", rcpt=facts.shown)
        if kind in (Kind.SUSPENDED, Kind.DOMAIN_SUSPENDED):
            return reject(550, "5.2.1", "rcpt_disabled", kind, rcpt=facts.shown)
        return None


class _RelayBase(Check):
    def __init__(self, networks: RelayNetworks) -> None:
        self.networks = networks

    async def may_relay(self, client: Client) -> bool:
        """Logged-in users, this system's own messages, and listed client networks."""
        if client.account is not None or client.mode in OWN:
            return True
        return await self.networks.may_relay(client.ip)


class RoutingTrick(_RelayBase):
    """Routed domains (a gateway's organisation domains, pushed or held) are ours to accept from anyone,
    but never with routing hidden in the local part (``user%host@``, ``user!host@``, ``"user@host"@``):
    the classic open-relay tricks, whichever way the domain is routed."""

    name = "routing-trick"
    stages = frozenset({Stage.RCPT})
    mandatory = True

    async def evaluate(self, facts: Facts) -> Verdict | None:
        res = facts.resolution
        if res is None or res.kind not in (Kind.REMOTE, Kind.HOLD) or not res.ours:
            return None
        local = facts.rcpt.rpartition("@")[0]
        if any(c in local for c in ROUTING_CHARS) and not await self.may_relay(facts.client):
            return reject(554, "5.7.1", "relay_denied", "routing in the local part", rcpt=facts.shown)
        return None


class Relay(_RelayBase):
    """Mail for domains that are not ours needs a login or a listed network: no open relay."""

    name = "relay"
    stages = frozenset({Stage.RCPT})
    mandatory = True

    async def evaluate(self, facts: Facts) -> Verdict | None:
        res = facts.resolution
        if res is not None and res.kind is Kind.REMOTE and not res.ours and not await self.may_relay(facts.client):
            return reject(554, "5.7.1", "relay_denied", "not ours, not allowed to relay", rcpt=facts.shown)
        return None


class Quota(Check):
    """A recipient whose mailbox cannot take the declared size is refused for now (RFC 1870 §6.2: 452)."""

    name = "quota"
    stages = frozenset({Stage.RCPT})

    def __init__(self, rule: QuotaRule) -> None:
        self.rule = rule

    async def evaluate(self, facts: Facts) -> Verdict | None:
        if facts.resolution is None or facts.resolution.kind is not Kind.LOCAL:
            return None
        size = _int(facts.params.get("SIZE"))
        for account in facts.resolution.accounts:
            if not self.rule.fits(account, size):
                return tempfail(452, "4.2.2", "mailbox_full", f"{account.address} over quota", rcpt=facts.shown)
        return None


class MessageFormat(Check):
    """Line limits of RFC 5322 §2.1.1 (``limits.max_header_line``) and, if configured, bare LFs."""

    name = "message-format"
    stages = frozenset({Stage.DATA})

    def __init__(self, limits: LimitsConfig, smtp: SmtpConfig) -> None:
        self.max_line = limits.max_header_line
        self.reject_bare_lf = smtp.reject_bare_lf

    async def evaluate(self, facts: Facts) -> Verdict | None:
        message = facts.message
        if message is None:
            return None
        if message.bare_lf and self.reject_bare_lf:
            return reject(550, "5.5.2", "bare_lf", "bare LF line ends")
        if message.longest_line > self.max_line:
            return reject(550, "5.5.2", "line_too_long", f"line of {message.longest_line} octets")
        return None


class HopCount(Check):
    """RFC 5321 §6.3: a message with too many Received: fields is in a loop (Postfix's hopcount_limit)."""

    name = "hop-count"
    stages = frozenset({Stage.DATA})

    def __init__(self, config: PolicyConfig) -> None:
        self.max_hops = config.max_hops

    async def evaluate(self, facts: Facts) -> Verdict | None:
        if facts.message is not None and facts.message.received > self.max_hops:
            return reject(554, "5.4.6", "too_many_hops", f"{facts.message.received} Received: fields")
        return None


class MailLoop(Check):
    """A message that already passed through this server ``max_own_passes`` times is coming round again
    (two networks routing a domain to each other, a holding box fetched and sent back)."""

    name = "mail-loop"
    stages = frozenset({Stage.DATA})

    def __init__(self, config: PolicyConfig) -> None:
        self.max_passes = config.max_own_passes

    async def evaluate(self, facts: Facts) -> Verdict | None:
        if facts.message is not None and facts.message.own_received >= self.max_passes:
            return reject(554, "5.4.6", "mail_loop", f"{facts.message.own_received} earlier passes here")
        return None


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
