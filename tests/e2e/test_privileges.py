"""Started as root, the server binds its ports, then runs as an unprivileged user."""

from __future__ import annotations

import os
import pwd
import shutil
import smtplib
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import DOMAIN, write_config
from helpers import fetch_all

DIZIMAIL = str(Path(sys.executable).parent / "dizimail")


pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
NOBODY = pwd.getpwnam("nobody")


@pytest.fixture
def base() -> Iterator[Path]:
    # pytest's own temporary directories are private to root: use one that nobody can reach
    path = Path(tempfile.mkdtemp(prefix="dizimail-drop-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_root_start_drops_to_run_as_user_and_keeps_working(base):
    run_dropped(base / "data")


def dropped_config(data: Path) -> tuple[Path, dict[str, int]]:
    config_file, ports = write_config(data)
    text = config_file.read_text().replace("[server]\n", '[server]\nrun_as = "nobody"\n', 1)
    config_file.write_text(text)
    return config_file, ports


def as_nobody(code: str) -> str:
    """Run Python as the service user, as a compromised node would (Debian's python3: the test's own may
    live where nobody can reach it)."""
    return subprocess.run(["/usr/bin/python3", "-c", code], user="nobody", group=NOBODY.pw_gid, extra_groups=[],
                          capture_output=True, text=True, check=True, timeout=60).stdout


def cli_as_root(config_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DIZIMAIL, *args, "--config", str(config_file)], capture_output=True, text=True,
                          timeout=120)


def run_dropped(data: Path) -> Path:
    config_file, ports = dropped_config(data)
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
    return config_file


def test_after_a_root_start_the_service_user_cannot_change_config_or_certificate(base):
    data = base / "data"
    config_file = run_dropped(data)
    for path in (config_file, data / "tls", data / "tls" / "key.pem", data / "tls" / "cert.pem"):
        st = path.stat()
        assert st.st_uid == 0 and st.st_mode & 0o022 == 0, path
    assert stat.S_IMODE((data / "tls" / "key.pem").stat().st_mode) == 0o600
    for path in (data / "dizimail.db", data / "blobs", data / "blobs" / "00", data / "spool", data / "secrets",
                 data / "secrets" / "master.key"):
        assert path.stat().st_uid == NOBODY.pw_uid, path  # what the node writes is the service user's
    attempts = as_nobody(f"""
import os
config = {str(config_file)!r}
for name, attempt in (("write", lambda: open(config, "a")), ("rename", lambda: os.rename(config, config + ".x")),
                      ("replace", lambda: (open(config + ".new", "w").close(), os.replace(config + ".new", config))),
                      ("tls", lambda: os.rename({str(data / "tls")!r}, {str(data / "tls2")!r}))):
    try:
        attempt()
        print(name, "allowed")
    except PermissionError:
        print(name, "denied")
""")
    assert attempts.split() == ["write", "denied", "rename", "denied", "replace", "denied", "tls", "denied"]


def test_a_link_planted_by_the_service_user_is_not_followed_and_the_start_is_refused(base):
    data = base / "data"
    config_file = run_dropped(data)
    victim = base / "shadow"
    victim.write_text("root:secret\n")
    victim.chmod(0o600)
    as_nobody(f"import os; os.symlink({str(victim)!r}, {str(data / 'dizimail.db-wal')!r})")
    result = cli_as_root(config_file, "user", "list")
    assert result.returncode != 0 and "symbolic link" in result.stderr, result.stdout + result.stderr
    assert victim.stat().st_uid == 0 and victim.read_text() == "root:secret\n"
    proc = subprocess.run([DIZIMAIL, "serve", "--config", str(config_file)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0 and "symbolic link" in proc.stderr
    assert victim.stat().st_uid == 0


def test_a_hard_link_to_a_system_file_is_never_handed_over(base):
    config_file, _ = dropped_config(base / "data")
    victim = base / "passwd-like"
    victim.write_text("x")
    os.link(victim, base / "data" / "dizimail.db-shm")  # what fs.protected_hardlinks=0 would let nobody do
    result = cli_as_root(config_file, "user", "list")
    assert result.returncode != 0 and "names" in result.stderr, result.stderr
    assert victim.stat().st_uid == 0


def test_a_config_the_service_user_could_have_changed_is_refused(base):
    config_file, _ = dropped_config(base / "data")
    os.chown(config_file, NOBODY.pw_uid, NOBODY.pw_gid)
    result = cli_as_root(config_file, "user", "list")
    assert result.returncode != 0 and f"{config_file} belongs to nobody" in result.stderr, result.stderr
    os.chown(config_file, 0, 0)
    os.chown(base / "data", NOBODY.pw_uid, NOBODY.pw_gid)  # as the old hand-over left it
    result = subprocess.run([DIZIMAIL, "serve", "--config", str(config_file)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0 and "belongs to nobody" in result.stderr, result.stderr
    os.chown(base / "data", 0, 0)
    (base / "data" / "tls").chmod(0o777)
    result = cli_as_root(config_file, "user", "list")
    assert result.returncode != 0 and "tls is writable by nobody" in result.stderr, result.stderr
