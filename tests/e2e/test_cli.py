"""The admin command line, run as a real program against a data directory (and a running node)."""

from __future__ import annotations

import csv
import smtplib
import time
from pathlib import Path

import pytest

from conftest import DOMAIN, dizimail_cli, start_server, write_config
from helpers import fetch_all


@pytest.fixture
def config_file(tmp_path):
    config, _ports = write_config(tmp_path / "data")
    return config


def cli(config_file, *args, check=True):
    return dizimail_cli(config_file, *args, check=check)


def test_domain_lifecycle_and_errors(config_file):
    assert "example.test" in cli(config_file, "domain", "list").stdout
    cli(config_file, "domain", "add", "Second.Example")
    assert "second.example" in cli(config_file, "domain", "list").stdout
    dup = cli(config_file, "domain", "add", "second.example", check=False)
    assert dup.returncode != 0 and "Domain already exists" in dup.stderr
    bad = cli(config_file, "domain", "add", "not a domain", check=False)
    assert bad.returncode != 0 and "Invalid domain name" in bad.stderr
    cli(config_file, "user", "add", "x@second.example", "--password", "pw")
    busy = cli(config_file, "domain", "remove", "second.example", check=False)
    assert busy.returncode != 0 and "still has users" in busy.stderr
    cli(config_file, "user", "remove", "x@second.example")
    cli(config_file, "domain", "remove", "second.example")
    assert "second.example" not in cli(config_file, "domain", "list").stdout


def test_user_commands_and_errors(config_file):
    cli(config_file, "user", "add", f"Ann@{DOMAIN}", "--password", "pw1", "--name", "Ann Li", "--quota", "1GB")
    listing = cli(config_file, "user", "list").stdout
    assert f"ann@{DOMAIN}" in listing and "Ann Li" in listing and "1.0 GiB" in listing
    dup = cli(config_file, "user", "add", f"ann@{DOMAIN}", "--password", "pw", check=False)
    assert dup.returncode != 0 and "User already exists" in dup.stderr
    unknown = cli(config_file, "user", "add", "a@nowhere.example", "--password", "pw", check=False)
    assert unknown.returncode != 0 and "Unknown domain" in unknown.stderr
    bad = cli(config_file, "user", "add", "no-at-sign", "--password", "pw", check=False)
    assert bad.returncode != 0 and "Invalid e-mail address" in bad.stderr
    cli(config_file, "user", "quota", f"ann@{DOMAIN}", "500MB")
    assert "500.0 MiB" in cli(config_file, "user", "list").stdout
    cli(config_file, "user", "suspend", f"ann@{DOMAIN}")
    assert "suspended" in cli(config_file, "user", "list").stdout
    cli(config_file, "user", "resume", f"ann@{DOMAIN}")
    dizimail_cli(config_file, "user", "passwd", f"ann@{DOMAIN}", "--password-stdin", input="new secret\n")
    missing = cli(config_file, "user", "remove", f"ghost@{DOMAIN}", check=False)
    assert missing.returncode != 0 and "Unknown user" in missing.stderr


def test_import_5000_users_with_bad_rows_then_export(config_file, tmp_path):
    rows = [f"user{n:04d}@{DOMAIN},pw-user{n:04d},100MB,User {n}" for n in range(1, 5001)]
    rows.insert(10, "broken-row-without-password")
    rows.insert(20, f"bad address@{DOMAIN},pw")
    rows.insert(30, f"user0001@{DOMAIN},dup")
    rows.insert(40, f"q@{DOMAIN},pw,lots")
    path = tmp_path / "users.csv"
    path.write_text("address,password,quota,name\n" + "\n".join(rows) + "\n", encoding="utf-8")
    started = time.monotonic()
    result = cli(config_file, "user", "import", str(path), check=False)
    elapsed = time.monotonic() - started
    print(f"imported 5000 users in {elapsed:.1f}s")
    assert result.returncode == 1
    assert "5000 users imported, 4 rows rejected" in result.stdout
    for lineno in (12, 22, 32, 42):  # 1 header line + the 0-based insert position + 1
        assert f"line {lineno}:" in result.stderr, result.stderr
    assert "User already exists" in result.stderr
    exported = cli(config_file, "user", "export").stdout
    records = list(csv.DictReader(exported.splitlines()))
    assert len(records) == 5000
    assert records[0]["address"] == f"user0001@{DOMAIN}" and records[0]["password"].startswith("$argon2id$")
    assert records[0]["quota"] == str(100 * 1024 * 1024)


def test_imported_user_logs_in_and_export_reimports(tmp_path):
    srv = start_server(tmp_path / "a")
    try:
        csv_file = tmp_path / "u.csv"
        csv_file.write_text(f"importee@{DOMAIN},imported-pw\n")
        cli(srv.config_file, "user", "import", str(csv_file))
        from helpers import pop3

        pop3(srv, f"importee@{DOMAIN}", "imported-pw").quit()
        pop3(srv, f"importee@{DOMAIN}", "imported-pw").quit()  # the upgraded hash still verifies
        exported = tmp_path / "export.csv"
        cli(srv.config_file, "user", "export", str(exported))
    finally:
        srv.stop()
    other = start_server(tmp_path / "b")
    try:
        cli(other.config_file, "user", "import", str(exported))
        from helpers import pop3

        pop3(other, f"importee@{DOMAIN}", "imported-pw").quit()
    finally:
        other.stop()


def test_admin_changes_apply_to_a_running_server(server):
    cli(server.config_file, "user", "add", f"live@{DOMAIN}", "--password", "pw")
    cli(server.config_file, "alias", "add", f"sales@{DOMAIN}", f"live@{DOMAIN}")
    assert f"sales@{DOMAIN}" in cli(server.config_file, "alias", "list").stdout
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        assert s.sendmail("a@outside.example", [f"sales@{DOMAIN}"], b"Subject: s\r\n\r\nx\r\n") == {}
    assert len(fetch_all(server, f"live@{DOMAIN}", "pw")) == 1
    cli(server.config_file, "alias", "remove", f"sales@{DOMAIN}")
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        s.ehlo("x")
        s.mail("a@outside.example")
        assert s.rcpt(f"sales@{DOMAIN}")[0] == 550
    listing = cli(server.config_file, "user", "list").stdout
    assert f"live@{DOMAIN}" in listing


def test_missing_config_is_a_clear_error(tmp_path):
    result = dizimail_cli(tmp_path / "nope.toml", "user", "list", check=False)
    assert result.returncode == 2 and "cannot read config" in result.stderr


def test_upgrade_reports_the_schema_revision(config_file):
    versions = Path(__file__).resolve().parents[2] / "src/dizimail/storage/sqlite/migrations/versions"
    latest = max(p.name.split("_")[0] for p in versions.glob("0*.py"))
    assert f"database schema at revision {latest}" in cli(config_file, "upgrade").stdout
