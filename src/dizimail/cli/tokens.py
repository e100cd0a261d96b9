"""``dizimail token``: API tokens for the REST API (issue #11): create (the secret is printed once, on
the last line), list, revoke. ``dizimail admin``: which accounts may log in to the admin pages
(``/admin/``), as system or domain admins, and their second factor (TOTP)."""

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
grant_app = typer.Typer(help="Accounts that may log in to the admin pages (https listener, /admin/).",
                        no_args_is_help=True)
app.add_typer(grant_app, name="admin")


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


@grant_app.command("grant")
def grant(address: Annotated[str, typer.Argument(help="an existing account")],
          role: Annotated[Role, typer.Option("--role", help="admin or domain-admin")],
          domain: Annotated[list[str] | None, typer.Option("--domain", help="a domain admin's domain (repeat)")] = None,
          config: ConfigOpt = None) -> None:
    """Let an account log in to the admin pages (with its mail password), for everything or its domains."""
    given = run(config, lambda s: s.admin.grant_admin(cli_actor(), address, role, domain or []))
    console.print(f"{given.address} may administer as {given.role}"
                  + (f" of {', '.join(given.domains)}" if given.domains else ""))


@grant_app.command("revoke")
def revoke_grant(address: Annotated[str, typer.Argument()], config: ConfigOpt = None) -> None:
    """Take the right away (its web sessions end at once)."""
    run(config, lambda s: s.admin.revoke_admin(cli_actor(), address))
    console.print(f"{address} may no longer administer")


@grant_app.command("list")
def list_grants(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Who may administer, and whether a second factor is set up."""
    grants = run(config, lambda s: s.logins.list_grants())
    if as_json:
        print_json([{"address": g.address, "role": str(g.role), "domains": list(g.domains), "totp": g.totp}
                    for g in grants])
        return
    print_table(("address", "role", "domains", "second factor"),
                [(g.address, str(g.role), ", ".join(g.domains), "totp" if g.totp else "-") for g in grants])


@grant_app.command("totp")
def totp(address: Annotated[str, typer.Argument()],
         off: Annotated[bool, typer.Option("--off", help="remove the second factor")] = False,
         config: ConfigOpt = None) -> None:
    """Set up a second factor (a new secret; the old one stops working) and print its otpauth URI for an
    authenticator app on the last line; ``--off`` removes it."""
    if off:
        run(config, lambda s: s.admin.totp_off(cli_actor(), address))
        console.print(f"{address}: second factor removed")
        return
    secret, uri = run(config, lambda s: s.admin.totp_setup(cli_actor(), address))
    err_console.print(f"{address}: enter this secret in an authenticator app ({secret}), or its URI:")
    console.print(uri, markup=False, highlight=False)
