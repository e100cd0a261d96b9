"""The content filter on mail it has not seen (issue #10): train, score, report.

    .venv/bin/python bench/spam_eval.py [--corpus DIR] [--split dev|years]

DIR is the unpacked ../shared/corpus tarball (default: unpacks it to /tmp/dizimail-corpus). ``dev``:
train on ``train``, score ``dev``; ``time``: train on the oldest 70 % by Date:, score the newest 30 % (the corpus holds one 2003 message,
so "train on 2002, test on 2003" has nothing to test). Prints accuracy at
5, spam recall at 5/7/9, ham at or above 5/7/9 (the costly mistakes), ROC AUC, and scoring speed
(tokenising included, one core). Uses dizimail's own tokenizer and model, in memory.
"""

from __future__ import annotations

import argparse
import csv
import email.utils
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from dizimail.services.content.bayes import Model  # noqa: E402
from dizimail.services.content.tokens import tokenize  # noqa: E402

SHARED = HERE.parent.parent / "shared" / "corpus"


def corpus(path: Path | None) -> Path:
    if path is not None:
        return path
    target = Path("/tmp/dizimail-corpus")
    if not (target / "spamassassin-public" / "index.tsv").exists():
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(["tar", "xzf", str(SHARED / "spamassassin-public.tar.gz"), "-C", str(target)], check=True)
    return target / "spamassassin-public"


def rows(root: Path) -> list[dict[str, str]]:
    with open(root / "index.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def sent(path: Path) -> float:
    """The Date: of a message as a timestamp (0 when there is none or it does not parse)."""
    head = path.read_bytes().split(b"\n\n", 1)[0].decode("latin-1")
    for line in head.splitlines():
        if line.lower().startswith("date:"):
            try:
                stamp = email.utils.parsedate_to_datetime(line[5:].strip()).timestamp()
            except (TypeError, ValueError, IndexError, OverflowError):
                return 0.0
            return stamp if 946684800 <= stamp <= 1104537600 else 0.0  # 2000-2004, else not believed
    return 0.0


def auc(scores: list[tuple[float, bool]]) -> float:
    """P(a random spam scores above a random ham), ties half."""
    ranked = sorted(scores)
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        mid = (i + j + 1) / 2.0
        rank_sum += mid * sum(1 for k in range(i, j) if ranked[k][1])
        i = j
    pos = sum(1 for _, s in scores if s)
    neg = len(scores) - pos
    return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg) if pos and neg else float("nan")


def report(name: str, results: list[tuple[float, bool]], seconds: float) -> dict[str, float]:
    spam = [s for s, is_spam in results if is_spam]
    ham = [s for s, is_spam in results if not is_spam]
    out = {"messages": len(results), "spam": len(spam), "ham": len(ham),
           "accuracy_at_5": sum((s >= 5) == is_spam for s, is_spam in results) / len(results),
           **{f"spam_recall_at_{t}": sum(s >= t for s in spam) / len(spam) for t in (5, 7, 9)},
           **{f"ham_at_or_above_{t}": sum(s >= t for s in ham) for t in (5, 7, 9)},
           "auc": auc(results), "msgs_per_s": len(results) / seconds}
    print(f"{name}: " + ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in out.items()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path)
    ap.add_argument("--split", choices=("dev", "time"), default="dev")
    ap.add_argument("--worst", type=int, default=0, help="print the N worst-scored ham and spam")
    args = ap.parse_args()
    root = corpus(args.corpus)
    table = rows(root)
    if args.split == "dev":
        train = [r for r in table if r["split"] == "train"]
        test = [r for r in table if r["split"] == "dev"]
    else:  # how it ages: the corpus is nearly all 2002 (one 2003 message), so by date, oldest 70 % first
        dated = sorted(table, key=lambda r: sent(root / r["path"]))
        cut = len(dated) * 7 // 10
        train, test = dated[:cut], dated[cut:]
        print(f"train: sent up to {time.strftime('%Y-%m-%d', time.gmtime(sent(root / train[-1]['path'])))}; "
              f"test: after")
    model = Model()
    started = time.perf_counter()
    for r in train:
        model.learn(tokenize((root / r["path"]).read_bytes()), r["label"] == "spam")
    print(f"trained on {len(train)} ({model.nspam} spam, {model.nham} ham) in {time.perf_counter() - started:.1f} s; "
          f"{len(model.counts)} tokens")
    data = [((root / r["path"]).read_bytes(), r["label"] == "spam", r["path"]) for r in test]
    started = time.perf_counter()
    scored = [(model.score(tokenize(raw))[0], is_spam, path) for raw, is_spam, path in data]
    seconds = time.perf_counter() - started
    report(f"{args.split} ({len(test)})", [(s, is_spam) for s, is_spam, _ in scored], seconds)
    if args.worst:
        ham = sorted((x for x in scored if not x[1]), reverse=True)[:args.worst]
        spam = sorted(x for x in scored if x[1])[:args.worst]
        for s, _, path in ham + spam:
            print(f"  {s:5.2f} {path}")


if __name__ == "__main__":
    main()
