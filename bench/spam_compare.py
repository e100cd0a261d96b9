"""dizimail's content filter side by side with SpamAssassin and bogofilter (issue #10), same splits.

    .venv/bin/python bench/spam_compare.py [--split dev|time] [--only dizimail,bogofilter,spamassassin]

As root: installs Debian's ``spamassassin``, ``spamd``, ``spamc`` and ``bogofilter`` with apt-get if missing. Each filter is
trained on the same training messages and scores the same test messages:

- dizimail: its real command line, ``dizimail spam train`` then ``dizimail spam score`` (one process),
  on a scratch data directory (``dizimail init``);
- bogofilter: ``-n``/``-s`` registration in bulk (``-B``), then ``-T -B`` (its score 0-1 times 10);
- SpamAssassin: local rules and Bayes only (no network tests, no auto-learning), trained with
  ``sa-learn``, scoring through ``spamd`` and ``spamc -c`` (4 in parallel); its own scale, where 5 is
  its default spam threshold (7 and 9 are reported on its scale as they are).

Prints, per filter: accuracy at 5, spam recall at 5/7/9, ham at or above 5/7/9, ROC AUC, messages/s
(scoring only). Results as JSON lines with --out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from spam_eval import corpus, report, rows, sent  # noqa: E402

DZ = str(HERE.parent / ".venv/bin/dizimail")


def split(root: Path, kind: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    table = rows(root)
    if kind == "dev":
        return [r for r in table if r["split"] == "train"], [r for r in table if r["split"] == "dev"]
    dated = sorted(table, key=lambda r: sent(root / r["path"]))
    cut = len(dated) * 7 // 10
    return dated[:cut], dated[cut:]


def linked(root: Path, rows_: list[dict[str, str]], into: Path) -> dict[str, Path]:
    """The messages as files under ``into/ham`` and ``into/spam`` (hard links), by corpus path."""
    out = {}
    for r in rows_:
        target = into / r["label"] / r["path"].replace("/", "_")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(root / r["path"], target)
        out[r["path"]] = target
    return out


def run_dizimail(work: Path, train: Path, test: dict[str, Path]) -> tuple[dict[str, float], float]:
    data = work / "dz"
    subprocess.run([DZ, "init", "--data-dir", str(data), "--port-base", "40000", "--domain", "bench.test"],
                   check=True, capture_output=True)
    config = str(data / "dizimail.toml")
    subprocess.run([DZ, "spam", "train", "--ham", str(train / "ham"), "--spam", str(train / "spam"), "--config",
                    config], check=True, capture_output=True)
    started = time.perf_counter()
    out = subprocess.run([DZ, "spam", "score", *map(str, test.values()), "--config", config], check=True,
                         capture_output=True, text=True).stdout
    seconds = time.perf_counter() - started
    by_file = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in out.splitlines() if line}
    return {k: by_file[str(v)] for k, v in test.items()}, seconds


def run_bogofilter(work: Path, train: Path, test: dict[str, Path]) -> tuple[dict[str, float], float]:
    db = work / "bogo"
    db.mkdir()
    for label, flag in (("ham", "-n"), ("spam", "-s")):
        files = sorted(str(p) for p in (train / label).iterdir())
        subprocess.run(["bogofilter", "-d", str(db), flag, "-B", *files], check=True)
    started = time.perf_counter()
    out = subprocess.run(["bogofilter", "-d", str(db), "-T", "-B", *map(str, test.values())],
                         capture_output=True, text=True).stdout
    seconds = time.perf_counter() - started
    by_file = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            by_file[parts[0]] = float(parts[2]) * 10
    return {k: by_file[str(v)] for k, v in test.items()}, seconds


SA_PREFS = """use_bayes 1
bayes_auto_learn 0
bayes_path {db}/bayes
skip_rbl_checks 1
use_razor2 0
use_pyzor 0
dns_available no
required_score 5.0
"""


def run_spamassassin(work: Path, train: Path, test: dict[str, Path]) -> tuple[dict[str, float], float]:
    db = work / "sa"
    db.mkdir()
    for pre in Path("/etc/spamassassin").glob("*.pre"):  # the plugin loads; local.cf is ours
        shutil.copy(pre, db / pre.name)
    (db / "local.cf").write_text(SA_PREFS.format(db=db))
    for label in ("ham", "spam"):
        subprocess.run(["sa-learn", "--local", "--siteconfigpath", str(db), f"--{label}", str(train / label)],
                       check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    user: list[str] = []
    if os.geteuid() == 0:  # spamd refuses to run its children as root: Debian's debian-spamd reads our files
        user = ["-u", "debian-spamd"]
        for path in (work, db, *db.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)
    spamd = subprocess.Popen(["spamd", "--local", "--listen", f"127.0.0.1:{port}", "--max-children", "4", *user,
                              "--siteconfigpath", str(db), "--nouser-config", "--pidfile", str(db / "pid")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.2)
        def score(path: Path) -> float:
            out = subprocess.run(["spamc", "-d", "127.0.0.1", "-p", str(port), "-c"], stdin=open(path, "rb"),
                                 capture_output=True, text=True).stdout.strip()
            return float(out.split("/")[0]) if "/" in out else 0.0
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            scores = dict(zip(test, pool.map(score, test.values()), strict=True))
        return scores, time.perf_counter() - started
    finally:
        spamd.terminate()
        spamd.wait(30)


RUNNERS = {"dizimail": run_dizimail, "bogofilter": run_bogofilter, "spamassassin": run_spamassassin}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path)
    ap.add_argument("--split", choices=("dev", "time"), default="dev")
    ap.add_argument("--only", default=",".join(RUNNERS))
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    need = [p for p, b in (("spamassassin", "sa-learn"), ("spamd", "spamd"), ("spamc", "spamc"),
                           ("bogofilter", "bogofilter")) if shutil.which(b) is None]
    if need:
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *need], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    root = corpus(args.corpus)
    train_rows, test_rows = split(root, args.split)
    label = {r["path"]: r["label"] == "spam" for r in test_rows}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        train = work / "train"
        linked(root, train_rows, train)
        test = linked(root, test_rows, work / "test")
        for name in args.only.split(","):
            scores, seconds = RUNNERS[name](work, train, test)
            result = report(f"{name} {args.split}", [(scores[p], label[p]) for p in test], seconds)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps({"filter": name, "split": args.split, **result}) + "\n")


if __name__ == "__main__":
    main()
