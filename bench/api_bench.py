"""The REST API under load (issue #11 "Speed"), against a node started by bench/dizimail_up.sh:

    USERS=5000 bench/dizimail_up.sh /tmp/apib 15000
    .venv/bin/python bench/api_bench.py --workdir /tmp/apib --port-base 15000 [--seconds 10] [--out FILE.json]

1. The user list of the 5,000-user domain, page by page (50 users, a random starting point each time)
   and a search in it (`q`), one keep-alive connection, sequential: latency percentiles seen by the client
   (an upper bound of the server's time: loopback, the client on the same two cores).
2. Throughput at 50 concurrent clients, each with its own keep-alive connection, for --seconds: requests/s
   and latency percentiles, for `GET /api/v1/me` (the cost of a request) and a 50-user page.
3. The admin pages (web side): an admin's browser session (user0001 is granted admin for the run), the
   user list page of the domain (100 users, a random starting point) and a search in it, rendered to
   HTML: latency percentiles, sequential.
4. The node's memory afterwards: RSS and PSS of the node process (/proc/PID/smaps_rollup).

The clients are Python threads in this one process: with 50 of them on two cores, the figures include the
client's own cost; they are for comparing runs of this script, not a server's ceiling.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import ssl
import statistics
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
DZ = str(HERE.parent / ".venv/bin/dizimail")


def tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the node's self-signed certificate
    return ctx


class Client:
    def __init__(self, port: int, secret: str, cookie: str = "") -> None:
        self.conn = http.client.HTTPSConnection("127.0.0.1", port, context=tls(), timeout=30)
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {"Cookie": cookie}

    def get(self, path: str) -> tuple[int, bytes, float]:
        started = time.perf_counter()
        self.conn.request("GET", path, headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        return response.status, body, time.perf_counter() - started


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)
    return {"n": len(values), "p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99),
            "mean_ms": round(statistics.fmean(values) * 1000, 2)}


def sequential(client: Client, paths: list[str]) -> dict[str, float]:
    times = []
    for path in paths:
        status, _body, elapsed = client.get(path)
        assert status == 200, (path, status)
        times.append(elapsed)
    return percentiles(times)


def concurrent(port: int, secret: str, make_path, clients: int, seconds: float) -> dict[str, float]:
    times: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def work(n: int) -> None:
        nonlocal errors
        client = Client(port, secret)
        rng = random.Random(n)
        mine = []
        while time.monotonic() < deadline:
            status, _body, elapsed = client.get(make_path(rng))
            if status == 200:
                mine.append(elapsed)
            else:
                with lock:
                    errors += 1
        with lock:
            times.extend(mine)
    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    return {"clients": clients, "requests_per_s": round(len(times) / wall, 1), "errors": errors, **percentiles(times)}


def browser_session(port: int, address: str, password: str) -> str:
    """Log in at /admin/login as a browser does (the form's token and cookie): the session cookie."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=tls(), timeout=30)
    conn.request("GET", "/admin/login")
    form = conn.getresponse()
    page = form.read().decode()
    token = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    login_cookie = form.getheader("set-cookie", "").split(";", 1)[0]
    body = urllib.parse.urlencode({"csrf": token, "address": address, "password": password, "next": ""})
    conn.request("POST", "/admin/login", body, {"Content-Type": "application/x-www-form-urlencoded",
                                                "Cookie": login_cookie})
    answer = conn.getresponse()
    answer.read()
    assert answer.status == 303, answer.status
    cookies = [v for k, v in answer.getheaders() if k.lower() == "set-cookie" and v.startswith("__Host-dzm=")]
    return cookies[0].split(";", 1)[0]


def memory(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        fields[key] = int(value.split()[0])
    return {"rss_mib": round(fields["Rss"] / 1024, 1), "pss_mib": round(fields["Pss"] / 1024, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--port-base", type=int, required=True)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    config = a.workdir / "data" / "dizimail.toml"
    pid = int((a.workdir / "dizimail.pid").read_text())
    port = a.port_base + 443
    secret = subprocess.run([DZ, "token", "create", "--role", "admin", "--label", "bench", "--expires", "1h",
                             "--config", str(config)], capture_output=True, text=True, check=True).stdout.split()[-1]
    client = Client(port, secret)
    locals_: list[str] = []
    after = ""
    while True:
        status, body, _ = client.get(f"/api/v1/domains/example.test/users?limit=1000&after={after}")
        page = json.loads(body)
        if not page:
            break
        locals_ += [u["address"].partition("@")[0] for u in page]
        after = locals_[-1]
    print(f"{len(locals_)} users in example.test; node pid {pid}")
    rng = random.Random(7)
    results: dict[str, object] = {"users": len(locals_), "memory_before": memory(pid)}
    pages = [f"/api/v1/domains/example.test/users?limit=50&after={rng.choice(locals_)}" for _ in range(300)]
    searches = [f"/api/v1/domains/example.test/users?limit=50&q={rng.randrange(10, 500)}" for _ in range(300)]
    results["user_page_50"] = sequential(client, pages)
    results["user_search_50"] = sequential(client, searches)
    print("user list page (50), sequential:", results["user_page_50"])
    print("user search (50), sequential:   ", results["user_search_50"])
    results["me_50_clients"] = concurrent(port, secret, lambda r: "/api/v1/me", 50, a.seconds)
    print("GET /me, 50 clients:            ", results["me_50_clients"])
    results["page_50_clients"] = concurrent(
        port, secret, lambda r: f"/api/v1/domains/example.test/users?limit=50&after={r.choice(locals_)}", 50,
        a.seconds)
    print("user page, 50 clients:          ", results["page_50_clients"])
    subprocess.run([DZ, "admin", "grant", "user0001@example.test", "--role", "admin", "--config", str(config)],
                   capture_output=True, check=True)
    web = Client(port, "", browser_session(port, "user0001@example.test", "pw-user0001"))
    results["admin_user_page_100"] = sequential(
        web, [f"/admin/domains/example.test?after={rng.choice(locals_)}" for _ in range(300)])
    results["admin_user_search"] = sequential(
        web, [f"/admin/domains/example.test?q={rng.randrange(10, 500)}" for _ in range(300)])
    print("admin page, user list (100):    ", results["admin_user_page_100"])
    print("admin page, user search:        ", results["admin_user_search"])
    subprocess.run([DZ, "admin", "revoke", "user0001@example.test", "--config", str(config)], capture_output=True,
                   check=True)
    results["memory_after"] = memory(pid)
    print("node memory before / after:     ", results["memory_before"], results["memory_after"])
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
