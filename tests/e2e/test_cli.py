"""The admin command line, run as a real program against a data directory (and a running node)."""

from __future__ import annotations

import csv
import json
import os
import smtplib
import subprocess
import time
from pathlib import Path

import pytest

from conftest import DIZIMAIL, DOMAIN, dizimail_cli, start_server, write_config
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


def test_import_files_saved_by_chinese_excel(config_file, tmp_path):
    """Excel on Chinese Windows saves CSV in GBK (or UTF-8 with a BOM): --encoding reads the first, the BOM
    is skipped, and a GBK file read as UTF-8 is refused with the way out, not imported as mojibake."""
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(f"address,password,quota,name\nli4@{DOMAIN},pw-li4-secret,,李四\n".encode("gbk"))
    refused = cli(config_file, "user", "import", str(gbk), check=False)
    assert refused.returncode == 2 and "--encoding gb18030" in refused.stderr, refused.stderr
    assert "1 users imported" in cli(config_file, "user", "import", str(gbk), "--encoding", "gbk").stdout
    bom = tmp_path / "bom.csv"
    bom.write_bytes(f"address,password,quota,name\nwang5@{DOMAIN},pw-wang5-secret,,王五\n".encode("utf-8-sig"))
    assert "1 users imported" in cli(config_file, "user", "import", str(bom)).stdout
    names = {r["address"]: r["name"] for r in csv.DictReader(cli(config_file, "user", "export").stdout.splitlines())}
    assert (names[f"li4@{DOMAIN}"], names[f"wang5@{DOMAIN}"]) == ("李四", "王五")
    blocks = tmp_path / "blocks.txt"
    blocks.write_bytes("@spam.example 广告\n".encode("gb18030"))
    assert "1 added" in cli(config_file, "block", "import", str(blocks), "--encoding", "gb18030").stdout
    assert "广告" in cli(config_file, "block", "list").stdout
    assert cli(config_file, "user", "import", str(gbk), "--encoding", "klingon", check=False).returncode == 2


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


# --- output: hostile mail data, pipes, --json ------------------------------------------------------------------
HOSTILE_SENDER = '"[/x]"@evil.test'
HOSTILE_RCPT = '"[bold]forged[/bold]"@far-away.example'
LONG_RCPT = "a-very-long-recipient-address-that-a-narrow-table-would-cut." + "x" * 40 + "@far-away.example"


@pytest.fixture(scope="module")
def relaying_node(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("relay"), extra='\n[smtp]\ntrusted_networks = ["127.0.0.1/32"]\n')
    yield srv
    srv.stop()


def queue_hostile_message(node) -> None:
    with smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=30) as s:
        s.ehlo("x")
        assert s.mail(HOSTILE_SENDER)[0] == 250
        assert s.rcpt(LONG_RCPT)[0] == 250
        assert s.rcpt(HOSTILE_RCPT)[0] == 250
        assert s.data(b"Subject: x\r\n\r\nx\r\n")[0] == 250


def test_queue_list_prints_hostile_mail_data_verbatim_and_never_cuts_addresses(relaying_node):
    queue_hostile_message(relaying_node)
    result = cli(relaying_node.config_file, "queue", "list")
    assert f"<{HOSTILE_SENDER}>" in result.stdout, result.stdout + result.stderr
    assert HOSTILE_RCPT in result.stdout
    assert LONG_RCPT in result.stdout  # one line: not folded, not cut with "…", whatever the width


def test_queue_list_json_is_one_document_with_stable_keys(relaying_node):
    queue_hostile_message(relaying_node)
    entries = json.loads(cli(relaying_node.config_file, "queue", "list", "--json").stdout)
    entry = next(e for e in entries if e["sender"] == HOSTILE_SENDER)
    assert set(entry) == {"queue_id", "created", "size", "sender", "held", "recipients"}
    assert {r["address"] for r in entry["recipients"]} >= {LONG_RCPT, HOSTILE_RCPT}
    assert set(entry["recipients"][0]) == {"address", "status", "attempts", "next_attempt", "last_error"}
    shown = cli(relaying_node.config_file, "queue", "show", entry["queue_id"]).stdout
    assert f"<{HOSTILE_SENDER}>" in shown


def test_every_list_command_takes_json(config_file):
    cli(config_file, "user", "add", f"ann@{DOMAIN}", "--password", "pw", "--name", "[red]Ann[/red] :smile:")
    cli(config_file, "alias", "add", f"sales@{DOMAIN}", f"ann@{DOMAIN}")
    cli(config_file, "route", "add", "corp.test", "10.0.0.2:2525")
    cli(config_file, "relay", "allow", "10.1.0.0/16")
    cli(config_file, "fetch", "add", "pop.example.test:995", "remote-user", "--password", "fetch-secret",
        "--to", f"ann@{DOMAIN}")

    def listed(*command):
        return json.loads(cli(config_file, *command, "list", "--json").stdout)

    assert listed("domain") == [{"domain": DOMAIN, "status": "active", "alias_of": None}]
    [user] = listed("user")
    assert user == {"address": f"ann@{DOMAIN}", "name": "[red]Ann[/red] :smile:", "status": "active",
                    "domain_status": "active", "messages": 0, "used_bytes": 0, "quota_bytes": 0}
    assert listed("alias") == [{"alias": f"sales@{DOMAIN}", "targets": [f"ann@{DOMAIN}"]}]
    assert listed("route") == [{"domain": "corp.test", "kind": "smtp", "host": "10.0.0.2", "port": 2525}]
    assert listed("relay") == [{"network": "10.1.0.0/16", "source": "relay allow"}]
    [fetch] = listed("fetch")
    assert fetch["host"] == "pop.example.test" and fetch["into"] == f"ann@{DOMAIN}" and "password" not in fetch
    assert listed("queue") == []
    assert "[red]Ann[/red] :smile:" in cli(config_file, "user", "list").stdout  # no markup, no emoji


def test_tables_are_never_cut_when_output_is_not_a_terminal(config_file):
    address = "someone-with-a-long-name." + "y" * 30 + f"@{DOMAIN}"
    cli(config_file, "user", "add", address, "--password", "pw", "--name", "A Display Name That Is Long Too")
    narrow = dict(os.environ, COLUMNS="40", NO_COLOR="1")
    out = subprocess.run([DIZIMAIL, "user", "list", "--config", str(config_file)], capture_output=True, text=True,
                         env=narrow, check=True, timeout=60).stdout
    assert address in out and "A Display Name That Is Long Too" in out and "…" not in out
