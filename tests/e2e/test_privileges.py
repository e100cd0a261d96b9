"""Started as root, the server binds its ports, then runs as an unprivileged user."""

from __future__ import annotations

import os
import pwd
import shutil
import smtplib
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import DOMAIN, write_config
from helpers import fetch_all

DIZIMAIL = str(Path(sys.executable).parent / "dizimail")


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_root_start_drops_to_run_as_user_and_keeps_working():
    # pytest's own temporary directories are private to root: use one that nobody can reach
    base = Path(tempfile.mkdtemp(prefix="dizimail-drop-"))
    base.chmod(0o755)
    try:
        run_dropped(base / "data")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run_dropped(data: Path) -> None:
    config_file, ports = write_config(data)
    text = config_file.read_text().replace("[server]\n", '[server]\nrun_as = "nobody"\n', 1)
    config_file.write_text(text)
    subprocess.run([DIZIMAIL, "user", "add", f"dropper@{DOMAIN}", "--password", "pw", "--config",
                    str(config_file)], check=True, capture_output=True, timeout=60)
    proc = subprocess.Popen([DIZIMAIL, "serve", "--config", str(config_file)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if line.strip() == "ready":
                break
        else:
            pytest.fail(f"server did not start: {proc.stderr.read()}")
        status = Path(f"/proc/{proc.pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert set(uid_line.split()[1:]) == {str(pwd.getpwnam("nobody").pw_uid)}
        server = type("S", (), {"ports": ports})
        with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=30) as s:
            assert s.sendmail("a@outside.example", [f"dropper@{DOMAIN}"], b"Subject: x\r\n\r\nafter drop\r\n") == {}
        [message] = fetch_all(server, f"dropper@{DOMAIN}", "pw")
        assert b"after drop" in message
    except BaseException:
        proc.terminate()
        print(proc.stderr.read())
        raise
    finally:
        proc.terminate()
        proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()
