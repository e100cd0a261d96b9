"""Passwords the node keeps for others (fetch accounts, the smarthost), encrypted at rest.

Values are sealed with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) under the master key
that ``app`` loads from a file outside the database (``storage.master_key``), and stored as
``fernet:<token>``. A value without that prefix is a plaintext one from before (read as it is, and sealed
by :meth:`FetchService.seal_stored` at the node's start).

Named secrets (:class:`Secrets`) live in the settings table as ``secret.<name>``: today only
``smarthost-password`` (``dizimail secret set smarthost-password``), which the runner prefers over the
config's plaintext ``delivery.smarthost_password``.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken

from dizimail.interfaces import SettingsStore
from dizimail.model.errors import InvalidInput, MailError

PREFIX = "fernet:"
NAMES = ("smarthost-password",)


class SecretError(MailError):
    """A sealed value the master key cannot open (the key file was replaced or lost)."""

    def __init__(self, detail: str) -> None:
        super().__init__(True, 451, "4.3.0", "secret_unreadable", detail)


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._key = key

    def derive(self, label: str) -> bytes:
        """A key of its own for ``label`` (HMAC-SHA256 of the master key): one master key, many uses, none
        of them able to open the others' (the SRS addresses' guard is one)."""
        return hmac.new(self._key, b"dizimail/" + label.encode(), hashlib.sha256).digest()

    @staticmethod
    def sealed(stored: str) -> bool:
        return stored.startswith(PREFIX)

    def seal(self, plain: str) -> str:
        return PREFIX + self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def open(self, stored: str) -> str:
        """The plaintext of a sealed value; a value stored before sealing existed comes back as it is."""
        if not self.sealed(stored):
            return stored
        try:
            return self._fernet.decrypt(stored[len(PREFIX):].encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise SecretError("a stored password does not open with the master key (storage.master_key)") from exc


class Secrets:
    """Named secrets the operator sets with ``dizimail secret``; take effect without a restart."""

    def __init__(self, settings: SettingsStore, box: SecretBox) -> None:
        self.settings = settings
        self.box = box

    @staticmethod
    def _key(name: str) -> str:
        if name not in NAMES:
            raise InvalidInput("bad_setting", f"unknown secret {name!r}; known: {', '.join(NAMES)}")
        return f"secret.{name}"

    async def set(self, name: str, value: str) -> None:
        await self.settings.set_setting(self._key(name), self.box.seal(value) if value else "")

    async def get(self, name: str) -> str | None:
        stored = await self.settings.get_setting(self._key(name))
        return self.box.open(stored) if stored else None

    async def list(self) -> list[tuple[str, bool]]:
        return [(name, bool(await self.settings.get_setting(self._key(name)))) for name in NAMES]
