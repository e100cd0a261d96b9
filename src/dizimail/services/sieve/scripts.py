"""Users' Sieve scripts: stored, listed, activated (RFC 5804's operations, for ManageSieve, the CLI and
the web), each compiled when stored so that a script that cannot run is refused with its line and column
and never met while mail waits; and the compiled active scripts local delivery runs, kept per node and
compiled again when a script's version changes (another node, or this one, stored it)."""

from __future__ import annotations

import asyncio
import builtins
import functools
import hashlib
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from dizimail.interfaces.sieve import SieveStore
from dizimail.model.errors import Conflict, InvalidInput, MailError, NotFound
from dizimail.model.sieve import ActiveScript, ScriptInfo
from dizimail.services.sieve.compile import MAX_SCRIPT, CompileError, Script, compile_script
from dizimail.services.sieve.rules import USER_SCRIPT, MailRules, generate

MAX_SCRIPTS = 16  # scripts an account may keep
MAX_NAME = 128  # characters of a script's name
CACHE = 20_000  # compiled scripts a node keeps
T = TypeVar("T")


@dataclass(frozen=True)
class Program:
    """What runs on an account's mail: the script (the generated one of its settings, or its own active
    one) and the scripts it may include, by name."""

    script: Script
    library: dict[str, Script]


class ScriptRefused(InvalidInput):
    """A script that does not compile: ``error`` says where and why."""

    def __init__(self, error: CompileError) -> None:
        super().__init__("sieve_invalid", str(error))
        self.error = error


class ScriptQuota(MailError):
    """Storing would pass a limit; ``which`` is RFC 5804 §1.3's QUOTA/MAXSCRIPTS or QUOTA/MAXSIZE."""

    def __init__(self, which: str, detail: str) -> None:
        super().__init__(False, 552, "5.2.2", "sieve_quota", detail)
        self.which = which


def check_name(name: str) -> str:
    """RFC 5804 §1.6: a name is UTF-8 without control characters, line or paragraph separators; ours
    also have a length limit and are stored in NFC so that one name is one script."""
    name = unicodedata.normalize("NFC", name)
    if not name or len(name) > MAX_NAME or any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in name):
        raise InvalidInput("sieve_bad_name", f"unusable script name {name[:MAX_NAME]!r}")
    return name


@functools.lru_cache(maxsize=4096)
def _generated(stored: str, include_user: bool) -> str:
    """The script of stored settings (the same settings make the same text: generated once)."""
    return generate(MailRules.from_json(stored), include_user)


class SieveScripts:
    def __init__(self, store: SieveStore) -> None:
        self.store = store
        self._compiled: OrderedDict[int, tuple[int, Script]] = OrderedDict()  # script id → (version, script)
        self._by_text: OrderedDict[str, Script] = OrderedDict()  # included scripts, by their text's SHA-256
        # Compiling and running scripts is pure Python: it holds the GIL. One thread of its own does all of
        # it, so that at most one such thread competes with the event loop for the GIL (with several, the
        # loop lost the GIL to them in turn and a greeting waited 130 ms; the GIL serialises them anyway).
        self._lane: ThreadPoolExecutor | None = None

    def close(self) -> None:
        """The node stops: the scripts' thread ends once idle."""
        if self._lane is not None:
            self._lane.shutdown(wait=False)
            self._lane = None

    async def off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the scripts' own worker thread."""
        if self._lane is None:
            self._lane = ThreadPoolExecutor(1, thread_name_prefix="sieve")
        return await asyncio.get_running_loop().run_in_executor(self._lane, fn, *args)

    @staticmethod
    def check(text: str) -> Script:
        """The compiled script; raises ScriptRefused (CHECKSCRIPT, RFC 5804 §2.12)."""
        try:
            return compile_script(text)
        except CompileError as exc:
            raise ScriptRefused(exc) from None

    async def verify(self, text: str) -> None:
        """CHECKSCRIPT off the event loop; raises ScriptRefused."""
        await self.off_loop(self.check, text)

    async def list(self, account_id: int) -> list[ScriptInfo]:
        return await self.store.list_scripts(account_id)

    async def get(self, account_id: int, name: str) -> str:
        text = await self.store.get_script(account_id, check_name(name))
        if text is None:
            raise NotFound("sieve_no_script", name)
        return text

    async def room(self, account_id: int, name: str, size: int) -> None:
        """Raises ScriptQuota when a script of ``size`` octets named ``name`` could not be stored
        (HAVESPACE, RFC 5804 §2.5)."""
        if size > MAX_SCRIPT:
            raise ScriptQuota("QUOTA/MAXSIZE", f"a script is at most {MAX_SCRIPT} octets, not {size}")
        scripts = await self.store.list_scripts(account_id)
        if len(scripts) >= MAX_SCRIPTS and all(s.name != name for s in scripts):
            raise ScriptQuota("QUOTA/MAXSCRIPTS", f"an account keeps at most {MAX_SCRIPTS} scripts")

    async def put(self, account_id: int, name: str, text: str, *, activate: bool = False) -> Script:
        """Compile and store (PUTSCRIPT, RFC 5804 §2.6); replaces a script of the same name."""
        name = check_name(name)
        await self.room(account_id, name, len(text.encode()))
        script = await self.off_loop(self.check, text)  # a 64 KiB script is parsed off the event loop
        await self.store.put_script(account_id, name, text)
        if activate:
            await self.store.activate(account_id, name)
        return script

    async def activate(self, account_id: int, name: str | None) -> None:
        """SETACTIVE (RFC 5804 §2.8); None or "" deactivates every script."""
        if name and not await self.store.activate(account_id, check_name(name)):
            raise NotFound("sieve_no_script", name)
        if not name:
            await self.store.activate(account_id, None)

    async def delete(self, account_id: int, name: str) -> None:
        """DELETESCRIPT (RFC 5804 §2.10): the active script cannot be deleted."""
        name = check_name(name)
        info = next((s for s in await self.store.list_scripts(account_id) if s.name == name), None)
        if info is None:
            raise NotFound("sieve_no_script", name)
        if info.active:
            raise Conflict("sieve_active", name)
        await self.store.delete_script(account_id, name)

    async def rename(self, account_id: int, old: str, new: str) -> None:
        """RENAMESCRIPT (RFC 5804 §2.11.1)."""
        old, new = check_name(old), check_name(new)
        names = {s.name for s in await self.store.list_scripts(account_id)}
        if old not in names:
            raise NotFound("sieve_no_script", old)
        if new in names:
            raise Conflict("sieve_exists", new)
        await self.store.rename_script(account_id, old, new)

    async def active(self, account_ids: builtins.list[int],
                     found: dict[int, ActiveScript] | None = None) -> dict[int, Script]:
        """The compiled active script of each account that has one (local delivery). A stored script that
        no longer compiles (a limit lowered since) is left out: its mail is kept in INBOX."""
        if found is None:
            found = await self.store.active_scripts(account_ids)
        out: dict[int, Script] = {}
        for account_id, ref in found.items():
            cached = self._compiled.get(ref.script_id)
            if cached is not None and cached[0] == ref.version:
                self._compiled.move_to_end(ref.script_id)
                out[account_id] = cached[1]
                continue
            text = await self.store.script_text(ref.script_id)
            if text is None:
                continue
            try:
                script = await self.off_loop(compile_script, text)
            except CompileError:
                continue
            self._compiled[ref.script_id] = (ref.version, script)
            if len(self._compiled) > CACHE:
                self._compiled.popitem(last=False)
            out[account_id] = script
        return out

    async def remember(self, account_id: int, key: str, period: int, *, refresh: bool = False) -> bool:
        """Whether ``key`` was remembered within its period (a vacation reply sent, a duplicate seen); it is
        remembered for ``period`` seconds from now if not (or, with ``refresh``, in any case)."""
        now = time.time()
        return await self.store.remember(account_id, key, now + period, now, refresh)

    async def library(self, account_id: int, script: Script) -> dict[str, Script]:
        """The user's scripts ``script`` includes, and those they include, compiled, by name (RFC 6609);
        one missing or no longer compiling is left out (the include fails when it runs)."""
        out: dict[str, Script] = {}
        todo = sorted(script.includes)
        while todo and len(out) < MAX_SCRIPTS:
            name = todo.pop()
            if name in out:
                continue
            text = await self.store.get_script(account_id, name)
            if text is None:
                continue
            compiled = await self._compiled_text(text)
            if compiled is None:
                continue
            out[name] = compiled
            todo += sorted(compiled.includes - out.keys())
        return out

    # --- the settings that generate a script (services.sieve.rules) ---------------------------------------
    async def rules(self, account_id: int) -> MailRules:
        stored = await self.store.get_rules(account_id)
        return MailRules() if stored is None else MailRules.from_json(stored)

    async def set_rules(self, account_id: int, rules: MailRules) -> None:
        """Store the settings (checked: their script must compile); empty ones are removed."""
        if rules.empty:
            await self.store.put_rules(account_id, None)
            return
        await self.off_loop(self.check, generate(rules, True))
        await self.store.put_rules(account_id, rules.to_json())

    async def _compiled_text(self, text: str) -> Script | None:
        digest = hashlib.sha256(text.encode()).hexdigest()
        compiled = self._by_text.get(digest)
        if compiled is None:
            try:
                compiled = await self.off_loop(compile_script, text)
            except CompileError:
                return None
            self._by_text[digest] = compiled
            if len(self._by_text) > CACHE:
                self._by_text.popitem(last=False)
        return compiled

    async def programs(self, account_ids: builtins.list[int]) -> dict[int, Program]:
        """What runs at delivery for each of the accounts that has an active script or settings."""
        refs, settings = await self.store.delivery_state(account_ids)
        if not refs and not settings:
            return {}
        own = await self.active(account_ids, refs)
        out: dict[int, Program] = {}
        for account_id in account_ids:
            script = own.get(account_id)
            library = await self.library(account_id, script) if script is not None and script.includes else {}
            stored = settings.get(account_id)
            if stored is not None:
                generated = await self._compiled_text(_generated(stored, script is not None))
                if generated is not None:
                    if script is not None:
                        library[USER_SCRIPT] = script
                    script = generated
            if script is not None:
                out[account_id] = Program(script, library)
        return out
