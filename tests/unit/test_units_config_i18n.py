"""Config parsing, units and the bilingual catalogue."""

from __future__ import annotations

import pytest

from dizimail.config.loader import ConfigError, load_config
from dizimail.i18n import CATALOG
from dizimail.util.units import format_size, parse_duration, parse_size


@pytest.mark.parametrize(("text", "expected"), [("25MB", 25 * 1024**2), ("512KB", 512 * 1024), ("1G", 1024**3),
                                                ("100", 100), (7, 7), ("1.5 MiB", int(1.5 * 1024**2))])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "MB", "-1", "1XB", "ten"])
def test_parse_size_rejects_garbage(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


def test_units_parse_blanks_in_linear_time():
    """Blanks around the value are allowed; a long run of them before something else is refused after
    one look (the old ``\\s*…\\s*$`` split the run in every way: 20,000 blanks took 2 s, these days)."""
    assert parse_size(" 25 MB ") == 25 * 1024**2 and parse_duration("\t5m\n") == 300
    for parse in (parse_size, parse_duration):
        with pytest.raises(ValueError):
            parse("1" + " " * 1_000_000 + "x1")


@pytest.mark.parametrize(("text", "expected"), [("30s", 30), ("5m", 300), ("2h", 7200), ("500ms", 0.5),
                                                ("1d", 86400), (10, 10.0)])
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


def test_format_size():
    assert format_size(512) == "512 B"
    assert format_size(1536) == "1.5 KiB"
    assert format_size(3 * 1024**3) == "3.0 GiB"


def test_every_message_exists_in_chinese_and_english():
    for key, texts in CATALOG.items():
        assert texts.get("en") and texts.get("zh_CN"), key
        assert texts["en"] != texts["zh_CN"], key


def test_config_units_and_relative_data_dir(tmp_path):
    (tmp_path / "c.toml").write_text('[server]\ndata_dir = "data"\n[limits]\nmax_message_size = "10MB"\n'
                                     'command_timeout = "2m"\n')
    config = load_config(tmp_path / "c.toml")
    assert config.limits.max_message_size == 10 * 1024**2
    assert config.limits.command_timeout == 120
    assert config.server.data_dir == (tmp_path / "data").resolve()
    assert config.path(config.storage.database) == (tmp_path / "data" / "dizimail.db").resolve()


def test_config_refuses_open_relay_unless_explicit(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[smtp]\ntrusted_networks = ["0.0.0.0/0"]\n')
    with pytest.raises(ConfigError, match="open relay"):
        load_config(path)
    path.write_text('[smtp]\ntrusted_networks = ["0.0.0.0/0"]\nallow_open_relay = true\n')
    assert load_config(path).smtp.allow_open_relay


def test_config_rejects_unknown_keys_and_bad_values(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[limits]\nmax_recipients_typo = 5\n")
    with pytest.raises(ConfigError, match="max_recipients_typo"):
        load_config(path)
    path.write_text('[limits]\nmax_message_size = "lots"\n')
    with pytest.raises(ConfigError, match="max_message_size"):
        load_config(path)
