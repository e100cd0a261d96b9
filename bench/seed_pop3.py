"""Top up mailbench's read users to N messages each, counting over POP3 (dizimail has no IMAP yet).

The messages are mailbench's own (``seed_message`` from ../shared/bench/mailbench.py, imported at
run time), so both targets hold the same mail. Usage:

    python3 bench/seed_pop3.py --smtp-port 13025 --pop3-port 13110 [--first 4801 --last 5000 --per-user 25]
"""

from __future__ import annotations

import argparse
import poplib
import random
import smtplib
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared" / "bench"))
from mailbench import seed_message  # the stdlib-only harness beside the repo


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--smtp-port", type=int, required=True)
    p.add_argument("--pop3-port", type=int, required=True)
    p.add_argument("--first", type=int, default=4801)
    p.add_argument("--last", type=int, default=5000)
    p.add_argument("--per-user", type=int, default=25)
    a = p.parse_args()

    def count(n: int) -> int:
        c = poplib.POP3(a.host, a.pop3_port, timeout=30)
        c.user(f"user{n:04d}@example.test")
        c.pass_(f"pw-user{n:04d}")
        have = c.stat()[0]
        c.quit()
        return have

    def top_up(n: int) -> int:
        have = count(n)
        addr = f"user{n:04d}@example.test"
        with smtplib.SMTP(a.host, a.smtp_port, timeout=60) as s:
            for i in range(have, a.per_user):
                s.sendmail("seed@example.net", [addr], seed_message(random.Random(n * 100003 + i), addr, i))
        return max(0, a.per_user - have)

    with ThreadPoolExecutor(8) as ex:
        sent = sum(ex.map(top_up, range(a.first, a.last + 1)))
        short = [n for n, c in zip(range(a.first, a.last + 1), ex.map(count, range(a.first, a.last + 1)),
                                   strict=True) if c < a.per_user]
    print(f"seed: sent {sent}, users short of {a.per_user}: {len(short)}")
    return 1 if short else 0


if __name__ == "__main__":
    sys.exit(main())
