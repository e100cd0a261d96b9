"""Load and check the TOML config."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path

from pydantic import ValidationError

from dizimail.config.schema import Config


class ConfigError(Exception):
    pass


def load_config(path: Path | str) -> Config:
    """Read ``path``; relative ``data_dir`` is taken relative to the file's directory."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    server = raw.setdefault("server", {})
    data_dir = Path(server.get("data_dir", "."))
    server["data_dir"] = str(data_dir if data_dir.is_absolute() else (path.parent / data_dir).resolve())
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid config {path}:\n{exc}") from exc
    check_secure(config)
    return config


def check_secure(config: Config) -> None:
    """Refuse an open relay unless explicitly allowed (CONVENTIONS habit 11)."""
    for net in config.smtp.trusted_networks:
        try:
            network = ipaddress.ip_network(net, strict=False)
        except ValueError as exc:
            raise ConfigError(f"smtp.trusted_networks: {net!r} is not a network") from exc
        if network.prefixlen == 0 and not config.smtp.allow_open_relay:
            raise ConfigError(f"smtp.trusted_networks contains {net}: that is an open relay; "
                              "set smtp.allow_open_relay = true if you really mean it")


def default_config_path() -> Path:
    return Path(os.environ.get("DIZIMAIL_CONFIG", "var/dizimail.toml"))
