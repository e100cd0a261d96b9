"""Delivery of queued messages: where to (nexthop), over which connection (remote), and local retries.

The queue runner (services.queue.runner) asks :class:`NextHops` for the hosts of a
recipient domain — the routing table, then the smarthost, then MX records — and
hands each group of recipients to :class:`RemoteDelivery`, which keeps
connections per host open for the next message (RFC 5321 §4.5.4.1 lets a
client reuse a session) and records nothing itself: outcomes go back to the
runner, which commits them per recipient.
"""
