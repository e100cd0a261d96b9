"""What every sub-command shares: the typer app, the --config option, loading the config, dropping root,
running a service call with its errors mapped to a message and an exit code."""

from __future__ import annotations

import asyncio
import os
import pwd
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer

from dizimail.app import privileges
from dizimail.app.build import Services, open_services
from dizimail.cli.output import console, err_console, error
from dizimail.config.loader import ConfigError, default_config_path, load_config
from dizimail.config.schema import Config
from dizimail.i18n import translate
from dizimail.model.audit import Actor
from dizimail.model.errors import MailError

T = TypeVar("T")
__all__ = ["ConfigOpt", "EncodingOpt", "app", "as_service_user", "console", "err_console", "fail", "load_or_fail",
           "read_import", "run"]

app = typer.Typer(help="dizimail: a complete, self-hosted mail system.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="config file (or $DIZIMAIL_CONFIG)")]


MAX_IMPORT_BYTES = 64 * 1024 * 1024  # an import file is read whole
EncodingOpt = Annotated[str, typer.Option("--encoding", help="the file's character set: utf-8 (a BOM is skipped), "
                                                            "or gb18030 / gbk for CSV saved by Excel on Chinese Windows")]


def read_import(file: Path, encoding: str, max_bytes: int = MAX_IMPORT_BYTES) -> str:
    """An import file's text; exit code 2 with the reason (and for text that is not UTF-8, what to do) if it
    cannot be read."""
    import codecs

    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        fail(f"unknown --encoding {encoding!r}", 2)
    try:
        if file.stat().st_size > max_bytes:
            fail(f"{file} is larger than {max_bytes // (1024 * 1024)} MB", 2)
        return file.read_text(encoding="utf-8-sig" if codec == "utf-8" else codec)
    except UnicodeDecodeError as exc:
        hint = " (not UTF-8: if Excel saved it, try --encoding gb18030)" if codec == "utf-8" else ""
        fail(f"cannot read {file} as {codec}: byte {exc.start}{hint}", 2)
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}", 2)


def fail(message: str, code: int = 1) -> NoReturn:
    error(message)
    raise typer.Exit(code)


def load_or_fail(config_path: Path | None) -> Config:
    """The config named by ``--config`` (or the default); exit code 2 with the reason if it is bad."""
    try:
        return load_config(config_path or default_config_path())
    except ConfigError as exc:
        fail(str(exc), 2)


def cli_actor() -> Actor:
    """Who acts from the command line, for the audit log: the Unix user (whoever ran sudo, if they did)."""
    name = os.environ.get("SUDO_USER")
    if not name:
        try:
            name = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:  # a uid without a name
            name = str(os.getuid())
    return Actor(f"cli:{name}")


def as_service_user(config: Config, config_path: Path | None) -> None:
    """Started as root with ``server.run_as``: check the data directory, hand it over, drop root for good
    (app.privileges) before anything opens the database; exit with the reason if the setup is unsafe."""
    try:
        privileges.enter(config, Path(os.path.abspath(config_path or default_config_path())))
    except privileges.UnsafeDataDir as exc:
        fail(str(exc))


def run(config_path: Path | None, fn: Callable[[Services], Awaitable[T]]) -> T:
    """Open the services named by the config (as the service user), run ``fn``, map errors to a message
    and exit code."""
    config = load_or_fail(config_path)
    as_service_user(config, config_path)

    async def main() -> T:
        async with open_services(config) as services:
            return await fn(services)
    try:
        return asyncio.run(main())
    except MailError as exc:
        detail = f" ({exc.detail})" if exc.detail else ""
        fail(f"{translate(exc.public_key)}{detail}")
        raise AssertionError("unreachable") from exc
