"""SIGKILL the queue runner in the middle of delivering: nothing queued is lost, nothing is sent twice
beyond the in-flight window (a remote 250 that arrived after our last commit, RFC 5321 §6.1).

300 messages wait in the queue (their destination unreachable), the route is switched to Postfix's
smtp-sink and the queue flushed; once the sink has about a quarter of them the node is killed with
SIGKILL, restarted, and left to finish. Every message must reach the sink; duplicates are counted and may
not exceed the number of deliveries that can be in flight at once.
"""

from __future__ import annotations

import re
import smtplib
import time
from collections import Counter

from conftest import dizimail_cli, free_ports, write_config
from peers import SmtpSinkPeer
from processes import ServerProcess

MESSAGES = 300
CONCURRENCY = 20
MARKER = re.compile(rb"^X-Marker: (\d+)", re.M)


def test_kill9_during_delivery_loses_nothing_and_duplicates_at_most_the_in_flight(tmp_path):
    sink_port, dead_port = free_ports(2)
    config_file, ports = write_config(tmp_path / "node", extra=(
        '\n[smtp]\ntrusted_networks = ["127.0.0.1/32"]\n'
        f'\n[delivery]\nsmarthost = "127.0.0.1:{dead_port}"\nretry_schedule = ["1s"]\npoll_interval = "0.2s"\n'
        f'destination_backoff = "0.5s"\nconcurrency = {CONCURRENCY}\ndestination_concurrency = {CONCURRENCY}\n'))
    node = ServerProcess(config_file, tmp_path / "node.log")
    try:
        node.wait_ready()
        with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=30) as s:
            for i in range(MESSAGES):
                s.sendmail("sender@example.test", [f"r{i % 7}@sink.test"],
                           f"Subject: m{i}\r\nX-Marker: {i}\r\n\r\nbody {i}\r\n".encode())
        # The sink waits a second before answering DATA, so deliveries are surely in flight at the kill.
        with SmtpSinkPeer(tmp_path / "sink", sink_port, extra_args=["-w", "1"]) as sink:
            dizimail_cli(config_file, "route", "add", "sink.test", f"127.0.0.1:{sink_port}")
            dizimail_cli(config_file, "queue", "flush")
            deadline = time.monotonic() + 60
            while sink.count() < MESSAGES // 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            at_kill = sink.count()
            node.kill()
            assert 0 < at_kill < MESSAGES, f"the kill must land mid-delivery (sink had {at_kill})"
            node = ServerProcess(config_file, tmp_path / "node.log")
            node.wait_ready()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if sink.count() >= MESSAGES and "0 messages in queue" in dizimail_cli(
                        config_file, "queue", "list").stdout:
                    break
                time.sleep(0.2)
            # The runner keeps its connections to the sink open for the next messages, and smtp-sink writes a
            # transaction's dump only when the next one (or the QUIT) comes: stop the node cleanly (it says
            # QUIT on each) before reading them, or the last message of every connection looks lost.
            node.stop()
            seen = Counter(int(m) for msg in sink.settled() for m in MARKER.findall(msg.data))
        missing = sorted(set(range(MESSAGES)) - seen.keys())
        duplicates = sum(n - 1 for n in seen.values() if n > 1)
        print(f"killed at {at_kill}/{MESSAGES} delivered; after restart: missing {len(missing)}, "
              f"duplicates {duplicates}")
        assert not missing, f"lost: {missing[:20]}"
        assert duplicates <= CONCURRENCY
    finally:
        node.kill()
