"""The node's memory under a long fuzz run over SMTP, POP3 and IMAP, and whether it comes back afterwards.

    .venv/bin/python bench/fuzz_memory.py [--sessions 400] [--lines 1000] [--parallel 16]

Starts `dizimail serve` as a subprocess on a fresh data directory (plaintext logins allowed from
loopback, lockout off, so the fuzzer reaches the logged-in states), runs the seeded fuzzer of
tests/fuzzing.py against it, and prints the server's RSS (VmRSS of the node process) before, at its
peak (sampled every 50 ms) and 15 s after the load stopped, plus the lines sent per second.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fuzzing import fuzz, scenarios

BIN = Path(sys.executable).parent
PASSWORD = "fuzz-password"
SERVICES = ("smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps")


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+)", text)
    return int(match.group(1)) if match else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=400, help="sessions per scenario (6 scenarios)")
    parser.add_argument("--lines", type=int, default=1000, help="fuzzed lines per session")
    parser.add_argument("--parallel", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--hold", type=float, default=0, help="seconds to keep the node running at the end")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="dz-fuzz-"))
    subprocess.run([str(BIN / "dizimail"), "init", "--data-dir", str(data), "--domain", "fuzz.test",
                    "--hostname", "mx.fuzz.test"], check=True, capture_output=True)
    config = data / "dizimail.toml"
    ports = {name: free_port() for name in SERVICES}
    text = config.read_text()
    for name, port in ports.items():
        text = re.sub(rf'(\[listeners\.{name}\]\naddress = "[^"]*"\nport = )\d+', rf"\g<1>{port}", text)
    text += ('\n[auth]\nargon2_time_cost = 1\nargon2_memory_cost = 1024\nfail_threshold = 100000000\n'
             'plaintext_networks = ["127.0.0.0/8"]\n[limits]\nmax_connections_per_ip = 100000\n'
             'max_bad_commands = 100\ncommand_timeout = "20s"\n')
    text = text.replace("[storage]\n", '[storage]\nsweep_interval = "5s"\n')  # the periodic allocator trim
    config.write_text(text)
    user = "fuzzed@fuzz.test"
    subprocess.run([str(BIN / "dizimail"), "user", "add", user, "--password", PASSWORD, "--config", str(config)],
                   check=True, capture_output=True)
    proc = subprocess.Popen([str(BIN / "dizimail"), "serve", "--config", str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "ready":
                break
        time.sleep(1)
        before = rss_kib(proc.pid)
        peak = before
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, rss_kib(proc.pid))
                time.sleep(0.05)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()

        def progress(sent: int) -> None:
            if sent % (args.lines * 200) == 0:
                print(f"  {sent:,} lines, RSS {rss_kib(proc.pid) / 1024:.0f} MiB", flush=True)
        sent = asyncio.run(fuzz(scenarios(ports, user, PASSWORD), seed=args.seed, sessions=args.sessions,
                                lines=args.lines, parallel=args.parallel, progress=progress))
        elapsed = time.monotonic() - started
        stop.set()
        sampler.join()
        time.sleep(15)
        after = rss_kib(proc.pid)
        if args.hold:
            print(f"holding: server pid {proc.pid}", flush=True)
            time.sleep(args.hold)
        print(f"fuzz: {sent:,} lines in {elapsed:.1f} s ({sent / elapsed:,.0f} lines/s), {args.parallel} sessions at once")
        print(f"node RSS: before {before / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, "
              f"15 s after {after / 1024:.1f} MiB")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            print("the node did not stop within 30 s of SIGTERM", flush=True)
            proc.kill()
            proc.wait()
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
