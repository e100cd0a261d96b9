"""Started as root, the server binds its ports, then runs as an unprivileged user."""

from __future__ import annotations

import importlib.metadata
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
from packaging.requirements import Requirement

from conftest import DOMAIN, client_tls, write_config
from helpers import fetch_all, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
NOBODY = pwd.getpwnam("nobody")
PROGRAM = Path(tempfile.gettempdir()) / f"dizimail-readable-{os.getpid()}"


def _runtime_distributions() -> list[importlib.metadata.Distribution]:
    """dizimail's runtime dependencies, recursively (no extras)."""
    found: dict[str, importlib.metadata.Distribution] = {}
    todo = [req for req in importlib.metadata.requires("dizimail") or [] if "extra ==" not in req]
    while todo:
        req = Requirement(todo.pop())
        name = req.name.lower().replace("_", "-")
        if name in found or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        dist = found[name] = importlib.metadata.distribution(req.name)
        todo += dist.requires or []
    return list(found.values())


def _interpreter() -> str:
    """A Python of this version that the service user may run: the venv's own may sit in a home
    directory nobody can enter (a checkout in /root, as `make test` on a fresh machine has it)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (os.path.realpath(sys.executable), f"/usr/bin/python{version}"):
        try:
            probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"], user="nobody",
                                   capture_output=True, text=True, timeout=30)
        except OSError:  # not there, or not the service user's to run
            continue
        if probe.returncode == 0 and probe.stdout.strip() == str(tuple(sys.version_info[:2])):
            return candidate
    pytest.fail("no Python the service user may run")


@pytest.fixture(scope="module", autouse=True)
def readable_program() -> Iterator[None]:
    """dizimail installed where the service user can read it, as a real installation is (under /opt,
    say): its package and its runtime dependencies copied into a world-readable directory, run with a
    Python nobody may run. The checkout itself may be unreadable to nobody, and a node that drops
    root refuses to start then (privileges.check)."""
    import dizimail

    shutil.rmtree(PROGRAM, ignore_errors=True)
    PROGRAM.mkdir(mode=0o755)
    shutil.copytree(Path(dizimail.__file__).parent, PROGRAM / "dizimail",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for dist in _runtime_distributions():
        for file in dist.files or []:
            source = Path(str(dist.locate_file(file)))
            if source.is_file() and not str(file).startswith(".."):
                target = PROGRAM / file
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
    for path in [PROGRAM, *PROGRAM.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    DIZIMAIL[:] = [_interpreter(), "-c",
                   "import sys; sys.argv[0] = 'dizimail'; from dizimail.cli.main import main; main()"]
    os.environ["PYTHONPATH"], saved = str(PROGRAM), os.environ.get("PYTHONPATH")
    try:
        yield
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
        shutil.rmtree(PROGRAM, ignore_errors=True)


DIZIMAIL: list[str] = []  # the command line of the readable copy (readable_program)


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
    return subprocess.run([*DIZIMAIL, *args, "--config", str(config_file)], capture_output=True, text=True,
                          timeout=120)


def run_dropped(data: Path) -> Path:
    config_file, ports = dropped_config(data)
    subprocess.run([*DIZIMAIL, "user", "add", f"dropper@{DOMAIN}", "--password", "pw", "--config",
                    str(config_file)], check=True, capture_output=True, timeout=60)
    proc = subprocess.Popen([*DIZIMAIL, "serve", "--config", str(config_file)], stdout=subprocess.PIPE,
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


def test_smtp_workers_of_a_root_start_run_as_the_service_user_and_still_offer_starttls(base):
    """Workers start after root is dropped: they run as the service user, and they cannot read the TLS key
    (root's, 0600) but get it from the node, so STARTTLS on port 25 works in them."""
    config_file, ports = dropped_config(base / "data")
    config_file.write_text(config_file.read_text().replace("[server]\n", "[server]\nsmtp_workers = 1\n", 1))
    subprocess.run([*DIZIMAIL, "user", "add", f"worker@{DOMAIN}", "--password", "pw", "--config", str(config_file)],
                   check=True, capture_output=True, timeout=60)
    log = base / "serve.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([*DIZIMAIL, "serve", "--config", str(config_file)], stdout=subprocess.PIPE,
                                stderr=err, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "ready":
                break
        wait_for(lambda: "smtp.worker.ready" in log.read_text(), what="the worker")
        (worker,) = [int(d) for d in os.listdir("/proc") if d.isdigit() and _parent(int(d)) == proc.pid
                     and b"smtp-worker" in Path(f"/proc/{d}/cmdline").read_bytes()]
        uid_line = next(x for x in Path(f"/proc/{worker}/status").read_text().splitlines() if x.startswith("Uid:"))
        assert set(uid_line.split()[1:]) == {str(NOBODY.pw_uid)}
        assert stat.S_IMODE((base / "data" / "tls" / "key.pem").stat().st_mode) == 0o600
        with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=30) as s:
            s.starttls(context=client_tls())
            assert s.sendmail("a@outside.example", [f"worker@{DOMAIN}"], b"Subject: w\r\n\r\nover TLS\r\n") == {}
        server = type("S", (), {"ports": ports})
        [message] = fetch_all(server, f"worker@{DOMAIN}", "pw")
        assert b"over TLS" in message and b"ESMTPS" in message, message[:600]
        assert "smtp.disconnect session=w0s1 mode=mx" in log.read_text()  # the worker served it
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, IndexError, ValueError):
        return -1


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
    proc = subprocess.run([*DIZIMAIL, "serve", "--config", str(config_file)], capture_output=True, text=True,
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
    result = subprocess.run([*DIZIMAIL, "serve", "--config", str(config_file)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0 and "belongs to nobody" in result.stderr, result.stderr
    os.chown(base / "data", 0, 0)
    (base / "data" / "tls").chmod(0o777)
    result = cli_as_root(config_file, "user", "list")
    assert result.returncode != 0 and "tls is writable by nobody" in result.stderr, result.stderr


def test_a_program_the_service_user_cannot_read_is_refused_at_start(base):
    """After the drop the node still loads modules and starts the queue runner: a program the service
    user cannot read (a checkout in root's home) would fail later and obscurely, so the start says so."""
    private = base / "private"
    private.mkdir(mode=0o700)
    shutil.copytree(PROGRAM, private / "lib")
    config_file, _ = dropped_config(base / "data")
    result = subprocess.run([*DIZIMAIL, "serve", "--config", str(config_file)], capture_output=True, text=True,
                            timeout=60, env=dict(os.environ, PYTHONPATH=str(private / "lib")))
    assert result.returncode != 0, result.stdout
    assert f"nobody cannot read {private / 'lib'}" in result.stderr, result.stderr
