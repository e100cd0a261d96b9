"""Mail traffic per day and domain (issue #11): what the dashboard shows of today and what the monthly
usage report (the seed's billing) adds up.

Counted in memory where mail passes (ingest, the queue runner) and added to the store a few seconds
later by one write: the path of a message gains no statement. What a crash catches in memory (at most
FLUSH_EVERY seconds of counts) is lost from the statistics, never mail: the counts are not mail."""

from __future__ import annotations

import asyncio
import calendar
import csv
import io
import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import date

from dizimail.interfaces.traffic import TrafficStore
from dizimail.model.errors import InvalidInput
from dizimail.model.traffic import DomainUsage, Flow, TrafficRow
from dizimail.model.types import Account
from dizimail.services.accounts import AccountService

log = logging.getLogger("dizimail.traffic")
FLUSH_EVERY = 5.0  # seconds between a first count and its write


def today(now: float | None = None) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(now))


def month_days(month: str) -> tuple[str, str]:
    """``YYYY-MM`` → its first and last day."""
    try:
        year, mon = (int(p) for p in month.split("-"))
        last = calendar.monthrange(year, mon)[1]
        return date(year, mon, 1).isoformat(), date(year, mon, last).isoformat()
    except (ValueError, TypeError):
        raise InvalidInput("bad_month", month) from None


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


class TrafficCounter:
    def __init__(self, store: TrafficStore) -> None:
        self.store = store
        self._counts: Counter[tuple[str, str, Flow]] = Counter()
        self._bytes: Counter[tuple[str, str, Flow]] = Counter()
        self._pending: asyncio.Task[None] | None = None

    def count(self, domain: str, flow: Flow, size: int, messages: int = 1) -> None:
        if not domain or messages <= 0:
            return
        key = (today(), domain, flow)
        self._counts[key] += messages
        self._bytes[key] += size * messages
        if self._pending is None:
            try:
                self._pending = asyncio.get_running_loop().create_task(self._later())
            except RuntimeError:  # no loop (a command-line call): written by the next flush()
                pass

    async def _later(self) -> None:
        try:
            await asyncio.sleep(FLUSH_EVERY)
        finally:
            self._pending = None
        await self.flush()

    async def flush(self) -> None:
        counts, sizes = self._counts, self._bytes
        self._counts, self._bytes = Counter(), Counter()
        rows = [TrafficRow(day, domain, flow, n, sizes[(day, domain, flow)]) for (day, domain, flow), n in counts.items()]
        try:
            await self.store.add_traffic(rows)
        except Exception:  # the counts are statistics: logged, never a failure of the mail that made them
            log.exception("traffic.flush.failed rows=%d", len(rows))

    async def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        await self.flush()

    async def day_totals(self, day: str, domains: set[str] | None = None) -> dict[Flow, int]:
        """Messages of each flow on that day (of these domains; None: every one), counts in memory included."""
        totals = dict.fromkeys(Flow, 0)
        for row in await self.store.traffic(day, day):
            if domains is None or row.domain in domains:
                totals[row.flow] += row.messages
        for (d, domain, flow), n in self._counts.items():
            if d == day and (domains is None or domain in domains):
                totals[flow] += n
        return totals

    async def usage(self, month: str, domains: list[str], users: dict[str, list[Account]]) -> list[DomainUsage]:
        """The usage report: per domain, its mailboxes and storage now, and its traffic in the month."""
        first, last = month_days(month)
        flows: Counter[tuple[str, Flow]] = Counter()
        sizes: Counter[tuple[str, Flow]] = Counter()
        for row in await self.store.traffic(first, last):
            flows[(row.domain, row.flow)] += row.messages
            sizes[(row.domain, row.flow)] += row.bytes
        for (day, domain, flow), n in self._counts.items():  # not written yet
            if first <= day <= last:
                flows[(domain, flow)] += n
                sizes[(domain, flow)] += self._bytes[(day, domain, flow)]
        return [DomainUsage(domain=d, mailboxes=len(users.get(d, [])),
                            used_bytes=sum(a.used_bytes for a in users.get(d, [])),
                            messages_in=flows[(d, Flow.IN)], bytes_in=sizes[(d, Flow.IN)],
                            messages_out=flows[(d, Flow.OUT)], bytes_out=sizes[(d, Flow.OUT)])
                for d in domains]


async def usage_report(accounts: AccountService, traffic: TrafficCounter, month: str,
                       visible: Callable[[str], bool] = lambda _d: True) -> list[DomainUsage]:
    """The usage report of a month for the local domains ``visible`` says the caller reaches."""
    domains = [d.name for d in await accounts.list_domains() if not d.alias_of and visible(d.name)]
    users = {d: await accounts.list_users(d) for d in domains}
    return await traffic.usage(month, domains, users)


def usage_csv(rows: list[DomainUsage]) -> str:
    """The report as CSV (UTF-8 with a BOM, for spreadsheets)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("domain", "mailboxes", "used_bytes", "messages_in", "bytes_in", "messages_out", "bytes_out"))
    for r in rows:
        writer.writerow((r.domain, r.mailboxes, r.used_bytes, r.messages_in, r.bytes_in, r.messages_out, r.bytes_out))
    return "\ufeff" + out.getvalue()


def this_month() -> str:
    return time.strftime("%Y-%m")
