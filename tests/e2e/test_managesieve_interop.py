"""ManageSieve with a real client (issue #12): Debian's sieve-connect uploads, lists, activates, downloads
and deletes scripts over STARTTLS with SASL PLAIN, and the mail that follows obeys the uploaded script."""

from __future__ import annotations

import os
import shutil
import smtplib
import subprocess

import pytest

from conftest import PASSWORD
from helpers import fetch_all, imap_login

SIEVE_CONNECT = shutil.which("sieve-connect") or "/usr/bin/sieve-connect"
pytestmark = pytest.mark.slow


def sieve_connect(server, user: str, *args: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    if not os.path.exists(SIEVE_CONNECT):
        pytest.fail("sieve-connect is missing: scripts/test-deps.sh installs it")
    read, write = os.pipe()
    os.write(write, password.encode() + b"\n")
    os.close(write)
    try:
        return subprocess.run([SIEVE_CONNECT, "--server", "127.0.0.1", "--port", str(server.ports["managesieve"]),
                               "--user", user, "--passwordfd", str(read), "--notlsverify", "--authmech", "PLAIN",
                               *args], capture_output=True, text=True, timeout=60, pass_fds=(read,))
    finally:
        os.close(read)


def test_sieve_connect_manages_scripts_that_then_filter_mail(server, user, tmp_path):
    script = tmp_path / "rules.sieve"
    script.write_text('require ["fileinto", "imap4flags"];\nif address :domain :is "from" "vendor.test" {\n'
                      '  fileinto :flags "\\\\Seen" "Vendors";\n}\n', encoding="utf-8")
    with imap_login(server, user) as imap:
        assert imap.create("Vendors")[0] == "OK"
    up = sieve_connect(server, user, "--upload", "--localsieve", str(script), "--remotesieve", "rules")
    assert up.returncode == 0, up.stderr
    active = sieve_connect(server, user, "--activate", "--remotesieve", "rules")
    assert active.returncode == 0, active.stderr
    listed = sieve_connect(server, user, "--list")
    assert listed.returncode == 0 and "rules" in listed.stdout and "ACTIVE" in listed.stdout.upper(), listed
    down = tmp_path / "back.sieve"
    got = sieve_connect(server, user, "--download", "--remotesieve", "rules", "--localsieve", str(down))
    assert got.returncode == 0 and down.read_text() == script.read_text(), got.stderr
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        s.sendmail("sales@vendor.test", [user], b"From: sales@vendor.test\r\nSubject: offer\r\n\r\nbuy\r\n")
    with imap_login(server, user) as imap:
        imap.select("Vendors", readonly=True)
        _, data = imap.fetch("1", "(FLAGS)")
        assert b"\\Seen" in data[0]
    assert fetch_all(server, user) == []
    assert sieve_connect(server, user, "--deactivate").returncode == 0
    gone = sieve_connect(server, user, "--delete", "--remotesieve", "rules")
    assert gone.returncode == 0, gone.stderr
    assert "rules" not in sieve_connect(server, user, "--list").stdout


def test_sieve_connect_is_told_where_a_script_is_wrong(server, user, tmp_path):
    script = tmp_path / "bad.sieve"
    script.write_text('require "fileinto";\nfileinto "x"\n', encoding="utf-8")
    up = sieve_connect(server, user, "--upload", "--localsieve", str(script), "--remotesieve", "bad")
    assert up.returncode != 0 and "line" in (up.stdout + up.stderr), (up.stdout, up.stderr)
    assert sieve_connect(server, user, "--list", password="wrong").returncode != 0
