"""The "nothing lost" proof: SIGKILL the server mid-stream, restart it, and find every acknowledged message.

RFC 5321 §6.1: once the server has answered 250 to the end of data, it has taken responsibility for the
message. A message acknowledged before the kill must be in its mailbox exactly once after restart; a message
whose 250 never reached the client may be missing or (tolerably) present.
"""

from __future__ import annotations

import poplib
import re
import signal
import smtplib
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import DOMAIN, client_tls, dizimail_cli, write_config
from processes import ServerProcess

USERS = 20
PER_SENDER = 50
KILL_AFTER = 300  # acknowledged messages before the SIGKILL
PASSWORD = "kill9-password"
MARKER_LINE = re.compile(rb"^marker (\S+)\r?$", re.M)
STEP_TIMEOUT = 30.0


@pytest.fixture
def processes() -> Iterator[list[ServerProcess]]:
    procs: list[ServerProcess] = []
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()


def message(sender_no: int, seq: int, marker: str) -> bytes:
    filler = "".join(f"{marker} line {i:03d} {'x' * 60}\r\n" for i in range(20))  # ~2 KB, checked on read
    return (f"From: sender{sender_no}@outside.test\r\n"
            f"To: d{sender_no:02d}@{DOMAIN}\r\n"
            f"Subject: kill9 {sender_no}/{seq}\r\n"
            f"Message-ID: <{marker}@kill9.test>\r\n"
            f"\r\n"
            f"marker {marker}\r\n"
            f"{filler}"
            f"end {marker}\r\n").encode()


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: set[str] = field(default_factory=set)
    attempted: set[str] = field(default_factory=set)
    reached: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)


def sender(no: int, port: int, tally: Tally, stop: threading.Event) -> None:
    rcpt = f"d{no:02d}@{DOMAIN}"
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=15) as smtp:
            for seq in range(PER_SENDER):
                if stop.is_set():
                    return
                marker = f"m{no:02d}-{seq:03d}-{uuid.uuid4().hex[:12]}"
                with tally.lock:
                    tally.attempted.add(marker)
                smtp.sendmail(f"sender{no}@outside.test", [rcpt], message(no, seq, marker))
                with tally.lock:  # sendmail returned: the server said 250 to the end of data
                    tally.acked.add(marker)
                    if len(tally.acked) >= KILL_AFTER:
                        tally.reached.set()
    except (smtplib.SMTPException, OSError) as exc:  # the kill: stop sending
        with tally.lock:
            tally.errors.append(f"sender {no}: {type(exc).__name__}: {exc}")


def read_mailboxes(port: int) -> dict[str, list[bytes]]:
    """Every message of every user, over POP3 with STLS (nothing deleted)."""
    boxes: dict[str, list[bytes]] = {}
    for no in range(USERS):
        pop = poplib.POP3("127.0.0.1", port, timeout=15)
        try:
            pop.stls(client_tls())
            pop.user(f"d{no:02d}@{DOMAIN}")
            pop.pass_(PASSWORD)
            count, _size = pop.stat()
            boxes[f"d{no:02d}"] = [b"\r\n".join(pop.retr(i)[1]) for i in range(1, count + 1)]
            pop.quit()
        finally:
            pop.close()
    return boxes


def test_sigkill_mid_stream_loses_no_acknowledged_message(tmp_path: Path,
                                                          processes: list[ServerProcess]) -> None:
    data_dir = tmp_path / "data"
    config_file, ports = write_config(data_dir)
    csv_file = tmp_path / "users.csv"
    csv_file.write_text("".join(f"d{no:02d}@{DOMAIN},{PASSWORD}\n" for no in range(USERS)))
    dizimail_cli(config_file, "user", "import", str(csv_file))
    log_path = tmp_path / "server.log"

    # --- run 1: 20 senders, SIGKILL after ~300 acknowledged messages ---------------------
    first = ServerProcess(config_file, log_path)
    processes.append(first)
    ready = first.wait_ready()
    assert f"listening smtp-mx 127.0.0.1:{ports['smtp']}" in ready

    tally, stop = Tally(), threading.Event()
    threads = [threading.Thread(target=sender, args=(no, ports["smtp"], tally, stop), daemon=True)
               for no in range(USERS)]
    for t in threads:
        t.start()
    assert tally.reached.wait(STEP_TIMEOUT), f"only {len(tally.acked)} acknowledged; errors={tally.errors[:3]}"
    first.proc.send_signal(signal.SIGKILL)
    with tally.lock:
        acked_at_kill = len(tally.acked)
    first.proc.wait(10)
    stop.set()
    for t in threads:
        t.join(STEP_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a sender hung after the kill"
    acked = set(tally.acked)  # no 250 can arrive after the process is gone
    attempted = set(tally.attempted)
    assert len(acked) < USERS * PER_SENDER, "the kill came after every message was sent: nothing was tested"
    assert tally.errors, "no sender noticed the kill"

    # --- run 2: same config; every acknowledged message is there, exactly once ----------
    second = ServerProcess(config_file, log_path)
    processes.append(second)
    second.wait_ready()
    boxes = read_mailboxes(ports["pop3"])

    found: Counter[str] = Counter()
    problems: list[str] = []
    for user, messages in boxes.items():
        for raw in messages:
            markers = MARKER_LINE.findall(raw)
            if len(markers) != 1:
                problems.append(f"{user}: message without exactly one marker line: {raw[:200]!r}")
                continue
            marker = markers[0].decode()
            found[marker] += 1
            if not marker.startswith(f"m{user[1:]}-"):
                problems.append(f"{user}: holds {marker}, sent to another user")
            body = message(int(user[1:]), 0, marker).split(b"\r\n\r\n", 1)[1]
            if not raw.endswith(body.rstrip(b"\r\n")):  # poplib strips the final CRLF
                problems.append(f"{user}: {marker} is incomplete or altered")

    missing = sorted(m for m in acked if found[m] == 0)
    acked_dups = sorted(m for m in acked if found[m] > 1)
    unacked_found = sorted(m for m in found if m not in acked)
    strangers = sorted(m for m in found if m not in attempted)
    dup_total = sum(n - 1 for n in found.values() if n > 1)
    report = (f"kill9: acknowledged={len(acked)} (at kill signal {acked_at_kill}) attempted={len(attempted)} "
              f"messages_found={sum(found.values())} distinct_found={len(found)} "
              f"acked_missing={len(missing)} acked_duplicated={len(acked_dups)} "
              f"unacked_found={len(unacked_found)} duplicates_total={dup_total} "
              f"sender_errors={len(tally.errors)}")
    print("\n" + report)
    assert not missing, f"{report}\nacknowledged but lost: {missing[:10]}\nlog:\n{second.tail()}"
    assert not acked_dups, f"{report}\nacknowledged but duplicated: {acked_dups[:10]}"
    assert not strangers, f"{report}\nmessages never sent: {strangers[:10]}"
    assert not problems, f"{report}\n" + "\n".join(problems[:10])

    # --- the restarted server still takes and serves new mail --------------------------
    marker = f"after-restart-{uuid.uuid4().hex[:12]}"
    with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=15) as smtp:
        assert smtp.sendmail("late@outside.test", [f"d00@{DOMAIN}"], message(0, 999, marker)) == {}
    after = read_mailboxes(ports["pop3"])["d00"]
    assert len(after) == len(boxes["d00"]) + 1
    assert sum(1 for raw in after if f"marker {marker}".encode() in raw) == 1

    log_text = log_path.read_text(errors="replace")
    assert "Traceback" not in log_text, log_text[-4000:]
