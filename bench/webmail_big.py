"""Webmail on a 100,000-message folder (issue #13): how long the pages take, what they weigh, and 200 users
clicking through at once.

    .venv/bin/python bench/webmail_big.py [--messages 100000] [--users 200] [--seconds 30]

Fills one user's INBOX through the storage API (2,000 distinct messages, each stored once and delivered
50 times: subjects, senders, dates and bodies vary; one in fifty speaks of 检修), indexes them for search,
then starts `dizimail serve` as a subprocess and measures over HTTPS on loopback with http.client (one
kept-alive connection per user, as a browser keeps one): the request's latency as the client sees it, which
bounds the server's time from above. Then --users users (50 messages each) list, open and reply in a loop
for --seconds, from as many threads. Prints figures (median, p95, server RSS); asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from dizimail.app.build import open_node
from dizimail.app.init import init_data_dir
from dizimail.config.loader import load_config
from dizimail.model.types import IngestRecord, LocalDelivery

DOMAIN = "big.test"
PASSWORD = "bench-password-1"
WORDS = ("pump", "valve", "turbine", "schedule", "report", "meeting", "budget", "safety", "发电", "机组", "巡检",
         "锅炉", "汽轮机", "周报", "会议", "安全")
DISTINCT = 2000


def message(n: int) -> bytes:
    subject = " ".join(WORDS[(n * 7 + i) % len(WORDS)] for i in range(4)) + (" 检修通知" if n % 50 == 0 else "")
    body = "\r\n".join(" ".join(WORDS[(n * 13 + i * 3 + j) % len(WORDS)] for j in range(12)) for i in range(20))
    day = 1 + n % 28
    return (f"From: sender{n % 300} <s{n % 300}@plant.example>\r\nTo: big@{DOMAIN}\r\nSubject: {subject} {n}\r\n"
            f"Date: Mon, {day:02d} Nov 2026 {n % 24:02d}:{n % 60:02d}:00 +0800\r\nMessage-ID: <m{n}@plant.example>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            f"{body}\r\n").encode()


async def fill(config_path: Path, n: int, users: int) -> None:
    config = load_config(config_path)
    async with open_node(config) as (s, stores):
        await s.accounts.add_domain(DOMAIN)
        await s.accounts.add_user(f"big@{DOMAIN}", PASSWORD)
        big = await s.accounts.get_user(f"big@{DOMAIN}")
        blobs = []
        for i in range(DISTINCT):
            writer = stores.blobs.writer()
            writer.write(message(i))
            blobs.append(writer.finish())
        for start in range(0, n, 1000):  # 1,000 messages a transaction, 50 of each distinct one
            for k in range(0, min(1000, n - start), 500):
                blob = blobs[(start + k) // 500 % DISTINCT]
                deliveries = tuple(LocalDelivery(big.id, big.address, "INBOX", b"", ("\\Seen",) if i % 3 else ())
                                   for i in range(min(500, n - start - k)))
                await stores.meta.commit_ingest(IngestRecord(f"B{start}-{k}", blob, "", time.time(), deliveries))
        for u in range(users):
            address = f"user{u}@{DOMAIN}"
            await s.accounts.add_user(address, PASSWORD)
            account = await s.accounts.get_user(address)
            deliveries = tuple(LocalDelivery(account.id, address, "INBOX", b"", ()) for _ in range(50))
            await stores.meta.commit_ingest(IngestRecord(f"U{u}", blobs[u % DISTINCT], "", time.time(), deliveries))
        while await s.mailstore.index_pending(30.0):
            pass


class Browser:
    """One user's kept-alive HTTPS connection with its session cookie."""

    def __init__(self, port: int) -> None:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        self.conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=120)
        self.cookies: dict[str, str] = {}
        self.received = 0

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str, dict[str, str]]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()), "Accept-Language": "zh-CN"}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.conn.close()  # the server closed a connection idle past its keep-alive: a browser opens another
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        data = response.read()
        self.received += len(data)
        for value in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return response.status, data.decode("utf-8", "replace"), dict(response.headers)

    def timed(self, path: str) -> tuple[float, str]:
        started = time.perf_counter()
        status, text, _ = self.request("GET", path)
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200:
            raise RuntimeError(f"{path}: {status}")
        return elapsed, text

    def login(self, address: str) -> None:
        _status, page, _ = self.request("GET", "/")
        csrf = re.search(r'name="csrf" value="([^"]*)"', page)[1]  # type: ignore[index]
        status, _text, headers = self.request("POST", "/", urllib.parse.urlencode(
            {"csrf": csrf, "address": address, "password": PASSWORD, "code": "", "next": ""}))
        if status != 303:
            raise RuntimeError(f"login of {address}: {status}")


def figures(name: str, times: list[float]) -> None:
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    print(f"{name:<52} median {statistics.median(times):7.1f} ms   p95 {p95:7.1f} ms   (n={len(times)})")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--port-base", type=int, default=37000)
    p.add_argument("--repeat", type=int, default=20)
    a = p.parse_args()
    data = Path(tempfile.mkdtemp(prefix="dz-webmail-"))
    asyncio.run(init_data_dir(data, hostname="mx.big.test", role="all-in-one", listen="127.0.0.1",
                              port_base=a.port_base, domain=None, demo=False))
    config = data / "dizimail.toml"
    text = config.read_text()  # 200 users from one address: real ones come from 200
    config.write_text(text.replace("[limits]\n", "[limits]\nmax_connections_per_ip = 1000\n") if "[limits]\n" in text
                      else text + "\n[limits]\nmax_connections_per_ip = 1000\n")
    started = time.monotonic()
    asyncio.run(fill(config, a.messages, a.users))
    print(f"filled {a.messages:,} messages (+{a.users} users of 50) and indexed them in {time.monotonic() - started:.0f}s")
    server = subprocess.Popen([str(Path(sys.executable).parent / "dizimail"), "serve", "--config", str(config)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = a.port_base + 443
    try:
        for line in server.stdout:  # type: ignore[union-attr]
            if line.strip() == "ready":
                break
        me = Browser(port)
        me.login(f"big@{DOMAIN}")
        print(f"server RSS after login: {rss_mb(server.pid):.0f} MB")
        first, page = me.timed("/mail")
        print(f"first page of the inbox (the first request: sort keys made)        {first:7.1f} ms")
        uids = [int(u) for u in re.findall(r'data-uid="(\d+)"', page)]
        figures(f"first page of {a.messages:,}, newest first", [me.timed("/mail")[0] for _ in range(a.repeat)])
        last = (a.messages + 49) // 50
        figures(f"page {last:,}, the last (the oldest)", [me.timed(f"/mail?page={last}")[0] for _ in range(a.repeat)])
        figures("open a message", [me.timed(f"/mail/read?f=INBOX&uid={uids[i % len(uids)]}")[0]
                                   for i in range(a.repeat)])
        search = "/mail?f=INBOX&q=" + urllib.parse.quote("检修")
        once, found = me.timed(search)
        print(f"{'Chinese search 检修 (first)':<52} {once:7.1f} ms, {re.search(r'<small id=.message-count[^>]*>([^<]*)<', found)[1]}")  # type: ignore[index]
        figures("Chinese search 检修", [me.timed(search)[0] for _ in range(a.repeat)])
        figures("search 'turbine' in the subject",
                [me.timed("/mail?f=INBOX&in=subject&q=turbine")[0] for _ in range(a.repeat)])
        figures("Chinese search 检修 in all folders",
                [me.timed(search + "&all=1")[0] for _ in range(max(3, a.repeat // 4))])
        once, _ = me.timed("/mail?f=INBOX&threads=1")
        print(f"{f'conversations (THREAD=REFERENCES of {a.messages:,}), first':<52} {once:7.1f} ms")
        figures("conversations, again (the folder unchanged)",
                [me.timed("/mail?f=INBOX&threads=1")[0] for _ in range(a.repeat)])
        figures("conversations, page 10", [me.timed("/mail?f=INBOX&threads=1&page=10")[0] for _ in range(a.repeat)])
        weight = Browser(port)
        weight.login(f"user0@{DOMAIN}")
        weight.received = 0
        for path in ("/mail", "/static/site.css", "/static/site.js"):
            weight.request("GET", path)
        print(f"first load of the inbox: {weight.received / 1024:.1f} KiB in 3 requests (HTML, CSS, script; no "
              "fonts, no images); at 1 Mbit/s about {:.2f} s".format(weight.received * 8 / 1_000_000))
        print(f"server RSS after the single-user runs: {rss_mb(server.pid):.0f} MB")

        crowd = [Browser(port) for _ in range(a.users)]
        for n, b in enumerate(crowd):
            b.login(f"user{n}@{DOMAIN}")
        times: dict[str, list[float]] = {"list": [], "open": [], "reply": []}
        peak = [rss_mb(server.pid)]
        stop = time.monotonic() + a.seconds
        lock = threading.Lock()

        def click(b: Browser) -> None:
            while time.monotonic() < stop:
                t_list, page = b.timed("/mail")
                uid = re.search(r'data-uid="(\d+)"', page)[1]  # type: ignore[index]
                t_open, _ = b.timed(f"/mail/read?f=INBOX&uid={uid}")
                t_reply, _ = b.timed(f"/mail/compose?f=INBOX&reply={uid}")
                with lock:
                    times["list"].append(t_list)
                    times["open"].append(t_open)
                    times["reply"].append(t_reply)

        def sample() -> None:
            while time.monotonic() < stop:
                peak.append(rss_mb(server.pid))
                time.sleep(0.2)
        threads = [threading.Thread(target=click, args=(b,)) for b in crowd] + [threading.Thread(target=sample)]
        began = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        spent = time.monotonic() - began
        clicks = sum(len(v) for v in times.values())
        print(f"{a.users} users clicking for {spent:.0f}s: {clicks} pages, {clicks / spent:.0f} pages/s; "
              f"server RSS peak {max(peak):.0f} MB")
        for name, values in times.items():
            figures(f"  {name} (under load)", values)
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
