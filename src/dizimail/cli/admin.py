"""``dizimail domain|user|alias|registration``: accounts administration."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer
from rich.progress import Progress

from dizimail.app.build import Services
from dizimail.cli.common import ConfigOpt, EncodingOpt, app, cli_actor, console, err_console, fail, read_import, run
from dizimail.cli.output import JsonOpt, print_json, print_table
from dizimail.services.accounts import normalize_address
from dizimail.services.usercsv import export_users_csv
from dizimail.util.units import format_size, parse_size

domain_app = typer.Typer(help="Manage mail domains.", no_args_is_help=True)
user_app = typer.Typer(help="Manage users (mailboxes).", no_args_is_help=True)
alias_app = typer.Typer(help="Manage aliases.", no_args_is_help=True)
app.add_typer(domain_app, name="domain")
app.add_typer(user_app, name="user")
app.add_typer(alias_app, name="alias")



def quota_arg(text: str | None) -> int:
    if not text or text.strip() in ("0", "unlimited"):
        return 0
    try:
        return parse_size(text.strip())
    except ValueError as exc:
        fail(str(exc), 2)
        raise


# --- domains -----------------------------------------------------------------
@domain_app.command("add")
def domain_add(name: str, alias_of: Annotated[str | None, typer.Option(
        "--alias-of", help="make NAME a domain alias: its addresses map onto this domain's")] = None,
               config: ConfigOpt = None) -> None:
    """Add a local domain (or a domain alias)."""
    domain = run(config, lambda s: s.admin.add_domain(cli_actor(), name, alias_of))  # as stored: 电力.cn for xn--tfr181f.cn
    console.print(f"domain {domain.name} added" + (f" as an alias of {domain.alias_of}" if domain.alias_of else ""))


@domain_app.command("list")
def domain_list(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """List domains."""
    domains = run(config, lambda s: s.accounts.list_domains())
    if as_json:
        print_json([{"domain": d.name, "status": d.status, "alias_of": d.alias_of} for d in domains])
        return
    print_table(("domain", "status", "alias of"), [(d.name, d.status, d.alias_of or "") for d in domains])


@domain_app.command("remove")
def domain_remove(name: str, config: ConfigOpt = None) -> None:
    """Remove a domain that has no users or aliases left."""
    run(config, lambda s: s.admin.remove_domain(cli_actor(), name))
    console.print(f"domain {name} removed")


@domain_app.command("settings")
def domain_settings(name: str,
                    display_name: Annotated[str | None, typer.Option("--name", help="shown on the login page")] = None,
                    quota: Annotated[str | None, typer.Option("--quota", help="storage for all its mailboxes, e.g. "
                                                              "500GB; 0 = no limit")] = None,
                    max_users: Annotated[int | None, typer.Option("--max-users", help="0 = no limit")] = None,
                    registration: Annotated[bool | None, typer.Option(
                        "--self-registration/--no-self-registration",
                        help="people may ask for a mailbox on the login page (an admin approves each)")] = None,
                    logo: Annotated[Path | None, typer.Option("--logo", help="PNG/JPEG/GIF/WebP for the login page")] = None,
                    no_logo: Annotated[bool, typer.Option("--no-logo", help="remove the logo")] = False,
                    as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Show a domain's settings, or change those given: name and logo on the login page, limits,
    self-registration."""
    size = quota_arg(quota) if quota is not None else None
    image = logo.read_bytes() if logo is not None else None

    async def act(s: Services) -> Any:
        changes = {k: v for k, v in (("display_name", display_name), ("quota_bytes", size), ("max_users", max_users),
                                     ("self_registration", registration)) if v is not None}
        if changes:
            await s.admin.change_domain(cli_actor(), name, **changes)
        if image is not None or no_logo:
            await s.admin.set_logo(cli_actor(), name, image)
        return await s.profiles.profile(name)
    profile = run(config, act)
    if as_json:
        print_json([{"domain": profile.domain, "display_name": profile.display_name, "logo": bool(profile.logo_type),
                     "quota_bytes": profile.quota_bytes, "max_users": profile.max_users,
                     "self_registration": profile.self_registration}])
        return
    print_table(("domain", "name", "logo", "storage", "max users", "self-registration"),
                [(profile.domain, profile.display_name, profile.logo_type or "-",
                  format_size(profile.quota_bytes) if profile.quota_bytes else "no limit",
                  str(profile.max_users or "no limit"), "on" if profile.self_registration else "off")])


@domain_app.command("suspend")
def domain_suspend(name: str, config: ConfigOpt = None) -> None:
    """Stop a domain receiving mail and its users logging in."""
    run(config, lambda s: s.admin.set_domain_active(cli_actor(), name, False))
    console.print(f"domain {name} suspended")


@domain_app.command("resume")
def domain_resume(name: str, config: ConfigOpt = None) -> None:
    """Undo ``suspend``."""
    run(config, lambda s: s.admin.set_domain_active(cli_actor(), name, True))
    console.print(f"domain {name} resumed")


# --- users -------------------------------------------------------------------
def read_password(password: str | None, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if password is not None:
        return password
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


PasswordOpt = Annotated[str | None, typer.Option("--password", "-p", help="the password (else prompted)")]
StdinOpt = Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")]


@user_app.command("add")
def user_add(address: str, password: PasswordOpt = None, password_stdin: StdinOpt = False,
             name: Annotated[str, typer.Option("--name", help="display name")] = "",
             quota: Annotated[str | None, typer.Option("--quota", help="e.g. 1GB; 0 = unlimited")] = None,
             config: ConfigOpt = None) -> None:
    """Add a user with a mailbox."""
    secret = read_password(password, password_stdin)
    run(config, lambda s: s.admin.add_user(cli_actor(), address, secret, name, quota_arg(quota)))
    console.print(f"user {normalize_address(address)} added")


@user_app.command("list")
def user_list(domain: Annotated[str | None, typer.Option("--domain")] = None, as_json: JsonOpt = False,
              config: ConfigOpt = None) -> None:
    """List users with their quota and usage."""
    users = run(config, lambda s: s.accounts.list_users(domain))
    if as_json:
        print_json([{"address": u.address, "name": u.name, "status": u.status, "domain_status": u.domain_status,
                     "messages": u.message_count, "used_bytes": u.used_bytes, "quota_bytes": u.quota_bytes}
                    for u in users])
        return
    print_table(("address", "name", "status", "messages", "used", "quota", "use %"), [
        (u.address, u.name, u.status if u.domain_status == "active" else "domain suspended", str(u.message_count),
         format_size(u.used_bytes), format_size(u.quota_bytes) if u.quota_bytes else "unlimited",
         f"{100 * u.used_bytes / u.quota_bytes:.1f}" if u.quota_bytes else "-") for u in users])
    console.print(f"{len(users)} users")


@user_app.command("passwd")
def user_passwd(address: str, password: PasswordOpt = None, password_stdin: StdinOpt = False,
                config: ConfigOpt = None) -> None:
    """Change a user's password."""
    secret = read_password(password, password_stdin)
    run(config, lambda s: s.admin.set_password(cli_actor(), address, secret))
    console.print(f"password of {address} changed")


@user_app.command("remove")
def user_remove(address: str, config: ConfigOpt = None) -> None:
    """Delete a user and all their mail."""
    run(config, lambda s: s.admin.remove_user(cli_actor(), address))
    console.print(f"user {address} removed")


@user_app.command("suspend")
def user_suspend(address: str, config: ConfigOpt = None) -> None:
    """Block logins and incoming mail (550 5.2.1) for a user."""
    run(config, lambda s: s.admin.set_user_active(cli_actor(), address, False))
    console.print(f"user {address} suspended")


@user_app.command("resume")
def user_resume(address: str, config: ConfigOpt = None) -> None:
    """Undo ``suspend``."""
    run(config, lambda s: s.admin.set_user_active(cli_actor(), address, True))
    console.print(f"user {address} resumed")


@user_app.command("quota")
def user_quota(address: str, quota: Annotated[str, typer.Argument(help="e.g. 500MB, 2GB; 0 = unlimited")],
               config: ConfigOpt = None) -> None:
    """Set a user's mailbox quota."""
    size = quota_arg(quota)
    run(config, lambda s: s.admin.set_quota(cli_actor(), address, size))
    console.print(f"quota of {address} set to {format_size(size) if size else 'unlimited'}")


@user_app.command("name")
def user_name(address: str, name: Annotated[str, typer.Argument(help="the display name")], config: ConfigOpt = None) -> None:
    """Set a user's display name."""
    run(config, lambda s: s.admin.set_name(cli_actor(), address, name))
    console.print(f"name of {address} set")


@user_app.command("import")
def user_import(file: Annotated[Path, typer.Argument(help="CSV: address,password[,quota,name]")],
                encoding: EncodingOpt = "utf-8", config: ConfigOpt = None) -> None:
    """Bulk-create users from CSV; bad rows are reported with their line number, good rows imported."""
    text = read_import(file, encoding)
    actor = cli_actor()

    async def go(s: Services) -> tuple[int, list[tuple[int, str]]]:
        with Progress(console=err_console, transient=False) as progress:
            task = progress.add_task("importing users", total=None)
            return await s.admin.import_csv(actor, text, progress=lambda done, total: progress.update(
                task, completed=done, total=total))

    imported, problems = run(config, go)
    for line, why in problems:
        err_console.print(f"line {line}: {why}")
    console.print(f"{imported} users imported, {len(problems)} rows rejected")
    if problems:
        raise typer.Exit(1)


@user_app.command("export")
def user_export(file: Annotated[Path | None, typer.Argument(help="output CSV (default: stdout)")] = None,
                domain: Annotated[str | None, typer.Option("--domain")] = None, config: ConfigOpt = None) -> None:
    """Write users as CSV (address,password_hash,quota,name,status,used); re-importable. FILE is made 0600."""
    target = open_private(file) if file is not None else None  # before root (if root) becomes the service user
    users = run(config, lambda s: s.accounts.list_users(domain))
    text = export_users_csv(users)
    if target is None:
        sys.stdout.write(text)
    else:
        with target:
            target.truncate()
            target.write(text.encode("utf-8"))
        console.print(f"{len(users)} users written to {file}")


def open_private(file: Path) -> BinaryIO:
    """A file for password hashes that only its owner can read: created 0600, or an existing file of ours
    made 0600 before anything is written (another user's is refused)."""
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        fail(f"cannot write {file}: {exc.strerror}")
    if os.fstat(fd).st_uid != os.geteuid():
        os.close(fd)
        fail(f"{file} belongs to another user; not writing password hashes into it")
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "wb")


# --- aliases -----------------------------------------------------------------
@alias_app.command("add")
def alias_add(address: str, targets: Annotated[list[str], typer.Argument(help="local users or remote addresses")],
              config: ConfigOpt = None) -> None:
    """Add an alias (or more targets to an existing one)."""
    run(config, lambda s: s.admin.add_alias(cli_actor(), address, targets))
    console.print(f"alias {address} -> {', '.join(targets)}")


@alias_app.command("list")
def alias_list(domain: Annotated[str | None, typer.Option("--domain")] = None, as_json: JsonOpt = False,
               config: ConfigOpt = None) -> None:
    """List aliases and their targets."""
    aliases = run(config, lambda s: s.accounts.list_aliases(domain))
    if as_json:
        print_json([{"alias": a.address, "targets": list(a.targets)} for a in aliases])
        return
    print_table(("alias", "targets"), [(a.address, ", ".join(a.targets)) for a in aliases])


@alias_app.command("remove")
def alias_remove(address: str, config: ConfigOpt = None) -> None:
    """Remove an alias."""
    run(config, lambda s: s.admin.remove_alias(cli_actor(), address))
    console.print(f"alias {address} removed")


registration_app = typer.Typer(help="Requests for mailboxes made on the login page (domain settings "
                               "--self-registration).", no_args_is_help=True)
app.add_typer(registration_app, name="registration")


@registration_app.command("list")
def registration_list(domain: Annotated[str | None, typer.Option("--domain")] = None, as_json: JsonOpt = False,
                      config: ConfigOpt = None) -> None:
    """Requests waiting for approval."""
    pending = run(config, lambda s: s.profiles.pending(domain))
    if as_json:
        print_json([{"id": r.id, "address": r.address, "name": r.name, "created": r.created, "ip": r.ip}
                    for r in pending])
        return
    print_table(("id", "address", "name", "from"), [(str(r.id), r.address, r.name, r.ip) for r in pending])


@registration_app.command("approve")
def registration_approve(reg_id: int, config: ConfigOpt = None) -> None:
    """Make the mailbox (its password is the one the requester chose)."""
    account = run(config, lambda s: s.admin.approve(cli_actor(), reg_id))
    console.print(f"{account.address} created")


@registration_app.command("reject")
def registration_reject(reg_id: int, config: ConfigOpt = None) -> None:
    """Drop the request."""
    run(config, lambda s: s.admin.reject(cli_actor(), reg_id))
    console.print(f"request {reg_id} rejected")
