"""Real peers for multi-node tests: Postfix as "the internet", dnsmasq as its DNS, smtp-sink as a counter.

Each peer is a context manager that starts a private instance of a Debian program on a loopback address and
a port the test chooses, keeps its files under the work directory it is given, and stops the program on exit
even when the test failed. The programs come from Debian packages that scripts/test-deps.sh installs; a
missing one fails the test rather than skipping it. Postfix needs root (its master drops privileges itself),
as `make test` has. tests/e2e/test_peers.py shows each feature at work.

    with DnsmasqPeer(tmp_path / "dns", 53, [MX("outside.test", "mx.outside.test"),
                                            A("mx.outside.test", "127.0.0.25")], address="127.0.0.53") as dns, \
         PostfixPeer(tmp_path / "internet", 25, address="127.0.0.25", mailboxes=["alice@outside.test"],
                     routes={"example.test": gateway_port}) as internet:
        ...  # our gateway resolves outside.test through dns and delivers to 127.0.0.25:25
        [stored] = internet.wait_for("alice@outside.test", 1)
        internet.send("alice@outside.test", "bob@example.test")  # relayed to 127.0.0.1:gateway_port

Fixtures: import `postfix_peer_fixture` (and/or `dnsmasq_peer_fixture`, `smtp_sink_peer_fixture`) with a
noqa F401, then name `postfix_peer` (`dnsmasq_peer`, `smtp_sink_peer`) as a test argument.
"""

from __future__ import annotations

import email.utils
import hashlib
import ipaddress
import json
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

import dns.asyncresolver
import dns.resolver
import pytest

from conftest import client_tls, free_ports

T = TypeVar("T")
POSTFIX_UNPRIVILEGED = "nobody"  # owns delivered Maildirs and smtp-sink dumps


def need(program: str) -> str:
    """Path of an installed program; a missing tool is a failure (scripts/test-deps.sh installs it)."""
    path = shutil.which(program) or (program if os.access(program, os.X_OK) else None)
    if path is None:
        pytest.fail(f"{program} is not installed; run scripts/test-deps.sh (part of `make test`)")
    return path


def wait_until(predicate: Callable[[], T | None], timeout: float, what: str,
               detail: Callable[[], str] = lambda: "") -> T:
    """Poll `predicate` until it returns something truthy; fail with `what` and `detail()` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{detail()}")
        time.sleep(0.05)


def _greets(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            return bool(s.recv(512))
    except OSError:
        return False


def _accepts(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def _require_free(host: str, port: int, udp: bool = False) -> None:
    """Fail clearly on a busy port (a connect-based readiness check would find the other listener)."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM) if udp else (socket.SOCK_STREAM,):
        with socket.socket(socket.AF_INET, kind) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as e:
                raise AssertionError(f"{host}:{port} is not free: {e}") from e


def _is_free(host: str, port: int, udp: bool = False) -> bool:
    try:
        _require_free(host, port, udp)
    except AssertionError:
        return False
    return True


def _reachable_by_others(path: Path) -> bool:
    """Can an unprivileged uid walk down to `path`? pytest's own tmp_path root is private (0700)."""
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path} does not exist)"


def message(sender: str, recipients: Sequence[str], subject: str = "peer test", body: str = "hello\n",
            headers: Mapping[str, str] | None = None) -> bytes:
    """A small RFC 5322 message with Date and a unique Message-ID, CRLF line ends."""
    fields = {"From": sender, "To": ", ".join(recipients), "Subject": subject,
              "Date": email.utils.formatdate(), "Message-ID": f"<{uuid.uuid4().hex}@peers.test>",
              **(headers or {})}
    head = "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return (head + "\r\n" + body.replace("\r\n", "\n").replace("\n", "\r\n")).encode()


class _Peer:
    """start() on enter, stop() on exit; a failed start stops whatever did come up."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    """Running (a zombie left for an init that does not reap counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _stop_pid(pid: int, timeout: float = 10) -> None:
    """SIGTERM a daemon we started (not our child), SIGKILL it if it lingers."""
    try:
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 5)
    except ProcessLookupError:
        pass


def _stop_child(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --- Postfix: the outside world ----------------------------------------------------------------------------

_MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
{listen} inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
REFUSE_ACTION = "550 5.7.1 refused by the test peer"
DEFER_ACTION = "450 4.7.1 deferred by the test peer"
Route = int | str | tuple[str, int]
_LAYOUT = ("conf", "spool", "data", "mail", "tls", "postfix.log")
_KEPT = ("conf", "mail", "tls", "postfix.log")


def _nexthop(route: Route) -> str:
    """12345 | "127.0.0.2:12345" | ("127.0.0.2", 12345) -> smtp:[127.0.0.2]:12345; "error:..." etc. unchanged."""
    if isinstance(route, int):
        return f"smtp:[127.0.0.1]:{route}"
    if isinstance(route, tuple):
        return f"smtp:[{route[0]}]:{route[1]}"
    if re.fullmatch(r"[\d.]+:\d+", route):
        host, port = route.rsplit(":", 1)
        return f"smtp:[{host}]:{port}"
    return route


class PostfixPeer(_Peer):
    """A private Postfix instance ("the internet"): Maildirs for outside domains, refusals, relaying to us.

    Mail for `domains` is delivered by virtual(8) to one Maildir per address in `mailboxes` (others get 550
    at RCPT). Recipients (address or domain keys) in `refuse` get 550, in `defer` get 450, at RCPT, whoever
    the client is; `recipient_access` adds raw access(5) actions. Mail for a domain in `routes` goes to that
    next hop (our gateway), everything else to `relayhost`; without one, such recipients get "550 5.4.4 no
    route" at RCPT. Postfix never uses DNS, not even for client names. The SMTP server offers STARTTLS
    (self-signed); the client uses TLS when offered (`tls_out`). Every loopback client may relay
    (mynetworks = 127.0.0.0/8). Delivered files have LF line ends.
    """

    def __init__(self, workdir: Path, port: int, *, address: str = "127.0.0.1", hostname: str = "mx.outside.test",
                 domains: Iterable[str] = ("outside.test",), mailboxes: Iterable[str] = (),
                 refuse: Iterable[str] = ("refuse.test",), defer: Iterable[str] = ("defer.test",),
                 recipient_access: Mapping[str, str] | None = None, routes: Mapping[str, Route] | None = None,
                 relayhost: Route | None = None, source_address: str | None = None, tls_out: str = "may",
                 main_cf: Mapping[str, str] | None = None) -> None:
        self.workdir = Path(workdir).absolute()
        self.port, self.address, self.hostname = port, address, hostname
        self.domains = [d.lower() for d in domains]
        self.mailboxes = {a.lower() for a in mailboxes}
        self.access = {k.lower(): REFUSE_ACTION for k in refuse} | {k.lower(): DEFER_ACTION for k in defer}
        self.access |= {k.lower(): v for k, v in (recipient_access or {}).items()}
        self.routes = {k.lower(): _nexthop(v) for k, v in (routes or {}).items()}
        self.relayhost = _nexthop(relayhost).removeprefix("smtp:") if relayhost is not None else None
        self.source_address, self.tls_out = source_address, tls_out
        self.extra = dict(main_cf or {})
        self.conf = self.workdir / "conf"
        self.log_path = self.workdir / "postfix.log"
        self.root = self.workdir  # where Postfix itself sees its files (see _make_dirs)
        self._master: int | None = None
        self._vmail = pwd.getpwnam(POSTFIX_UNPRIVILEGED)

    # lifecycle

    def start(self) -> None:
        postfix = need("/usr/sbin/postfix")
        if os.geteuid() != 0:
            pytest.fail("PostfixPeer needs root: the Postfix master starts as root and drops privileges itself")
        _require_free(self.address, self.port)
        self._make_dirs()
        self._write_config()
        self._write_maps()
        r = subprocess.run([postfix, "-c", str(self.root / "conf"), "start"], capture_output=True, text=True,
                           timeout=60)
        pid_file = self.root / "spool" / "pid" / "master.pid"
        if pid_file.exists():
            self._master = int(pid_file.read_text().split()[0])
        if r.returncode != 0:
            raise AssertionError(f"postfix start failed: {r.stdout}{r.stderr}\n{_tail(self.log_path)}")
        wait_until(lambda: _greets(self.address, self.port), 30, f"Postfix on {self.address}:{self.port}",
                   lambda: _tail(self.log_path))
        if self._master is None:
            self._master = int(pid_file.read_text().split()[0])

    def stop(self) -> None:
        if self._master is not None:
            _stop_pid(self._master)  # SIGTERM: the master stops its children and exits (master(8))
            self._master = None
        if self.root != self.workdir:  # bring what a human would read home; the queue and sockets go
            for name in _LAYOUT:
                link = self.workdir / name
                if link.is_symlink():
                    link.unlink()
                    if name in _KEPT and (self.root / name).exists():
                        shutil.move(str(self.root / name), str(link))
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = self.workdir

    def _make_dirs(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o755)
        if not _reachable_by_others(self.workdir):
            # Postfix opens data_directory and maps as `postfix`, virtual(8) writes Maildirs as `nobody`, by
            # absolute path, which pytest's private tmp root (0700) forbids. So the instance lives in a
            # directory they can reach, linked from workdir; stop() moves conf, mail and log back.
            self.root = Path(tempfile.mkdtemp(prefix="dizimail-postfix-"))
            self.root.chmod(0o711)
            for name in _LAYOUT:
                (self.workdir / name).symlink_to(self.root / name)
        for name in ("conf", "spool", "tls"):
            (self.root / name).mkdir(exist_ok=True)
        for name, owner in (("data", pwd.getpwnam("postfix")), ("mail", self._vmail)):
            (self.root / name).mkdir(exist_ok=True)
            os.chown(self.root / name, owner.pw_uid, owner.pw_gid)
            (self.root / name).chmod(0o700)
        cert, key = self.workdir / "tls" / "cert.pem", self.workdir / "tls" / "key.pem"
        if not cert.exists():
            subprocess.run([need("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30", "-subj", f"/CN={self.hostname}",
                            "-addext", f"subjectAltName=DNS:{self.hostname},IP:{self.address}",
                            "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
            key.chmod(0o600)

    def _params(self) -> dict[str, str]:
        w = self.root
        c = w / "conf"
        return {
            "compatibility_level": "3.6", "queue_directory": f"{w}/spool", "data_directory": f"{w}/data",
            "mail_owner": "postfix", "setgid_group": "postdrop", "myhostname": self.hostname,
            "mydomain": self.hostname.partition(".")[2] or self.hostname, "myorigin": "$myhostname",
            "mydestination": "", "inet_interfaces": "all", "inet_protocols": "ipv4", "mynetworks": "127.0.0.0/8",
            "smtpd_banner": "$myhostname ESMTP test peer", "biff": "no", "append_dot_mydomain": "no",
            "alias_maps": "", "alias_database": "", "local_recipient_maps": "",
            "virtual_mailbox_domains": " ".join(self.domains), "virtual_mailbox_maps": f"hash:{c}/mailboxes",
            "virtual_mailbox_base": f"{w}/mail", "virtual_minimum_uid": "1",
            "virtual_uid_maps": f"static:{self._vmail.pw_uid}", "virtual_gid_maps": f"static:{self._vmail.pw_gid}",
            "transport_maps": f"hash:{c}/transport", "relayhost": self.relayhost or "",
            "default_transport": "smtp" if self.relayhost else "error:5.4.4 no route to this domain in the test net",
            "smtpd_relay_restrictions":
                f"check_recipient_access hash:{c}/recipient_access, permit_mynetworks, reject_unauth_destination",
            "smtp_dns_support_level": "disabled", "smtpd_peername_lookup": "no",  # no libc resolver either
            "smtp_bind_address": self.source_address or "",
            "smtp_tls_security_level": self.tls_out, "smtp_tls_loglevel": "1",
            "smtpd_tls_cert_file": f"{w}/tls/cert.pem", "smtpd_tls_key_file": f"{w}/tls/key.pem",
            "smtpd_tls_security_level": "may", "smtpd_tls_loglevel": "1", "smtpd_tls_received_header": "yes",
            "maillog_file": f"{w}/postfix.log", "maillog_file_prefixes": str(w),
            # quick retries and no pacing: tests wait seconds, not minutes
            "queue_run_delay": "2s", "minimal_backoff_time": "2s", "maximal_backoff_time": "10s",
            "in_flow_delay": "0", "smtpd_error_sleep_time": "0", "smtpd_soft_error_limit": "100",
            "smtpd_hard_error_limit": "200", "message_size_limit": "52428800", "virtual_mailbox_limit": "0",
            "recipient_delimiter": "+",
            **self.extra,
        }

    def _write_config(self) -> None:
        listen = f"{self.address}:{self.port}"
        files = {"main.cf": "".join(f"{k} = {v}\n" for k, v in self._params().items()),
                 "master.cf": _MASTER_CF.format(listen=listen)}
        for name, text in files.items():
            path = self.root / "conf" / name
            path.write_text(text)
            # Postfix waits (up to 2 s, each command) for a main.cf younger than a second to settle
            past = time.time() - 10
            os.utime(path, (past, past))

    def _write_maps(self) -> None:
        maps = {
            "mailboxes": {a: "{1}/{0}/".format(*a.rsplit("@", 1)) for a in sorted(self.mailboxes)},
            "recipient_access": self.access,
            "transport": self.routes,
        }
        conf = self.root / "conf"
        for name, entries in maps.items():
            (conf / name).write_text("".join(f"{k} {v}\n" for k, v in entries.items()))
            subprocess.run([need("/usr/sbin/postmap"), "-c", str(conf), f"hash:{conf / name}"], check=True,
                           capture_output=True, timeout=30)

    def _postfix(self, *args: str) -> str:
        r = subprocess.run([need("/usr/sbin/postfix"), "-c", str(self.root / "conf"), *args], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, f"postfix {' '.join(args)}: {r.stdout}{r.stderr}"
        return r.stdout

    # changing the world while it runs (hash maps are re-read by new processes; reload makes it certain)

    def reload(self) -> None:
        """Rewrite the maps and reload; returns once the master has re-read its configuration."""
        self._write_maps()
        done = self.log().count(": reload -- version")
        self._postfix("reload")
        wait_until(lambda: self.log().count(": reload -- version") > done, 30, "postfix reload", self.diagnostics)

    def add_mailbox(self, *addresses: str) -> None:
        self.mailboxes |= {a.lower() for a in addresses}
        self.reload()

    def set_recipient_access(self, key: str, action: str | None) -> None:
        """`action` as in access(5) ("550 5.1.1 gone", "450 4.2.0 later", "REJECT", "OK"); None removes."""
        if action is None:
            self.access.pop(key.lower(), None)
        else:
            self.access[key.lower()] = action
        self.reload()

    def route(self, domain: str, route: Route | None) -> None:
        """Send mail for `domain` to a next hop (port, "host:port", (host, port), or "error:..."); None removes."""
        if route is None:
            self.routes.pop(domain.lower(), None)
        else:
            self.routes[domain.lower()] = _nexthop(route)
        self.reload()

    def configure(self, params: Mapping[str, str]) -> None:
        """Change main.cf parameters and reload."""
        self.extra.update(params)
        self._write_config()
        self.reload()

    # receiving

    def maildir(self, address: str) -> Path:
        local, domain = address.lower().rsplit("@", 1)
        return self.workdir / "mail" / domain / local

    def messages(self, address: str) -> list[bytes]:
        """Every message delivered to `address`, oldest first, as stored (LF line ends, Return-Path and
        Delivered-To prepended by virtual(8))."""
        root = self.maildir(address)
        files = [f for sub in ("new", "cur") if (root / sub).is_dir() for f in (root / sub).iterdir()]
        files.sort(key=lambda f: (f.stat().st_mtime_ns, f.name))
        return [f.read_bytes() for f in files]

    def wait_for(self, address: str, count: int = 1, timeout: float = 30) -> list[bytes]:
        """Wait until `address` has at least `count` messages; return them all."""
        return wait_until(lambda: m if len(m := self.messages(address)) >= count else None, timeout,
                          f"{count} message(s) for {address} at {self.hostname}", self.diagnostics)

    # sending

    def smtp(self, starttls: bool = False, helo: str = "client.outside.test") -> smtplib.SMTP:
        """A connected smtplib client (use as a context manager)."""
        s = smtplib.SMTP(self.address, self.port, local_hostname=helo, timeout=30)
        if starttls:
            s.starttls(context=client_tls())
        return s

    def send(self, sender: str, recipients: str | Sequence[str], data: bytes | str | None = None, *,
             starttls: bool = False) -> dict[str, tuple[int, bytes]]:
        """Inject a message (a generated one if `data` is None); returns smtplib's refused-recipients dict,
        raises smtplib.SMTPRecipientsRefused when every recipient is refused."""
        rcpts = [recipients] if isinstance(recipients, str) else list(recipients)
        with self.smtp(starttls=starttls) as s:
            return s.sendmail(sender, rcpts, data if data is not None else message(sender, rcpts))

    # queue and log

    def queue(self) -> list[dict[str, Any]]:
        """`postqueue -j`: one dict per queued message (queue_name, sender, recipients[].delay_reason, ...)."""
        out = subprocess.run([need("/usr/sbin/postqueue"), "-c", str(self.root / "conf"), "-j"],
                             capture_output=True, text=True, check=True, timeout=30).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def queue_empty(self) -> bool:
        return not self.queue()

    def flush(self) -> None:
        """Retry every deferred message now (postqueue -f)."""
        subprocess.run([need("/usr/sbin/postqueue"), "-c", str(self.root / "conf"), "-f"], check=True,
                       capture_output=True, timeout=30)

    def wait_queue_empty(self, timeout: float = 30) -> None:
        wait_until(self.queue_empty, timeout, f"an empty queue at {self.hostname}", self.diagnostics)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern: str, timeout: float = 30) -> str:
        """The first log line matching the regular expression `pattern`, once there is one."""
        rx = re.compile(pattern)
        return wait_until(lambda: next((line for line in self.log().splitlines() if rx.search(line)), None),
                          timeout, f"/{pattern}/ in {self.log_path}", self.diagnostics)

    def diagnostics(self) -> str:
        try:
            queue = json.dumps(self.queue(), indent=1)
        except (subprocess.SubprocessError, OSError) as e:
            queue = repr(e)
        return f"--- queue ---\n{queue}\n--- {self.log_path} ---\n{_tail(self.log_path)}"


# --- dnsmasq: the outside world's DNS -----------------------------------------------------------------------


@dataclass(frozen=True)
class MX:
    domain: str
    host: str
    preference: int = 10

    def option(self) -> str:
        return f"mx-host={self.domain},{self.host},{self.preference}"


@dataclass(frozen=True)
class A:
    """An A (or, for an IPv6 address, AAAA) record; dnsmasq adds the matching PTR unless a PTR says otherwise."""
    name: str
    address: str

    def option(self) -> str:
        return f"host-record={self.name},{self.address}"


@dataclass(frozen=True)
class TXT:
    """A TXT record: one ASCII text (cut into 255-byte character-strings, as for long DKIM keys) or explicit
    strings (each cut likewise)."""
    name: str
    text: str | tuple[str, ...]

    def strings(self) -> list[str]:
        parts = [self.text] if isinstance(self.text, str) else list(self.text)
        return [p[i:i + 255] for p in parts for i in range(0, max(len(p), 1), 255)]

    def option(self) -> str:
        quoted = ('"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"' for s in self.strings())
        return f"txt-record={self.name},{','.join(quoted)}"


@dataclass(frozen=True)
class PTR:
    """A PTR record for an IP address (or a name already under in-addr.arpa / ip6.arpa)."""
    address: str
    host: str

    def option(self) -> str:
        name = self.address if self.address.endswith(".arpa") else ipaddress.ip_address(self.address).reverse_pointer
        return f"ptr-record={name},{self.host}"


@dataclass(frozen=True)
class CNAME:
    name: str
    target: str  # must itself be a record this server holds

    def option(self) -> str:
        return f"cname={self.name},{self.target}"


Record = MX | A | TXT | PTR | CNAME


class DnsmasqPeer(_Peer):
    """dnsmasq answering only from `records`, on `address`:`port` over UDP and TCP.

    Names under `local_domains` that have no record get NXDOMAIN (a name with other types: an empty answer);
    names elsewhere get REFUSED, since there is no upstream. Record TTLs are 1 s. Queries are logged.
    """

    def __init__(self, workdir: Path, port: int, records: Iterable[Record] = (), *, address: str = "127.0.0.1",
                 local_domains: Iterable[str] = ("test", "in-addr.arpa", "ip6.arpa")) -> None:
        self.workdir = Path(workdir).absolute()
        self.port, self.address = port, address
        self.records = list(records)
        self.local_domains = list(local_domains)
        self.conf = self.workdir / "dnsmasq.conf"
        self.log_path = self.workdir / "dnsmasq.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def nameserver(self) -> str:
        return f"{self.address}:{self.port}"

    def start(self) -> None:
        dnsmasq = need("/usr/sbin/dnsmasq")
        _require_free(self.address, self.port, udp=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        options = ["no-resolv", "no-hosts", "no-poll", f"listen-address={self.address}", "bind-interfaces",
                   f"port={self.port}", "local-ttl=1", "log-queries", f"log-facility={self.log_path}",
                   f"pid-file={self.workdir / 'dnsmasq.pid'}", *(f"local=/{d}/" for d in self.local_domains)]
        if os.geteuid() == 0:
            options.append("user=root")  # its default, `nobody`, could not reach a private tmp_path
        # explicit PTRs first: for a reverse name dnsmasq answers the first match
        ordered = sorted(self.records, key=lambda r: not isinstance(r, PTR))
        self.conf.write_text("".join(f"{o}\n" for o in [*options, *(r.option() for r in ordered)]))
        with open(self.workdir / "dnsmasq.stderr", "wb") as stderr:
            self._proc = subprocess.Popen([dnsmasq, "--keep-in-foreground", f"--conf-file={self.conf}"],
                                          stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                                          start_new_session=True)  # its own group: stop() ends its TCP children
        wait_until(lambda: self._proc is not None and (self._proc.poll() is not None
                                                      or _accepts(self.address, self.port)),
                   15, f"dnsmasq on {self.nameserver}", self.diagnostics)
        if self._proc.poll() is not None:
            raise AssertionError(f"dnsmasq exited with {self._proc.returncode}\n{self.diagnostics()}")

    def stop(self) -> None:
        """Stop dnsmasq and the children it forks for TCP queries: they hold its listening sockets
        (inherited) until they end, and a restart on the same port found it busy."""
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        _stop_child(self._proc)
        self._proc = None
        wait_until(lambda: _is_free(self.address, self.port, udp=True), 10, f"{self.nameserver} to be free")

    def restart(self) -> None:
        self.stop()
        self.start()

    def update(self, records: Iterable[Record]) -> None:
        """Serve exactly `records` from now on (a restart on the same port; a few tens of milliseconds)."""
        self.records = list(records)
        self.restart()

    def add(self, *records: Record) -> None:
        self.update([*self.records, *records])

    def remove(self, name: str) -> None:
        """Drop every record whose owner name (domain, name or address) is `name`."""
        self.update([r for r in self.records if _owner(r) != name])

    def resolver(self) -> dns.resolver.Resolver:
        """A dnspython Resolver asking only this server."""
        r = dns.resolver.Resolver(configure=False)
        r.nameservers, r.port, r.lifetime = [self.address], self.port, 5
        return r

    def async_resolver(self) -> dns.asyncresolver.Resolver:
        """The same for asyncio code (what dizimail's delivery uses)."""
        r = dns.asyncresolver.Resolver(configure=False)
        r.nameservers, r.port, r.lifetime = [self.address], self.port, 5
        return r

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def diagnostics(self) -> str:
        return (f"--- {self.conf} ---\n{_tail(self.conf, 200)}\n--- stderr ---\n"
                f"{_tail(self.workdir / 'dnsmasq.stderr')}\n--- {self.log_path} ---\n{_tail(self.log_path)}")


def _owner(record: Record) -> str:
    return record.domain if isinstance(record, MX) else record.address if isinstance(record, PTR) else record.name


# --- smtp-sink: a receiver that counts ------------------------------------------------------------------------


@dataclass
class SinkMessage:
    """One transaction as smtp-sink dumped it (-d): envelope, then the data as smtp-sink wrote it (LF line
    ends, its own trace headers removed)."""
    sender: str
    recipients: list[str]
    helo: str
    client: str
    data: bytes


def _parse_dump(raw: bytes) -> SinkMessage | None:
    """None for a dump smtp-sink is still writing (it writes a file in several pieces, the envelope
    first, after the transaction's counter already moved): read it again later (SmtpSinkPeer.settled)."""
    head, _, data = raw.partition(b"\nReceived: ")
    if data.count(b"\n") < 3:
        return None
    fields: dict[str, list[str]] = {}
    for line in head.decode(errors="replace").split("\n"):
        key, _, value = line.partition(": ")
        fields.setdefault(key, []).append(value)
    data = data.split(b"\n", 3)[3]  # the rest of smtp-sink's own three-line Received header
    recipients = [v.split()[0].strip("<>") if v.split() else "" for v in fields.get("X-Rcpt-Args", [])]
    sender = (fields.get("X-Mail-Args", [""])[0].split() or [""])[0].strip("<>")
    return SinkMessage(sender, recipients, fields.get("X-Helo-Args", [""])[0], fields.get("X-Client-Addr", [""])[0],
                       data.removesuffix(b"\n"))


class SmtpSinkPeer(_Peer):
    """Postfix's smtp-sink(1) on `address`:`port`: accepts everything, counts, optionally dumps each message.

    `hard`/`soft`: SMTP commands answered 5xx/4xx ("RCPT", "DATA", ".", "MAIL", "EHLO", "CONNECT", ...), with
    `hard_reply`/`soft_reply` as the reply text. `disconnect`: commands after which it hangs up silently,
    `reply_421`: commands answered "421" then hang-up. `dump=False` only counts (for benchmarks).
    """

    def __init__(self, workdir: Path, port: int, *, address: str = "127.0.0.1", hostname: str = "sink.test",
                 dump: bool = True, hard: Iterable[str] = (), soft: Iterable[str] = (),
                 hard_reply: str | None = None, soft_reply: str | None = None, disconnect: Iterable[str] = (),
                 reply_421: Iterable[str] = (), extra_args: Sequence[str] = ()) -> None:
        self.workdir = Path(workdir).absolute()
        self.port, self.address, self.hostname, self.dump = port, address, hostname, dump
        self.args: list[str] = ["-c", "-h", hostname]
        for flag, commands in (("-f", hard), ("-r", soft), ("-q", disconnect), ("-Q", reply_421)):
            if commands := ",".join(commands):
                self.args += [flag, commands]
        for flag, reply in (("-B", hard_reply), ("-b", soft_reply)):
            if reply:
                self.args += [flag, reply]
        self.args += list(extra_args)
        self.dump_dir = self.workdir / "dump"
        self.counter_path = self.workdir / "counters"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        sink = need("/usr/sbin/smtp-sink")
        _require_free(self.address, self.port)
        self.dump_dir.mkdir(parents=True, exist_ok=True)
        args = list(self.args)
        if self.dump:
            args += ["-d", "%Y%m%d%H%M%S."]  # relative: written in its cwd, the dump dir
        if os.geteuid() == 0:  # smtp-sink insists on dropping root; the dump dir must be its own
            nobody = pwd.getpwnam(POSTFIX_UNPRIVILEGED)
            os.chown(self.dump_dir, nobody.pw_uid, nobody.pw_gid)
            args += ["-u", POSTFIX_UNPRIVILEGED]
        with open(self.counter_path, "wb") as out, open(self.workdir / "stderr", "wb") as err:
            self._proc = subprocess.Popen([sink, *args, f"{self.address}:{self.port}", "128"], cwd=self.dump_dir,
                                          stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        wait_until(lambda: self._proc is not None and (self._proc.poll() is not None
                                                      or _accepts(self.address, self.port)),
                   15, f"smtp-sink on {self.address}:{self.port}", lambda: _tail(self.workdir / "stderr"))
        if self._proc.poll() is not None:
            raise AssertionError(f"smtp-sink exited: {_tail(self.workdir / 'stderr')}")

    def stop(self) -> None:
        _stop_child(self._proc)
        self._proc = None

    def counters(self) -> dict[str, int]:
        """The last counter line (-c): sess (sessions), quit (QUITs), mesg (messages ended with ".")."""
        try:
            with open(self.counter_path, "rb") as f:  # grows by a line per event: read only its end
                f.seek(max(0, f.seek(0, os.SEEK_END) - 512))
                text = f.read().decode(errors="replace")
        except FileNotFoundError:
            text = ""
        last = next((line for line in reversed(re.split(r"[\r\n]", text)) if "mesg=" in line), "")
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", last)} or {"sess": 0, "quit": 0, "mesg": 0}

    def count(self) -> int:
        return self.counters().get("mesg", 0)

    def messages(self) -> list[SinkMessage]:
        """Dumped transactions, oldest first (needs dump=True)."""
        files = sorted(self.dump_dir.iterdir(), key=lambda f: (f.stat().st_mtime_ns, f.name))
        dumps = (_parse_dump(f.read_bytes()) for f in files if f.is_file())
        return [d for d in dumps if d is not None]

    def wait_for(self, count: int, timeout: float = 30) -> list[SinkMessage]:
        """Wait until `count` messages have ended with "."; return the dumps (empty without dump)."""
        wait_until(lambda: self.count() >= count and (not self.dump or len(self.messages()) >= count), timeout,
                   f"{count} message(s) at smtp-sink {self.address}:{self.port}",
                   lambda: f"counters: {self.counters()}")
        return self.settled() if self.dump else []

    def settled(self) -> list[SinkMessage]:
        """The dumps once two reads 0.1 s apart agree: none is still being written."""
        last = self.messages()
        while True:
            time.sleep(0.1)
            now = self.messages()
            if now == last:
                return now
            last = now


# --- thin fixtures (see the module docstring) -----------------------------------------------------------------


# --- clamd: the virus scanner, with signatures of our own -------------------------------------------------

# The EICAR test file (not a virus), built from halves so this file is not reported by scanners itself.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
MARKER = b"DIZIMAIL-TEST-VIRUS-MARKER"  # any file holding these bytes is "infected" for ClamdPeer


class ClamdPeer(_Peer):
    """ClamAV's clamd on a loopback TCP port with a signature database generated here (there is no
    network for freshclam): EICAR by its MD5 (``Dizimail-Test.EICAR``) and ``MARKER`` anywhere in a
    file (``Dizimail-Test.Marker``), found in archives nested up to 10 deep. Starting takes a second."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = Path(workdir).absolute()
        self.port = port
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        clamd = need("/usr/sbin/clamd")
        _require_free("127.0.0.1", self.port)
        db = self.workdir / "db"
        db.mkdir(parents=True, exist_ok=True)
        (db / "dizimail-test.hdb").write_text(f"{hashlib.md5(EICAR).hexdigest()}:{len(EICAR)}:Dizimail-Test.EICAR\n")
        (db / "dizimail-test.ndb").write_text(f"Dizimail-Test.Marker:0:*:{MARKER.hex()}\n")
        conf = self.workdir / "clamd.conf"
        scratch = self.workdir / "tmp"  # its INSTREAM files: a clamd the tests kill leaves them here, not in /tmp
        scratch.mkdir(exist_ok=True)
        lines = ["Foreground yes", f"TCPSocket {self.port}", "TCPAddr 127.0.0.1", f"DatabaseDirectory {db}",
                 f"TemporaryDirectory {scratch}",
                 f"LogFile {self.workdir / 'clamd.log'}", f"PidFile {self.workdir / 'clamd.pid'}", "ScanArchive yes",
                 "MaxRecursion 24", "SelfCheck 3600"]
        if os.geteuid() == 0:
            lines.append("User root")  # its default, clamav, could not read a private tmp_path
        conf.write_text("".join(f"{line}\n" for line in lines))
        with open(self.workdir / "clamd.stderr", "wb") as stderr:
            self._proc = subprocess.Popen([clamd, "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=stderr,
                                          stderr=stderr)
        wait_until(lambda: self._proc is not None and (self._proc.poll() is not None or _accepts("127.0.0.1", self.port)),
                   60, f"clamd on {self.address}", self.diagnostics)
        if self._proc.poll() is not None:
            raise AssertionError(f"clamd exited with {self._proc.returncode}\n{self.diagnostics()}")

    def stop(self) -> None:
        _stop_child(self._proc)
        self._proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash: no goodbye to its clients."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)
            self._proc = None
        (self.workdir / "clamd.pid").unlink(missing_ok=True)

    def diagnostics(self) -> str:
        return f"--- stderr ---\n{_tail(self.workdir / 'clamd.stderr')}\n--- log ---\n{_tail(self.workdir / 'clamd.log')}"


def free_port() -> int:
    return free_ports(1)[0]


def free_dns_port() -> int:
    """A loopback port free for both UDP and TCP (dnsmasq needs both). An ephemeral TCP port alone
    may be some process's UDP source port of the moment (a resolver's query), and dnsmasq would
    then fail to bind."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no port free for both UDP and TCP")


@pytest.fixture(name="postfix_peer")
def postfix_peer_fixture(tmp_path: Path) -> Iterator[PostfixPeer]:
    """Postfix for outside.test with alice@ and bob@, refuse.test (550) and defer.test (450), no routes."""
    with PostfixPeer(tmp_path / "postfix", free_port(),
                     mailboxes=("alice@outside.test", "bob@outside.test")) as peer:
        yield peer


@pytest.fixture(name="dnsmasq_peer")
def dnsmasq_peer_fixture(tmp_path: Path) -> Iterator[DnsmasqPeer]:
    """dnsmasq with no records yet: call update() or add()."""
    with DnsmasqPeer(tmp_path / "dns", free_dns_port()) as peer:
        yield peer


@pytest.fixture(name="smtp_sink_peer")
def smtp_sink_peer_fixture(tmp_path: Path) -> Iterator[SmtpSinkPeer]:
    """smtp-sink accepting and dumping everything."""
    with SmtpSinkPeer(tmp_path / "sink", free_port()) as peer:
        yield peer
