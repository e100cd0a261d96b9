"""Authentication of a received message's content: DKIM signatures (RFC 6376) and the ARC chain
(RFC 8617) with dkimpy, and DMARC (RFC 7489) by our own evaluator on dnspython with the public-suffix
list of ``publicsuffixlist`` (its releases track the list). Synchronous: run in a worker thread, with
the node's resolver.

DMARC: the RFC 5322.From domain's record (``_dmarc.<domain>``, else its organisational domain's), then
pass if SPF passed for an aligned MAIL FROM (or HELO) domain or a DKIM signature passed for an aligned
d= (relaxed: the same organisational domain; strict: the same domain). The policy that applies is
``sp`` for a subdomain found through its organisational domain's record, else ``p``; ``pct`` samples.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import dkim
import dns.exception
import dns.resolver
from publicsuffixlist import PublicSuffixList

from dizimail.codec.mime.address import Mailbox, parse_addresses
from dizimail.codec.mime.charsets import decode_header_bytes
from dizimail.codec.mime.headers import field_value, split_header

log = logging.getLogger("dizimail.antispam")
MAX_SIGNATURES = 5  # a message with more gets the first five verified (each costs DNS and RSA)


@dataclass(frozen=True, slots=True)
class DkimResult:
    result: str  # pass, fail, permerror, temperror
    domain: str
    selector: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DmarcResult:
    result: str  # pass, fail, none, temperror, permerror
    domain: str  # the RFC 5322.From domain
    policy: str = "none"  # what applies to this message: none, quarantine, reject
    reason: str = ""


@cache
def _suffixes() -> PublicSuffixList:
    """The public-suffix list, parsed at its first use (about 90 ms: not at every command's start)."""
    return PublicSuffixList()


def org_domain(domain: str) -> str:
    return _suffixes().privatesuffix(domain) or domain


def aligned(a: str, b: str, strict: bool) -> bool:
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    return a == b if strict else org_domain(a) == org_domain(b)


class MessageAuth:
    def __init__(self, resolver: dns.resolver.Resolver) -> None:
        self.resolver = resolver

    # --- DNS ---------------------------------------------------------------
    def txt(self, name: str) -> list[str] | None:
        """The TXT strings at ``name`` joined per record; [] when there are none; None if DNS failed."""
        try:
            answer = self.resolver.resolve(name, "TXT", raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return []
        except (dns.exception.DNSException, OSError):
            return None
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]

    def dnsfunc(self, name: bytes | str, timeout: int = 5) -> bytes:
        """dkimpy's DNS hook: the first TXT record at ``name``, or b"" (dkimpy then says the key is missing)."""
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        records = self.txt(text.rstrip("."))
        return records[0].encode() if records else b""

    # --- DKIM and ARC ------------------------------------------------------------
    def dkim(self, message: bytes) -> list[DkimResult]:
        """Each DKIM-Signature (the first MAX_SIGNATURES), verified."""
        results = []
        verifier = dkim.DKIM(message, logger=log)
        count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
        for idx in range(min(count, MAX_SIGNATURES)):
            try:
                ok = verifier.verify(idx=idx, dnsfunc=self.dnsfunc)
                result, reason = ("pass", "") if ok else ("fail", "signature did not verify")
            except dkim.KeyFormatError as exc:
                result, reason = "permerror", f"key: {exc}"
            except dkim.ValidationError as exc:
                result, reason = "permerror", str(exc)
            except Exception as exc:  # dkimpy raises on what it cannot parse at all: an error, never a crash
                result, reason = "permerror", f"{type(exc).__name__}: {exc}"
            tags = verifier.signature_fields if result != "permerror" else self._tags(verifier, idx)
            results.append(DkimResult(result, _tag(tags, b"d"), _tag(tags, b"s"), reason))
        return results

    @staticmethod
    def _tags(verifier: Any, idx: int) -> dict[bytes, bytes]:
        signatures = [value for name, value in verifier.headers if name.lower() == b"dkim-signature"]
        try:
            return dict(dkim.util.parse_tag_value(signatures[idx]))
        except Exception:
            return {}

    def arc(self, message: bytes) -> str:
        """The ARC chain's validation: pass, fail or none."""
        try:
            cv, _results, _comment = dkim.arc_verify(message, dnsfunc=self.dnsfunc, logger=log)
        except Exception as exc:  # a malformed ARC set: fail, never a crash
            log.info("arc.error error=%s", type(exc).__name__)
            return "fail"
        return cv.decode("ascii", "replace").lower() if isinstance(cv, bytes) else str(cv).lower()

    # --- DMARC ---------------------------------------------------------------
    def dmarc(self, message: bytes, spf: tuple[str, str], dkim_results: list[DkimResult]) -> DmarcResult:
        """``spf``: (result, the domain SPF judged: MAIL FROM's, or HELO's for the null sender)."""
        domains = set(_from_domains(message))
        if not domains:
            return DmarcResult("none", "", reason="no RFC 5322.From domain")
        if len(domains) > 1:
            return DmarcResult("permerror", sorted(domains)[0], reason="From: names several domains")
        domain = domains.pop()
        record, found_at = self._record(domain)
        if record is None:
            return DmarcResult("temperror", domain, reason=f"DNS did not answer for _dmarc.{domain}")
        if not record:
            return DmarcResult("none", domain, reason="no DMARC record")
        tags = _parse_record(record)
        policy = tags.get("p", "").lower()
        if policy not in ("none", "quarantine", "reject"):
            return DmarcResult("permerror", domain, reason=f"bad p= in {record[:100]!r}")
        if found_at != domain and tags.get("sp", "").lower() in ("none", "quarantine", "reject"):
            policy = tags["sp"].lower()
        spf_ok = spf[0] == "pass" and aligned(spf[1], domain, tags.get("aspf", "r").lower() == "s")
        dkim_ok = any(r.result == "pass" and aligned(r.domain, domain, tags.get("adkim", "r").lower() == "s")
                      for r in dkim_results)
        if spf_ok or dkim_ok:
            return DmarcResult("pass", domain, policy, "aligned " + ("SPF" if spf_ok else "DKIM"))
        try:
            pct = min(max(int(tags.get("pct", "100")), 0), 100)
        except ValueError:
            pct = 100
        if pct < 100 and random.randrange(100) >= pct:  # RFC 7489 §6.6.4: the next policy down
            policy = {"reject": "quarantine", "quarantine": "none"}.get(policy, "none")
        return DmarcResult("fail", domain, policy, "neither SPF nor DKIM aligned with " + domain)

    def _record(self, domain: str) -> tuple[str | None, str]:
        """The DMARC record for ``domain`` (RFC 7489 §6.6.3): its own, else its organisational domain's."""
        for name in dict.fromkeys((domain, org_domain(domain))):
            records = self.txt(f"_dmarc.{name}")
            if records is None:
                return None, name
            dmarc_records = [r for r in records if r.strip().lower().startswith("v=dmarc1")]
            if len(dmarc_records) == 1:
                return dmarc_records[0], name
        return "", domain


def _tag(tags: dict[bytes, bytes], name: bytes) -> str:
    return tags.get(name, b"").decode("ascii", "replace").strip().lower()


def _parse_record(record: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in record.split(";")[:32]:
        key, eq, value = part.partition("=")
        if eq:
            tags.setdefault(key.strip().lower(), value.strip())
    return tags


def _from_domains(message: bytes) -> Iterator[str]:
    for address in from_addresses(message):
        yield address.rpartition("@")[2]


def from_addresses(message: bytes) -> list[str]:
    """The RFC 5322.From addresses of a message, lower-case (domain without a final dot)."""
    out = []
    for f in split_header(message).fields:
        if f.name == "from":
            for item in parse_addresses(decode_header_bytes(field_value(message, f))):
                if isinstance(item, Mailbox) and item.domain and item.local:
                    out.append(f"{item.local}@{item.domain.rstrip('.')}".lower())
    return out
