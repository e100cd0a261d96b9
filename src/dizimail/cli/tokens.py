"""``dizimail token``: API tokens for the REST API (issue #11): create (the secret is printed once, on
the last line), list, revoke."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from dizimail.cli.common import ConfigOpt, app, cli_actor, console, fail, run
from dizimail.cli.output import JsonOpt, err_console, print_json, print_table
from dizimail.model.tokens import ApiToken, Role
from dizimail.util.units import parse_duration

token_app = typer.Typer(help="API tokens for the REST API (https listener, /api/v1).", no_args_is_help=True)
app.add_typer(token_app, name="token")


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M") if t else "never"


def _state(token: ApiToken) -> str:
    if token.revoked:
        return "revoked"
    return "expired" if not token.live(datetime.now(UTC).timestamp()) else "active"


@token_app.command("create")
def create(role: Annotated[Role, typer.Option("--role", help="admin, domain-admin or user")],
           domain: Annotated[list[str] | None, typer.Option("--domain", help="a domain admin's domain (repeat)")] = None,
           user: Annotated[str, typer.Option("--user", help="a user token's account")] = "",
           expires: Annotated[str, typer.Option("--expires", help="lifetime, e.g. 90d, 12h; 0: until revoked")] = "90d",
           label: Annotated[str, typer.Option("--label", help="what it is for (shown by list)")] = "",
           config: ConfigOpt = None) -> None:
    """Create a token and print it on the last line (shown once: only its hash is kept)."""
    try:
        lifetime = parse_duration(expires)
    except ValueError as exc:
        fail(str(exc), 2)
    token, secret = run(config, lambda s: s.admin.create_token(cli_actor(), role, domains=domain or [], user=user,
                                                               label=label, lifetime=lifetime))
    err_console.print(f"token {token.id} ({token.role}) created, expires {_when(token.expires)}; "
                      "shown once, keep it secret:")
    console.print(secret)


@token_app.command("list")
def list_(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """List tokens (never their secrets)."""
    tokens = run(config, lambda s: s.tokens.list())
    if as_json:
        print_json([{"id": t.id, "role": str(t.role), "user": t.subject, "domains": list(t.domains), "label": t.label,
                     "created": t.created, "expires": t.expires or None, "state": _state(t)} for t in tokens])
        return
    print_table(("id", "role", "user / domains", "label", "created", "expires", "state"),
                [(str(t.id), str(t.role), t.subject or ", ".join(t.domains), t.label, _when(t.created), _when(t.expires),
                  _state(t)) for t in tokens])


@token_app.command("revoke")
def revoke(token_id: Annotated[int, typer.Argument(help="the token's id (token list)")], config: ConfigOpt = None) -> None:
    """Revoke a token: refused from the next request on."""
    run(config, lambda s: s.admin.revoke_token(cli_actor(), token_id))
    console.print(f"token {token_id} revoked")
