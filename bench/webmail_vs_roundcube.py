"""dizimail's webmail and Debian's Roundcube (on the reference Dovecot) side by side, on the same mailbox
(issue #13 "Speed").

    USERS=10 PWSCHEME=PLAIN ../shared/reference/up.sh /tmp/rcb/ref 23500          # as root
    USERS=10 bench/dizimail_up.sh /tmp/rcb/dz 26000
    .venv/bin/python bench/imap_roundcube.py --ref /tmp/rcb/ref/target.env --dz /tmp/rcb/dz/target.env \
        --user 2 --rounds 1                                                          # the same 20,000 messages
    bench/roundcube_up.sh /tmp/rcb/rc 28080 23643                                    # Roundcube on Dovecot
    .venv/bin/python bench/webmail_vs_roundcube.py --rc http://127.0.0.1:28080 --dz https://127.0.0.1:26443

Stdlib only. Each side is logged in as the same user (user0002@example.test), one kept-alive connection
each, and the same steps are timed, alternating side by side, step by step (who goes first swaps each
round), after one untimed warm-up round: the inbox as a user first sees it (Roundcube: its mail page and
the list request its script makes; dizimail: /mail), a deep page (page 200 of 400), opening a message (the
same UID on both: the servers were filled by the same APPENDs), and a search of the whole text for a
Chinese word and an English one. And the bytes of the first load: the page and every script, style sheet,
font and image it names. Prints medians and the ratio; asserts nothing.
"""

from __future__ import annotations

import argparse
import http.client
import posixpath
import re
import ssl
import statistics
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

USER, PASSWORD = "user0002@example.test", "pw-user0002"


class Side:
    def __init__(self, base: str) -> None:
        url = urllib.parse.urlsplit(base)
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        self.conn: http.client.HTTPConnection = (
            http.client.HTTPSConnection(url.hostname or "", url.port, context=context, timeout=120)
            if url.scheme == "https" else http.client.HTTPConnection(url.hostname or "", url.port, timeout=120))
        self.cookies: dict[str, str] = {}
        self.token = ""

    def get(self, path: str, body: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        sent = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()), "Accept-Language": "zh-CN",
                **(headers or {})}
        if body is not None:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (0, 1):
            try:
                self.conn.request("POST" if body is not None else "GET", path, body=body, headers=sent)
                response = self.conn.getresponse()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()  # closed while idle: a browser opens another
                if attempt:
                    raise
        data = response.read()
        for value in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, data

    def timed(self, path: str, headers: dict[str, str] | None = None) -> tuple[float, bytes]:
        started = time.perf_counter()
        status, data = self.get(path, headers=headers)
        if status != 200:
            raise RuntimeError(f"{path}: {status}")
        return (time.perf_counter() - started) * 1000, data


class Roundcube(Side):
    def login(self) -> None:
        _s, page = self.get("/")
        token = re.search(rb'name="_token" value="([^"]+)"', page)[1].decode()  # type: ignore[index]
        status, _ = self.get("/?_task=login", urllib.parse.urlencode({
            "_token": token, "_task": "login", "_action": "login", "_timezone": "Asia/Shanghai", "_url": "",
            "_user": USER, "_pass": PASSWORD}))
        _s, page = self.get("/?_task=mail&_mbox=INBOX")
        self.token = re.search(rb'"request_token":"([^"]+)"', page)[1].decode()  # type: ignore[index]

    def ajax(self, query: str) -> tuple[float, bytes]:
        return self.timed(f"/?_task=mail&{query}&_remote=1", {"X-Roundcube-Request": self.token,
                                                               "X-Requested-With": "XMLHttpRequest"})

    def inbox(self) -> float:
        first, _ = self.timed("/?_task=mail&_mbox=INBOX")
        second, _ = self.ajax("_action=list&_mbox=INBOX&_page=1")
        return first + second

    def page(self, n: int) -> float:
        return self.ajax(f"_action=list&_mbox=INBOX&_page={n}")[0]

    def open(self, uid: int) -> float:
        return self.timed(f"/?_task=mail&_action=show&_uid={uid}&_mbox=INBOX")[0]

    def search(self, words: str) -> float:
        return self.ajax("_action=search&_mbox=INBOX&_scope=base&_filter=ALL&_headers=text&_q=" +
                         urllib.parse.quote(words))[0]

    def first_uid(self) -> int:
        _t, data = self.ajax("_action=list&_mbox=INBOX&_page=1")
        return int(re.search(rb"add_message_row\((\d+)", data)[1])  # type: ignore[index]

    def weight(self) -> int:
        _s, page = self.get("/?_task=mail&_mbox=INBOX")
        return len(page) + assets(self, page) + len(self.ajax("_action=list&_mbox=INBOX&_page=1")[1])


class Dizimail(Side):
    def login(self) -> None:
        _s, page = self.get("/")
        csrf = re.search(rb'name="csrf" value="([^"]*)"', page)[1].decode()  # type: ignore[index]
        self.get("/", urllib.parse.urlencode({"csrf": csrf, "address": USER, "password": PASSWORD, "code": "",
                                              "next": ""}))

    def inbox(self) -> float:
        return self.timed("/mail")[0]

    def page(self, n: int) -> float:
        return self.timed(f"/mail?f=INBOX&page={n}")[0]

    def open(self, uid: int) -> float:
        return self.timed(f"/mail/read?f=INBOX&uid={uid}")[0]

    def search(self, words: str) -> float:
        return self.timed("/mail?f=INBOX&in=text&q=" + urllib.parse.quote(words))[0]

    def weight(self) -> int:
        _s, page = self.get("/mail")
        return len(page) + assets(self, page)


def assets(side: Side, page: bytes) -> int:
    """The bytes of every script, style sheet, image and font the page names (CSS url()s one level down)."""
    total, seen = 0, set()
    names = re.findall(rb'(?:src|href)="([^"]+\.(?:js|css|png|svg|woff2?|ico|gif)(?:\?[^"]*)?)"', page)
    for name in names:
        path = "/" + name.decode().replace("&amp;", "&").lstrip("/")
        if path in seen or name.startswith(b"http"):
            continue
        seen.add(path)
        _s, data = side.get(path)
        total += len(data)
        if path.split("?")[0].endswith(".css"):
            base = path.rsplit("/", 1)[0]
            for ref in re.findall(rb"url\(['\"]?([^'\")]+\.(?:woff2?|png|svg|gif))", data):
                if ref.startswith((b"data:", b"http")):
                    continue
                inner = posixpath.normpath(f"{base}/{ref.decode()}")
                if inner not in seen:
                    seen.add(inner)
                    total += len(side.get(inner)[1])
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rc", default="http://127.0.0.1:28080")
    p.add_argument("--dz", default="https://127.0.0.1:26443")
    p.add_argument("--rounds", type=int, default=10)
    a = p.parse_args()
    rc, dz = Roundcube(a.rc), Dizimail(a.dz)
    rc.login()
    dz.login()
    uid = rc.first_uid()
    steps: dict[str, Callable[[Any], float]] = {"the inbox, first page (Roundcube: page + list request)": lambda s: s.inbox(),
             "page 200 of 400": lambda s: s.page(200),
             "open the newest message": lambda s: s.open(uid),
             "search the text for 发票 (Chinese)": lambda s: s.search("发票"),
             "search the text for zanzibarite (in 1 %)": lambda s: s.search("zanzibarite")}
    times: dict[tuple[str, str], list[float]] = {}
    for round_ in range(a.rounds + 1):
        for name, step in steps.items():
            for side in ((rc, dz) if round_ % 2 else (dz, rc)):
                took = step(side)
                if round_:  # the first round warms both up
                    times.setdefault((name, type(side).__name__), []).append(took)
    print(f"{'step':<58} {'Roundcube ms':>13} {'dizimail ms':>12} {'ratio':>7}")
    for name in steps:
        r, d = statistics.median(times[(name, "Roundcube")]), statistics.median(times[(name, "Dizimail")])
        print(f"{name:<58} {r:13.1f} {d:12.1f} {d / r:6.2f}×")
    rw, dw = rc.weight(), dz.weight()
    print(f"{'first load, every byte the page names (KiB)':<58} {rw / 1024:13.1f} {dw / 1024:12.1f} {dw / rw:6.2f}×")


if __name__ == "__main__":
    main()
