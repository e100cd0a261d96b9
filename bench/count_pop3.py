"""Print the total number of messages held by users FIRST..LAST (mailbench's user naming), over POP3."""

from __future__ import annotations

import argparse
import poplib
from concurrent.futures import ThreadPoolExecutor


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--first", type=int, required=True)
    p.add_argument("--last", type=int, required=True)
    a = p.parse_args()

    def count(n: int) -> int:
        c = poplib.POP3(a.host, a.port, timeout=30)
        c.user(f"user{n:04d}@example.test")
        c.pass_(f"pw-user{n:04d}")
        have = c.stat()[0]
        c.quit()
        return have

    with ThreadPoolExecutor(8) as ex:
        print(sum(ex.map(count, range(a.first, a.last + 1))))


if __name__ == "__main__":
    main()
