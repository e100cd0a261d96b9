"""A list's addresses and header fields.

Command addresses carry what they act on: ``confirm-TOKEN`` (a random token whose hash waits in the
store), ``approve-ID-MAC`` / ``reject-ID-MAC`` (a held post, by quarantine entry id) and ``bounce-ID-MAC``
(a member, VERP). The MACs are HMAC-SHA256 with a key derived from the master key, bound to the list's
address and the role, so an address learned from one mail cannot act on another entry, member or list.
The one-click unsubscription link (RFC 8058) carries the same kind of MAC over the member's address."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote, urlencode

from dizimail.model.lists import ROLES, ListTarget, MailingList

MAC_CHARS = 16  # base32: 80 bits


def split_command(local: str) -> tuple[str, str, str] | None:
    """``LIST+ROLE[-ARG]`` → (LIST, ROLE, ARG), or None when the local part names no command."""
    base, plus, rest = local.partition("+")
    if not plus or not base:
        return None
    role, _, arg = rest.partition("-")
    if role not in ROLES or role == "post" or (role in ("subscribe", "unsubscribe", "bounces") and arg):
        return None
    if role in ("confirm", "approve", "reject", "bounce") and not arg:
        return None
    return base, role, arg


def token_hash(token: str) -> str:
    """What the store keeps of a confirmation token (a leaked database confirms nothing)."""
    return hashlib.sha256(token.encode()).hexdigest()


class ListKeys:
    def __init__(self, key: bytes, web_base: str = "") -> None:
        self.key = key
        self.web_base = web_base.rstrip("/")  # https://host:port of the node's web side (one-click links)

    def mac(self, mlist: MailingList, role: str, value: str) -> str:
        digest = hmac.new(self.key, f"{mlist.address}\0{role}\0{value}".encode(), hashlib.sha256).digest()
        return base64.b32encode(digest).decode()[:MAC_CHARS].lower()

    def command(self, mlist: MailingList, role: str, arg: str = "") -> str:
        local, _, domain = mlist.address.rpartition("@")
        return f"{local}+{role}{'-' + arg if arg else ''}@{domain}"

    def signed(self, mlist: MailingList, role: str, number: int) -> str:
        """``approve``/``reject`` of a held post, ``bounce`` of a member: LIST+ROLE-ID-MAC@domain."""
        return self.command(mlist, role, f"{number}-{self.mac(mlist, role, str(number))}")

    def verify(self, target: ListTarget) -> int | None:
        """The id a signed command address carries, when its MAC is right."""
        number, _, mac = target.arg.partition("-")
        if not number.isdigit() or len(number) > 18 or not hmac.compare_digest(
                mac.lower(), self.mac(target.mlist, target.role, number)):
            return None
        return int(number)

    def unsubscribe_url(self, mlist: MailingList, member: str) -> str:
        query = urlencode({"list": mlist.address, "member": member,
                           "mac": self.mac(mlist, "one-click", member)}, quote_via=quote)
        return f"{self.web_base}/list/unsubscribe?{query}"

    def verify_unsubscribe(self, mlist: MailingList, member: str, mac: str) -> bool:
        return hmac.compare_digest(mac.lower().encode(), self.mac(mlist, "one-click", member).encode())

    def header(self, mlist: MailingList) -> bytes:
        """The fields every member's copy carries (in the post's blob): RFC 2919 List-Id, RFC 2369
        List-Post and List-Help, Precedence (vacation replies and forwarding leave list mail alone)."""
        name = mlist.name.replace("\\", "\\\\").replace('"', '\\"')
        name = "".join(c for c in name if c.isprintable())[:100]
        lines = [f'List-Id: "{name}" <{mlist.list_id}>' if name and name.isascii() else f"List-Id: <{mlist.list_id}>",
                 f"List-Post: <mailto:{mlist.address}>" if mlist.policy != "senders" else "List-Post: NO",
                 f"List-Help: <mailto:{self.command(mlist, 'subscribe')}?subject=help>",
                 "Precedence: list"]
        return "".join(line + "\r\n" for line in lines).encode("utf-8")

    def member_lines(self, mlist: MailingList, member: str) -> bytes:
        """A member's own: how to leave (RFC 2369 mailto, RFC 8058 one-click HTTPS POST)."""
        links = [f"<mailto:{self.command(mlist, 'unsubscribe')}>"]
        if self.web_base:
            links.append(f"<{self.unsubscribe_url(mlist, member)}>")
        lines = "List-Unsubscribe: " + ",\r\n ".join(links) + "\r\n"
        if self.web_base:
            lines += "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        return lines.encode("utf-8")
