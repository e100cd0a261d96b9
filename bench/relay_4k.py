"""Outbound relay side by side (issue #4): dizimail and Postfix relay the same load to a Postfix smtp-sink.

    .venv/bin/python bench/relay_4k.py [--messages 5000] [--rounds 3] [--raw DIR]   # as root

Each MTA relays sink.test to its own `smtp-sink -c` (counts only) on loopback (dizimail: `route add`; Postfix:
../shared/reference/up.sh with RELAYHOST). A run injects N 4 KiB messages with smtp-source (20 sessions, one
connection per message), from its start until the sink has counted N more; runs alternate dizimail, Postfix, ...
Both start each run with an empty queue and log as by default (dizimail INFO, Postfix maillog).
accept_s: until smtp-source had every 250. connections: sink sessions once idle ones closed; reused = msgs -
connections. logged: delivery lines in the MTA's log. CPU: seconds per process tree; cores = server CPU / wall;
other = the rest of the machine (noise).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DZ = str(HERE.parent / ".venv/bin/dizimail")
REF = HERE.parent.parent / "shared/reference"
TCK = os.sysconf("SC_CLK_TCK")


def cpu_busy() -> float:
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(f[:3]) + sum(f[5:8])) / TCK  # user nice system irq softirq steal


def tree_cpu(root: int) -> float:
    """CPU seconds of root and its live descendants, plus what their reaped children left in cutime/cstime."""
    kids: dict[int, list[int]] = {}
    stat: dict[int, list[str]] = {}
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat[int(d)] = f = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(f[1]), []).append(int(d))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += sum(int(x) for x in stat.get(pid, ["0"] * 15)[11:15])
        todo += kids.get(pid, [])
    return total / TCK


def wait(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            sys.exit(f"timeout: {what}")
        time.sleep(0.2)


class Sink:
    def __init__(self, work: Path, port: int) -> None:
        self.port, self.out = port, work / f"sink-{port}.out"
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(["/usr/sbin/smtp-sink", "-c", "-u", "nobody", "-h", "sink.test",
                                          f"127.0.0.1:{port}", "256"], stdout=out, stderr=subprocess.STDOUT)
        wait(lambda: self.proc.poll() is not None or self.connected(listening=True), 10, f"smtp-sink :{port}")
        assert self.proc.poll() is None, self.out.read_text()

    def counters(self) -> dict[str, int]:  # -c rewrites "sess=N quit=N mesg=N" after each session end and "."
        with open(self.out, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 256))
            lines = [x for x in re.split(r"[\r\n]", f.read().decode()) if re.search(r"mesg=\d", x)]  # not a half-written one
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])} if lines else {"sess": 0, "mesg": 0}

    def connected(self, listening: bool = False) -> int:
        state = "listening" if listening else "established"
        return len(subprocess.run(["ss", "-Htn", "state", state, f"( sport = :{self.port} )"],
                                  capture_output=True, text=True).stdout.splitlines())


def run_once(name: str, port: int, pid: int, sink: Sink, empty, log: Path, pattern: str, a) -> dict:
    wait(empty, 120, f"{name}: queue empty before the run")
    wait(lambda: sink.connected() == 0, 30, f"{name}: old connections to the sink closed")
    base, log0, c0 = sink.counters(), log.stat().st_size, sum(os.times()[2:4])
    cpu0, srv0, sink0 = cpu_busy(), tree_cpu(pid), tree_cpu(sink.proc.pid)
    t0, t_acc = time.monotonic(), 0.0
    src = subprocess.Popen(["/usr/sbin/smtp-source", "-s", str(a.sessions), "-l", str(a.size), "-m", str(a.messages),
                            "-f", "sender@example.test", "-t", "rcpt@sink.test", f"127.0.0.1:{port}"])
    while (got := sink.counters()["mesg"] - base["mesg"]) < a.messages:
        if not t_acc and src.poll() is not None:
            t_acc = time.monotonic() - t0
        if time.monotonic() - t0 > a.timeout:
            sys.exit(f"{name}: only {got} of {a.messages} at the sink after {a.timeout}s")
        time.sleep(0.005)
    wall = time.monotonic() - t0
    cpu, srv, snk = cpu_busy() - cpu0, tree_cpu(pid) - srv0, tree_cpu(sink.proc.pid) - sink0
    src.wait()
    t_acc, cli = t_acc or time.monotonic() - t0, sum(os.times()[2:4]) - c0
    wait(lambda: sink.connected() == 0, 30, f"{name}: idle connections closed after the run")
    sess = sink.counters()["sess"] - base["sess"]
    logged = len(re.findall(pattern, log.read_bytes()[log0:].decode(errors="replace")))
    r = dict(target=name, msgs=got, wall_s=round(wall, 2), msgs_per_s=round(got / wall, 1), accept_s=round(t_acc, 2),
             connections=sess, reused=got - sess, logged=logged, server_cpu_ms_per_msg=round(1000 * srv / got, 2),
             cores=round(srv / wall, 2), sink_cpu_s=round(snk, 2), client_cpu_s=round(cli, 2),
             other_cpu_s=round(max(0.0, cpu - srv - snk - cli), 2))
    print(" ".join(f"{k}={v}" for k, v in r.items()), flush=True)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for flag, default in (("messages", 5000), ("rounds", 3), ("sessions", 20), ("size", 4096), ("dz-base", 23000),
                          ("pf-base", 24000), ("sink-base", 25900), ("timeout", 300)):
        ap.add_argument(f"--{flag}", type=int, default=default)  # sinks on sink-base +1 (dizimail), +2 (Postfix)
    ap.add_argument("--raw", type=Path, help="write runs.jsonl and both MTAs' configs here")
    ap.add_argument("--runner", choices=["inline", "process"], default="process", help="dizimail delivery.runner")
    ap.add_argument("--smtp-workers", type=int, default=0, help="dizimail server.smtp_workers")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dzrelay.", dir="/tmp"))
    os.chmod(work, 0o755)
    sinks, serve, pf, d = [Sink(work, a.sink_base + 1), Sink(work, a.sink_base + 2)], None, work / "pf", work / "dz"
    try:
        conf = d / "dizimail.toml"
        subprocess.run([DZ, "init", "--data-dir", str(d), "--port-base", str(a.dz_base), "--hostname", "bench.test"],
                       check=True, stdout=subprocess.DEVNULL)
        text = conf.read_text()  # loopback may relay without AUTH: benchmark config only
        text = text.replace('runner = "process"\n', "")  # written by init; the run chooses
        keys = f'concurrency = 20\ndestination_concurrency = 20\nrunner = "{a.runner}"\n'
        text = text.replace("[delivery]\n", "[delivery]\n" + keys, 1) if "[delivery]\n" in text else \
            text + "\n[delivery]\n" + keys
        text = text.replace("[server]\n", f"[server]\nsmtp_workers = {a.smtp_workers}\n", 1)
        conf.write_text(text + '\n[smtp]\ntrusted_networks = ["127.0.0.1/32"]\n')
        subprocess.run([DZ, "route", "add", "sink.test", f"127.0.0.1:{sinks[0].port}", "--config", str(conf)],
                       check=True, stdout=subprocess.DEVNULL)
        with open(work / "dz.log", "wb") as err:
            serve = subprocess.Popen([DZ, "serve", "--config", str(conf)], stdout=subprocess.PIPE, stderr=err)
        while (line := serve.stdout.readline()) and line.strip() != b"ready":  # type: ignore[union-attr]
            pass
        assert line, f"dizimail did not start; see {work / 'dz.log'}"
        env = dict(os.environ, RELAYHOST=f"[127.0.0.1]:{sinks[1].port}", USERS="1", PWSCHEME="PLAIN", FRESH="1")
        subprocess.run([str(REF / "up.sh"), str(pf), str(a.pf_base)], env=env, check=True, stdout=subprocess.DEVNULL)
        pf_pid = int((pf / "spool/pid/master.pid").read_text().split()[0])
        out = lambda *cmd: subprocess.run(cmd, capture_output=True, text=True).stdout.strip()  # noqa: E731
        print(f"N={a.messages} size={a.size} sessions={a.sessions} rounds={a.rounds} cpus={os.cpu_count()} "
              f"dizimail={out('git', '-C', str(HERE), 'rev-parse', '--short', 'HEAD')} "
              f"postfix={out('postconf', '-h', 'mail_version')} load={os.getloadavg()[0]:.2f}", flush=True)
        sides = {"dizimail": (a.dz_base + 25, serve.pid, sinks[0], lambda: "\n0 messages in queue" in out(
                     DZ, "queue", "list", "--config", str(conf)), work / "dz.log", r"queue\.delivery\.delivered "),
                 "postfix": (a.pf_base + 25, pf_pid, sinks[1], lambda: "Mail queue is empty" in out(
                     "postqueue", "-c", str(pf / "postfix"), "-p"), pf / "log/postfix.log", r" status=sent ")}
        runs: dict[str, list[dict]] = {k: [] for k in sides}
        for _ in range(a.rounds):
            for name, args in sides.items():
                runs[name].append(run_once(name, *args, a))
        med = {k: statistics.median(r["msgs_per_s"] for r in v) for k, v in runs.items()}
        for k, v in runs.items():
            print(f"{k:9} msg/s {[r['msgs_per_s'] for r in v]} median {med[k]:.1f}; wall s {[r['wall_s'] for r in v]}; "
                  f"server CPU ms/msg {[r['server_cpu_ms_per_msg'] for r in v]}; cores {[r['cores'] for r in v]}")
        print(f"ratio dizimail/postfix (medians): {med['dizimail'] / med['postfix']:.2f}x (target >= 1.0x)")
        if a.raw:
            a.raw.mkdir(parents=True, exist_ok=True)
            (a.raw / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for v in runs.values() for r in v))
            shutil.copy(conf, a.raw / "dizimail.toml")
            shutil.copy(pf / "postfix/main.cf", a.raw / "postfix-main.cf")
    finally:
        if serve is not None:
            serve.terminate()
            serve.wait(30)
        subprocess.run([str(REF / "down.sh"), str(pf)], stdout=subprocess.DEVNULL)
        for s in sinks:
            s.proc.terminate()
            s.proc.wait(10)
        print(f"work dir (logs): {work}")


if __name__ == "__main__":
    main()
