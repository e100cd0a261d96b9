"""The ``list-post`` check: who may write to a mailing list's addresses (services.lists).

At RCPT, so that a sender who may not post hears it from their own server: a list whose policy is
``members`` takes posts from its members (and moderators, named senders) only, ``senders`` from the named
ones only; ``anyone`` and ``moderated`` take every post (the latter holds it for a moderator at ingest).
No list takes mail from the null sender at its post or subscription addresses (bounces go to the return
path, ``LIST+bounces``). Command addresses that carry a token or a MAC exist only when it is valid:
anything else is an unknown recipient."""

from __future__ import annotations

import time

from dizimail.services.lists.addresses import ListKeys, token_hash
from dizimail.services.lists.manage import MailingLists
from dizimail.services.policy.checks import Check
from dizimail.services.policy.facts import Facts
from dizimail.services.policy.verdict import Stage, Verdict, reject
from dizimail.services.routing import Kind


class ListPost(Check):
    name = "list-post"
    stages = frozenset({Stage.RCPT})
    mandatory = False

    def __init__(self, lists: MailingLists | None, keys: ListKeys | None) -> None:
        self.lists = lists
        self.keys = keys

    async def evaluate(self, facts: Facts) -> Verdict | None:
        res = facts.resolution
        if res is None or res.kind is not Kind.LIST or res.target is None or self.lists is None or self.keys is None:
            return None
        target, sender = res.target, facts.sender.lower()
        mlist, role = target.mlist, target.role
        if role in ("post", "subscribe", "unsubscribe") and not sender:
            return reject(550, "5.7.1", "list_no_null_sender", "null sender", rcpt=facts.shown)
        if role == "post":
            if mlist.policy in ("members", "senders") and not await self.lists.may_post(mlist, sender):
                key = "list_members_only" if mlist.policy == "members" else "list_senders_only"
                return reject(550, "5.7.1", key, f"{sender} may not post to {mlist.address}", rcpt=facts.shown)
        elif role == "subscribe" and mlist.subscription == "closed":
            return reject(550, "5.7.1", "list_closed", mlist.address, rcpt=facts.shown)
        elif role == "confirm":
            if not await self.lists.store.has_pending(token_hash(target.arg), time.time()):
                return reject(550, "5.1.1", "rcpt_unknown", "no such confirmation", rcpt=facts.shown)
        elif role in ("approve", "reject", "bounce") and self.keys.verify(target) is None:
            return reject(550, "5.1.1", "rcpt_unknown", "bad MAC", rcpt=facts.shown)
        return None
