"""The data directory is private to the node's user: database, WAL, blobs, keys and exports (issue 9 §3)."""

from __future__ import annotations

import os
import smtplib
import stat
from pathlib import Path

from conftest import DOMAIN, PASSWORD, ServerThread, dizimail_cli, write_config
from helpers import fetch_all, wait_for
from processes import ServerProcess


def shared_entries(base: Path) -> list[str]:
    """Every file and directory under ``base`` (and ``base``) that grants anything to group or others."""
    found = []
    for root, dirs, files in os.walk(base):
        for name in [".", *dirs, *files]:
            path = Path(root, name)
            mode = os.lstat(path).st_mode
            if mode & 0o077 and not stat.S_ISLNK(mode):
                found.append(f"{oct(stat.S_IMODE(mode))} {path.relative_to(base)}")
    return found


def test_data_directory_and_export_have_no_group_or_other_bits(tmp_path):
    data = tmp_path / "data"
    config_file, ports = write_config(data, extra='\n[delivery]\nrunner = "process"\n')
    dizimail_cli(config_file, "user", "add", f"perm@{DOMAIN}", "--password", PASSWORD)
    node = ServerProcess(config_file, tmp_path / "serve.log")
    try:
        node.wait_ready()
        with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=30) as s:
            assert s.sendmail("a@outside.example", [f"perm@{DOMAIN}"], b"Subject: x\r\n\r\nprivate\r\n") == {}
        server = type("S", (), {"ports": ports})
        [message] = wait_for(lambda: fetch_all(server, f"perm@{DOMAIN}"), what="the delivery")
        assert b"private" in message
        assert (data / "dizimail.db-wal").exists() and any(p.is_file() for p in (data / "blobs").rglob("*"))
        export = tmp_path / "users.csv"
        dizimail_cli(config_file, "user", "export", str(export))
        assert shared_entries(data) == []  # while serving: -wal and -shm exist
    finally:
        node.stop()
    assert shared_entries(data) == []
    assert stat.S_IMODE(os.stat(export).st_mode) == 0o600


def test_export_over_an_existing_file_makes_it_private_first(tmp_path):
    config_file, _ = write_config(tmp_path / "data")
    export = tmp_path / "users.csv"
    export.write_text("old")
    export.chmod(0o644)
    dizimail_cli(config_file, "user", "export", str(export))
    assert stat.S_IMODE(os.stat(export).st_mode) == 0o600
    assert export.read_text().startswith("address,password")


def test_a_data_directory_from_before_is_made_private_at_start(tmp_path):
    data = tmp_path / "data"
    config_file, ports = write_config(data)
    for path, mode in ((data / "dizimail.db", 0o644), (data / "blobs", 0o755), (data / "spool", 0o755)):
        path.chmod(mode)
    node = ServerThread(config_file, ports)
    node.start()
    try:
        for path in (data / "dizimail.db", data / "dizimail.db-wal", data / "blobs", data / "spool"):
            assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0, path
    finally:
        node.stop()
