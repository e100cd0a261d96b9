"""A user's webmail preferences (issue #13): time zone (dates shown in it), signature (added to what they
write), and the senders whose pictures show without asking. One small JSON document per account."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from dizimail.interfaces.contacts import ContactStore
from dizimail.model.errors import InvalidInput
from dizimail.model.types import Account

MAX_SIGNATURE = 2000
MAX_TRUSTED = 500  # senders whose pictures show
ZONES = sorted(available_timezones())


@dataclass(frozen=True)
class Prefs:
    time_zone: str = ""  # an IANA name; "" the server's
    signature: str = ""
    pictures_from: tuple[str, ...] = field(default_factory=tuple)  # lower-case addresses

    @property
    def zone(self) -> ZoneInfo | None:
        return ZoneInfo(self.time_zone) if self.time_zone else None


def checked(time_zone: str, signature: str, pictures_from: tuple[str, ...]) -> Prefs:
    if time_zone:
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput("bad_time_zone", time_zone[:100]) from None
    signature = signature.replace("\r\n", "\n")
    if len(signature) > MAX_SIGNATURE or any(ord(c) < 0x20 and c not in "\n\t" for c in signature):
        raise InvalidInput("bad_signature", f"at most {MAX_SIGNATURE} characters")
    return Prefs(time_zone, signature, tuple(dict.fromkeys(a.lower() for a in pictures_from))[-MAX_TRUSTED:])


class UserPrefs:
    def __init__(self, store: ContactStore) -> None:
        self.store = store

    async def get(self, account: Account) -> Prefs:
        stored = await self.store.get_prefs(account.id)
        if stored is None:
            return Prefs()
        data = json.loads(stored)
        return Prefs(data.get("time_zone", ""), data.get("signature", ""), tuple(data.get("pictures_from", ())))

    async def set(self, account: Account, *, time_zone: str | None = None, signature: str | None = None,
                  trust_pictures: str | None = None) -> Prefs:
        """Change what is given; ``trust_pictures``: a sender whose pictures show from now on."""
        old = await self.get(account)
        new = checked(old.time_zone if time_zone is None else time_zone,
                      old.signature if signature is None else signature,
                      old.pictures_from + ((trust_pictures,) if trust_pictures else ()))
        await self.store.put_prefs(account.id, json.dumps(asdict(new), ensure_ascii=False))
        return new
