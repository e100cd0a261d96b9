"""The REST resources of users' Sieve scripts (issue #12): the same operations as ManageSieve and
``dizimail sieve``, on ``services.sieve.scripts``; changes go to the audit log through ``services.admin``.
A user reaches its own scripts; an admin every user's, a domain admin its domains' users'."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from dizimail.model.types import Account
from dizimail.services.admin import AdminActions
from dizimail.services.sieve.compile import MAX_SCRIPT
from dizimail.services.sieve.rules import checked
from dizimail.services.sieve.scripts import MAX_NAME, ScriptRefused, SieveScripts, check_name
from dizimail.web.documents import Strict

PREFIX = "/api/v1"


class SieveScriptOut(Strict):
    name: str
    active: bool
    size: int
    updated: float


class SieveScriptText(Strict):
    name: str
    script: str


class SieveScriptIn(Strict):
    script: str = Field(max_length=MAX_SCRIPT)
    active: bool = False


class SieveCheckIn(Strict):
    script: str = Field(max_length=MAX_SCRIPT)


class SieveChecked(Strict):
    valid: bool
    error: str | None = None
    line: int | None = None
    column: int | None = None


class SieveActiveIn(Strict):
    name: str | None = Field(None, max_length=MAX_NAME)


class SieveRenameIn(Strict):
    name: str = Field(min_length=1, max_length=MAX_NAME)


def _refused(exc: ScriptRefused) -> JSONResponse:
    return JSONResponse(SieveChecked(valid=False, error=exc.error.reason, line=exc.error.line or None,
                                     column=exc.error.column or None).model_dump(), status_code=422)


def sieve_routes(app: FastAPI, scripts: SieveScripts, admin: AdminActions, principal: Callable[..., Any],
                 visible_user: Callable[[Any, str], str], account_of: Callable[[str], Any]) -> None:
    """``principal``: who asks (the API's token dependency); ``visible_user``: the address as stored if the
    caller reaches it (404 otherwise); ``account_of``: the account of an address."""
    asking = Depends(principal)

    async def change(who: Any, action: str, address: str, name: str, fn: Callable[[Account], Any]) -> None:
        async def run(account: Account) -> None:
            await fn(account)
        await admin.change_sieve(who.actor, action, visible_user(who, address), name, run)

    @app.get(f"{PREFIX}/users/{{address}}/sieve", response_model=list[SieveScriptOut], tags=["sieve"])
    async def list_scripts(address: str, who: Any = asking) -> list[SieveScriptOut]:
        """The user's Sieve scripts; the active one runs on its mail."""
        account = await account_of(visible_user(who, address))
        return [SieveScriptOut(name=s.name, active=s.active, size=s.size, updated=s.updated)
                for s in await scripts.list(account.id)]

    @app.get(f"{PREFIX}/users/{{address}}/sieve/{{name}}", response_model=SieveScriptText, tags=["sieve"])
    async def get_script(address: str, name: str, who: Any = asking) -> SieveScriptText:
        account = await account_of(visible_user(who, address))
        return SieveScriptText(name=name, script=await scripts.get(account.id, name))

    @app.put(f"{PREFIX}/users/{{address}}/sieve/{{name}}", response_model=SieveScriptOut, tags=["sieve"],
             responses={422: {"model": SieveChecked, "description": "The script does not compile: where and why"}})
    async def put_script(address: str, name: str, body: SieveScriptIn, who: Any = asking) -> Any:
        """Store a script (checked first; replaces one of the same name), and make it active if asked."""
        try:
            await change(who, "sieve.put", address, name,
                         lambda a: scripts.put(a.id, name, body.script, activate=body.active))
        except ScriptRefused as exc:
            return _refused(exc)
        account = await account_of(visible_user(who, address))
        stored = check_name(name)
        info = next(s for s in await scripts.list(account.id) if s.name == stored)
        return SieveScriptOut(name=info.name, active=info.active, size=info.size, updated=info.updated)

    @app.delete(f"{PREFIX}/users/{{address}}/sieve/{{name}}", status_code=204, tags=["sieve"])
    async def delete_script(address: str, name: str, who: Any = asking) -> Response:
        """Delete a script (not the active one: 409)."""
        await change(who, "sieve.delete", address, name, lambda a: scripts.delete(a.id, name))
        return Response(status_code=204)

    @app.post(f"{PREFIX}/users/{{address}}/sieve/{{name}}/rename", status_code=204, tags=["sieve"])
    async def rename_script(address: str, name: str, body: SieveRenameIn, who: Any = asking) -> Response:
        await change(who, "sieve.rename", address, f"{name} -> {body.name}",
                     lambda a: scripts.rename(a.id, name, body.name))
        return Response(status_code=204)

    @app.put(f"{PREFIX}/users/{{address}}/sieve-active", status_code=204, tags=["sieve"])
    async def activate(address: str, body: SieveActiveIn, who: Any = asking) -> Response:
        """Make a script the active one (``name``: null turns the user's rules off)."""
        await change(who, "sieve.activate", address, body.name or "", lambda a: scripts.activate(a.id, body.name))
        return Response(status_code=204)

    @app.get(f"{PREFIX}/users/{{address}}/rules", tags=["sieve"],
             responses={200: {"description": "vacation, forwarding, filters (docs/sieve.md)"}})
    async def get_rules(address: str, who: Any = asking) -> Any:
        """What the user set without writing Sieve: vacation, forwarding, filters."""
        account = await account_of(visible_user(who, address))
        return json.loads((await scripts.rules(account.id)).to_json())

    @app.put(f"{PREFIX}/users/{{address}}/rules", tags=["sieve"],
             responses={200: {"description": "the settings as stored"}})
    async def put_rules(address: str, body: dict[str, Any], who: Any = asking) -> Any:
        """Replace the settings (``{}`` clears them); they run before the user's own script."""
        chosen = checked(body)
        await change(who, "sieve.rules", address, "rules", lambda a: scripts.set_rules(a.id, chosen))
        account = await account_of(visible_user(who, address))
        return json.loads((await scripts.rules(account.id)).to_json())

    @app.post(f"{PREFIX}/sieve/check", response_model=SieveChecked, tags=["sieve"],
              responses={422: {"model": SieveChecked, "description": "The script does not compile: where and why"}})
    async def check(body: SieveCheckIn, who: Any = asking) -> Any:
        """Check a script without storing it."""
        try:
            await scripts.verify(body.script)
        except ScriptRefused as exc:
            return _refused(exc)
        return SieveChecked(valid=True)
