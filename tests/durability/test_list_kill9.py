"""Nothing lost for a mailing list either: posts acknowledged before a SIGKILL are, after the restart, in
every member's mailbox, once (the post's copies are one transaction committed before the 250)."""

from __future__ import annotations

import re
import signal
import smtplib
import sqlite3
import threading
import uuid
from collections import Counter
from pathlib import Path

from conftest import DOMAIN, dizimail_cli, write_config
from processes import ServerProcess

MEMBERS = 200
SENDERS = 4
KILL_AFTER = 20
LIST = f"everyone@{DOMAIN}"
MARKER = re.compile(rb"^marker (\S+)\r?$", re.M)


def test_sigkill_loses_no_acknowledged_list_post(tmp_path: Path) -> None:
    config_file, ports = write_config(tmp_path / "data")
    csv_file = tmp_path / "users.csv"
    csv_file.write_text("".join(f"m{no:03d}@{DOMAIN},list-kill9-pw\n" for no in range(MEMBERS)))
    dizimail_cli(config_file, "user", "import", str(csv_file))
    dizimail_cli(config_file, "list", "add", LIST, "--policy", "anyone", "--member", f"@{DOMAIN}")
    log_path = tmp_path / "server.log"
    acked: set[str] = set()
    lock, reached, stop = threading.Lock(), threading.Event(), threading.Event()
    errors: list[str] = []

    def sender(no: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=30) as smtp:
                while not stop.is_set():
                    marker = f"p{no}-{uuid.uuid4().hex[:12]}"
                    smtp.sendmail(f"s{no}@outside.test", [LIST], (
                        f"From: s{no}@outside.test\r\nTo: {LIST}\r\nSubject: post {marker}\r\n\r\n"
                        f"marker {marker}\r\n").encode())
                    with lock:
                        acked.add(marker)
                        if len(acked) >= KILL_AFTER:
                            reached.set()
        except (smtplib.SMTPException, OSError) as exc:
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")

    first = ServerProcess(config_file, log_path)
    try:
        first.wait_ready()
        threads = [threading.Thread(target=sender, args=(no,), daemon=True) for no in range(SENDERS)]
        for t in threads:
            t.start()
        assert reached.wait(120), f"only {len(acked)} posts acknowledged; errors={errors[:3]}\n{first.tail()}"
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
        stop.set()
        for t in threads:
            t.join(30)
    finally:
        first.kill()
    with lock:
        done = set(acked)
    assert errors, "no sender noticed the kill"

    second = ServerProcess(config_file, log_path)
    try:
        second.wait_ready()
        config_dir = config_file.parent
        with sqlite3.connect(config_dir / "dizimail.db") as conn:
            rows = conn.execute("SELECT blob_id, count(*), count(DISTINCT mailbox_id) FROM messages "
                                "GROUP BY blob_id").fetchall()
        found: Counter[str] = Counter()
        for blob_id, copies, boxes in rows:
            data = (config_dir / "blobs" / blob_id[:2] / blob_id).read_bytes()
            markers = MARKER.findall(data)
            assert len(markers) == 1, data[:300]
            assert copies == boxes == MEMBERS, f"post {markers[0]!r}: {copies} copies in {boxes} mailboxes"
            found[markers[0].decode()] += 1
        missing = sorted(m for m in done if not found[m])
        print(f"\nlist kill9: acknowledged={len(done)} stored={len(found)} missing={len(missing)}")
        assert not missing, f"acknowledged but lost: {missing[:5]}\n{second.tail()}"
        assert all(n == 1 for n in found.values()), "a post stored twice"
    finally:
        second.stop()
