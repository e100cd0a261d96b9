"""The REST API over the node's own HTTPS listener (issue #11), with a real HTTP client (urllib) and
tokens made by the real command line: roles, cross-domain attempts, revoked and expired tokens,
limits, headers, and what the API creates working over IMAP."""

from __future__ import annotations

import csv
import imaplib
import json
import os
import pwd
import smtplib
import socket
import time
import urllib.request
from typing import Any
from urllib.parse import quote

import pytest
from argon2 import PasswordHasher

from conftest import DOMAIN, PASSWORD, client_tls, dizimail_cli, start_server, write_config
from helpers import api, busy, fetch_all, greeting_delays, submit, token, wait_for
from processes import serving


def raw_post(server, secret: str, head: bytes, body: bytes) -> tuple[int, Any]:
    """POST /api/v1/domains over a bare TLS socket (urllib gives up when the server answers early)."""
    with client_tls().wrap_socket(socket.create_connection(("127.0.0.1", server.ports["https"]), timeout=15)) as sock:
        sock.sendall(b"POST /api/v1/domains HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + secret.encode() + b"\r\n" + head + b"\r\n")
        try:
            sock.sendall(body + b"0\r\n\r\n" if body else b"")
        except OSError:
            pass  # the answer may already be on its way
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


@pytest.fixture(scope="module")
def admin(server) -> str:
    return token(server, "--role", "admin", "--label", "tests")


def test_token_create_prints_the_secret_on_its_last_line_and_list_never_shows_it(server, admin):
    assert admin.startswith("dzm_") and len(admin) > 40
    listing = dizimail_cli(server.config_file, "token", "list", "--json").stdout
    assert admin not in listing
    assert {"role": "admin", "label": "tests", "state": "active"}.items() <= json.loads(listing)[0].items()
    status, _, me = api(server, "GET", "/api/v1/me", admin)
    assert status == 200 and me["role"] == "admin"


def test_no_token_or_a_wrong_one_is_401_in_the_callers_language(server):
    status, headers, body = api(server, "GET", "/api/v1/domains")
    assert status == 401 and headers["www-authenticate"] == "Bearer" and body["error"] == "unauthenticated"
    status, _, body = api(server, "GET", "/api/v1/domains", "dzm_" + "x" * 43, lang="zh-CN,zh;q=0.9")
    assert status == 401 and body["message"].startswith("需要有效的 API 令牌")


def test_an_admin_creates_a_domain_and_a_user_who_then_reads_mail_over_imap(server, admin):
    status, headers, domain = api(server, "POST", "/api/v1/domains", admin, {"name": "xn--tfr181f.cn"})
    assert status == 201 and domain == {"name": "电力.cn", "status": "active", "alias_of": None}
    assert headers["location"] == "/api/v1/domains/" + quote("电力.cn")
    assert api(server, "POST", "/api/v1/domains", admin, {"name": "电力.cn"})[0] == 409
    assert "电力.cn" in [d["name"] for d in api(server, "GET", "/api/v1/domains", admin)[2]]
    status, _, user = api(server, "POST", "/api/v1/domains/xn--tfr181f.cn/users", admin,
                          {"local_part": "zhang", "password": "Turbine-7-pass", "name": "张工"})
    assert status == 201 and user["address"] == "zhang@电力.cn" and user["name"] == "张工"
    assert api(server, "GET", "/api/v1/users/zhang@xn--tfr181f.cn", admin)[2]["address"] == "zhang@电力.cn"
    imap = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls())
    try:
        assert imap.login("zhang@xn--tfr181f.cn", "Turbine-7-pass")[0] == "OK"
    finally:
        imap.logout()
    assert api(server, "DELETE", "/api/v1/users/zhang@电力.cn", admin)[0] == 204
    assert api(server, "GET", "/api/v1/users/zhang@电力.cn", admin)[0] == 404
    assert api(server, "DELETE", "/api/v1/domains/电力.cn", admin)[0] == 204


def test_a_domain_admin_reaches_its_domains_and_nothing_of_another(server, admin):
    for name in ("north.test", "south.test"):
        assert api(server, "POST", "/api/v1/domains", admin, {"name": name})[0] == 201
    api(server, "POST", "/api/v1/domains/south.test/users", admin, {"local_part": "s1", "password": "pw-s1-long"})
    north = token(server, "--role", "domain-admin", "--domain", "north.test")
    assert [d["name"] for d in api(server, "GET", "/api/v1/domains", north)[2]] == ["north.test"]
    assert api(server, "POST", "/api/v1/domains/north.test/users", north,
               {"local_part": "n1", "password": "pw-n1-long"})[0] == 201
    assert [u["address"] for u in api(server, "GET", "/api/v1/domains/north.test/users", north)[2]] == ["n1@north.test"]
    # the other domain is as absent as one that does not exist: the same answer, nothing to tell them apart
    for method, path, body in [("GET", "/api/v1/domains/south.test", None),
                               ("GET", "/api/v1/domains/south.test/users", None),
                               ("POST", "/api/v1/domains/south.test/users", {"local_part": "x", "password": "pw-x-long"}),
                               ("GET", "/api/v1/users/s1@south.test", None),
                               ("DELETE", "/api/v1/users/s1@south.test", None),
                               ("GET", "/api/v1/domains/nowhere.test", None),
                               ("GET", "/api/v1/users/s1@SOUTH.TEST", None)]:
        status, _, answer = api(server, method, path, north, body)
        assert (status, answer["error"]) == (404, "not_found"), (method, path, status, answer)
    assert api(server, "GET", "/api/v1/users/s1@south.test", admin)[0] == 200  # still there
    assert api(server, "POST", "/api/v1/domains", north, {"name": "west.test"})[0] == 403
    assert api(server, "DELETE", "/api/v1/domains/north.test", north)[0] == 403


def test_a_user_token_reaches_its_own_account_only(server, admin, user):
    other = server.add_user(f"other{time.monotonic_ns()}")
    mine = token(server, "--role", "user", "--user", user)
    assert api(server, "GET", f"/api/v1/users/{user}", mine)[2]["address"] == user
    assert api(server, "GET", f"/api/v1/users/{other}", mine)[0] == 404
    assert api(server, "GET", "/api/v1/domains", mine)[0] == 403
    assert api(server, "GET", f"/api/v1/domains/{DOMAIN}/users", mine)[0] == 403
    assert api(server, "DELETE", f"/api/v1/users/{user}", mine)[0] == 403


def test_revoked_and_expired_tokens_are_refused(server, admin):
    doomed = token(server, "--role", "admin")
    assert api(server, "GET", "/api/v1/me", doomed)[0] == 200
    token_id = api(server, "GET", "/api/v1/me", doomed)[2]["id"]
    dizimail_cli(server.config_file, "token", "revoke", str(token_id))
    assert api(server, "GET", "/api/v1/me", doomed)[0] == 401
    brief = token(server, "--role", "admin", "--expires", "3s")  # room for a slow command line under load
    status, _, me = api(server, "GET", "/api/v1/me", brief)
    assert status == 200
    time.sleep(max(0.0, me["expires"] + 0.2 - time.time()))
    assert api(server, "GET", "/api/v1/me", brief)[0] == 401
    states = {t["id"]: t["state"] for t in json.loads(dizimail_cli(server.config_file, "token", "list", "--json").stdout)}
    assert states[token_id] == "revoked" and "expired" in states.values()


def test_token_create_refuses_what_makes_no_sense(server):
    for args, words in [(("--role", "domain-admin"), "names its domains"),
                        (("--role", "domain-admin", "--domain", "nowhere.test"), "Unknown domain"),
                        (("--role", "user"), "names its account"),
                        (("--role", "admin", "--domain", DOMAIN), "Only a domain admin"),
                        (("--role", "user", "--user", "ghost@example.test"), "Unknown user"),
                        (("--role", "admin", "--expires", "soon"), "not a duration")]:
        out = dizimail_cli(server.config_file, "token", "create", *args, check=False)
        assert out.returncode != 0 and words in out.stderr and "dzm_" not in out.stdout, (args, out)


def test_limits_headers_and_the_openapi_document(server, admin):
    status, headers, spec = api(server, "GET", "/api/v1/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.1") and "/api/v1/domains/{domain}/users" in spec["paths"]
    assert headers["x-content-type-options"] == "nosniff" and "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and "server" not in headers
    for head, body in [(b"Content-Length: 2097152\r\n", b""),  # said too large: answered before a byte is read
                       (b"Transfer-Encoding: chunked\r\n", b"100001\r\n" + b" " * 0x100001 + b"\r\n")]:
        status, answer = raw_post(server, admin, head, body)  # ... or found too large while read
        assert status == 413 and answer["error"] == "too_large", (head, status, answer)
    status, _, body = api(server, "POST", "/api/v1/domains", admin, raw=b"{not json")
    assert status == 422 and body["error"] == "bad_request"
    status, _, body = api(server, "POST", "/api/v1/domains", admin, {"name": "x.test", "extra": 1})
    assert status == 422 and "extra" in body["detail"]
    assert api(server, "GET", "/api/v1/nothing-here", admin)[0] == 404


def test_a_client_that_says_nothing_after_connecting_is_closed(tmp_path):
    """No request within the handshake timeout: the connection (and the client's share) is given back."""
    srv = start_server(tmp_path, '[limits]\ntls_handshake_timeout = "1s"\nmax_connections_per_ip = 3\n')
    try:
        quiet = [client_tls().wrap_socket(socket.create_connection(("127.0.0.1", srv.ports["https"]), timeout=10))
                 for _ in range(3)]
        try:
            started = time.monotonic()
            for sock in quiet:
                try:
                    assert sock.recv(1) == b""  # closed by the server ...
                except ConnectionResetError:
                    pass  # ... or dropped at once
            assert time.monotonic() - started < 8
            secret = token(srv, "--role", "admin")
            # counted back at once, though these clients still hold their sockets (a TLS close would wait
            # for their close_notify, and keep their share of connections taken meanwhile)
            assert api(srv, "GET", "/api/v1/me", secret)[0] == 200
        finally:
            for sock in quiet:
                sock.close()
    finally:
        srv.stop()


def test_wrong_tokens_lock_the_client_out_like_failed_logins(tmp_path):
    srv = start_server(tmp_path, "fail_threshold = 3\n")  # in [auth]
    try:
        secret = token(srv, "--role", "admin")
        for _ in range(3):
            assert api(srv, "GET", "/api/v1/me", "dzm_wrong")[0] == 401
        with pytest.raises(OSError):  # refused at connect, as IMAP and submission refuse a locked-out client
            api(srv, "GET", "/api/v1/me", secret)
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as smtp:  # mail still comes in
            assert smtp.noop()[0] == 250
    finally:
        srv.stop()


def test_admin_actions_from_the_api_and_the_command_line_are_in_the_audit_log(tmp_path):
    srv = start_server(tmp_path / "n")
    try:
        admin = token(srv, "--role", "admin", "--label", "ops")
        assert api(srv, "POST", "/api/v1/domains", admin, {"name": "audit.test"})[0] == 201
        body = {"local_part": "li", "password": "Secret-Pw-4711", "name": "李工"}
        assert api(srv, "POST", "/api/v1/domains/audit.test/users", admin, body)[0] == 201
        dizimail_cli(srv.config_file, "user", "quota", "li@audit.test", "1GB")
        dizimail_cli(srv.config_file, "user", "passwd", "li@audit.test", "--password", "Other-Pw-0815")
        assert api(srv, "DELETE", "/api/v1/users/li@audit.test", admin)[0] == 204
        admin_id = api(srv, "GET", "/api/v1/me", admin)[2]["id"]

        entries = json.loads(dizimail_cli(srv.config_file, "audit", "list", "--json", "--domain", "audit.test").stdout)
        assert [e["action"] for e in entries] == ["user.remove", "user.password", "user.quota", "user.add",
                                                   "domain.add"]  # newest first
        remove, password, quota, add, domain = entries
        assert (domain["actor"], domain["role"], domain["ip"]) == (f"token:{admin_id}", "admin", "127.0.0.1")
        assert domain["before"] is None and domain["after"]["name"] == "audit.test"
        assert add["after"] == {"address": "li@audit.test", "name": "李工", "status": "active", "quota_bytes": 0}
        assert quota["actor"] == "cli:" + (os.environ.get("SUDO_USER") or pwd.getpwuid(os.getuid()).pw_name)
        assert quota["ip"] == ""
        assert (quota["before"]["quota_bytes"], quota["after"]["quota_bytes"]) == (0, 1 << 30)
        assert password["before"] == password["after"]  # a password change shows, the password never
        assert remove["before"]["address"] == "li@audit.test" and remove["after"] is None

        status, _, listed = api(srv, "GET", "/api/v1/audit?action=user.&limit=2", admin)
        assert status == 200 and [e["action"] for e in listed] == ["user.remove", "user.password"]
        status, _, older = api(srv, "GET", f"/api/v1/audit?action=user.&before={listed[-1]['id']}", admin)
        assert [e["action"] for e in older] == ["user.quota", "user.add"]

        dizimail_cli(srv.config_file, "domain", "add", "north.test")
        north = token(srv, "--role", "domain-admin", "--domain", "north.test")
        seen = api(srv, "GET", "/api/v1/audit", north)[2]
        assert seen and {e["domain"] for e in seen} == {"north.test"}  # its domain's entries, nobody else's
        assert api(srv, "GET", "/api/v1/audit", token(srv, "--role", "user", "--user", srv.add_user("u1")))[0] == 403

        export = tmp_path / "audit.csv"
        dizimail_cli(srv.config_file, "audit", "export", str(export))
        text = export.read_text(encoding="utf-8")
        assert text.startswith("\ufeffid,at,actor,") and "李工" in text
        assert "Secret-Pw-4711" not in text and "Other-Pw-0815" not in text and admin not in text
        rows = text.splitlines()[1:]
        assert [r.split(",")[5] for r in rows][:2] == ["token.create", "domain.add"]  # oldest first
        assert oct(export.stat().st_mode & 0o777) == "0o600"
    finally:
        srv.stop()


def test_a_5000_user_domain_pages_and_searches_and_mail_is_not_kept_waiting(tmp_path):
    config_file, ports = write_config(tmp_path / "n")
    hashed = PasswordHasher(time_cost=1, memory_cost=1024).hash("Pw-of-everyone-1")  # imported as it is: fast
    with open(tmp_path / "users.csv", "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["address", "password", "quota", "name"])
        out.writerows([f"u{i:04d}@{DOMAIN}", hashed, 0, ("王工" if i % 100 == 0 else "staff ") + str(i)]
                      for i in range(5000))
        out.writerow([f"odd@{DOMAIN}", hashed, 0, "100%_off"])
    dizimail_cli(config_file, "user", "import", str(tmp_path / "users.csv"))
    with serving(config_file, ports, tmp_path / "node.log") as srv:  # its own process: the greetings are its
        admin = token(srv, "--role", "admin")
        seen, after = [], ""
        while page := api(srv, "GET", f"/api/v1/domains/{DOMAIN}/users?limit=1000&after={after}", admin)[2]:
            seen += [u["address"] for u in page]
            after = page[-1]["address"].partition("@")[0]
        assert len(seen) == len(set(seen)) == 5001 and seen == sorted(seen)
        found = api(srv, "GET", f"/api/v1/domains/{DOMAIN}/users?q=王工", admin)[2]
        assert len(found) == 50 and all(u["name"].startswith("王工") for u in found)
        assert [u["address"] for u in api(srv, "GET", f"/api/v1/domains/{DOMAIN}/users?q=%_", admin)[2]] == [
            f"odd@{DOMAIN}"]  # LIKE's wildcards are plain text here
        assert api(srv, "GET", f"/api/v1/domains/{DOMAIN}/users?limit=5000", admin)[0] == 422

        def page() -> None:
            assert api(srv, "GET", f"/api/v1/domains/{DOMAIN}/users?limit=1000&q=staff", admin)[0] == 200
        with busy(page, page):  # two clients at it without a pause
            delays = greeting_delays(srv.ports["smtp"])
        assert max(delays) < 0.1, delays


def test_aliases_over_the_api_take_mail(server, admin, user):
    local = user.partition("@")[0]
    status, headers, alias = api(server, "POST", f"/api/v1/domains/{DOMAIN}/aliases", admin,
                                 {"local_part": f"team-{local}", "targets": [user, "x@remote.test"]})
    assert status == 201 and alias == {"address": f"team-{local}@{DOMAIN}", "targets": [user, "x@remote.test"]}
    assert api(server, "GET", headers["location"].replace("%40", "@"), admin)[2] == alias
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=15) as smtp:
        smtp.sendmail("someone@outside.test", [alias["address"]], b"Subject: via alias\r\n\r\nhello\r\n")
    imap = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls())
    try:
        imap.login(user, PASSWORD)
        wait_for(lambda: imap.select("INBOX", readonly=True)[1] == [b"1"], what="the mail sent to the alias")
    finally:
        imap.logout()
    assert api(server, "DELETE", f"/api/v1/aliases/{alias['address']}", admin)[0] == 204
    assert api(server, "GET", f"/api/v1/aliases/{alias['address']}", admin)[0] == 404
    assert api(server, "POST", f"/api/v1/domains/{DOMAIN}/aliases", admin, {"local_part": "t", "targets": []})[0] == 422


def test_tokens_over_the_api_are_for_admins_and_each_token_may_revoke_itself(server, admin):
    api(server, "POST", "/api/v1/domains", admin, {"name": "tok.test"})
    status, _, made = api(server, "POST", "/api/v1/tokens", admin,
                          {"role": "domain-admin", "domains": ["tok.test"], "label": "北区", "lifetime_seconds": 3600})
    assert status == 201 and made["secret"].startswith("dzm_") and made["token"]["domains"] == ["tok.test"]
    scoped = made["secret"]
    assert [d["name"] for d in api(server, "GET", "/api/v1/domains", scoped)[2]] == ["tok.test"]
    listed = api(server, "GET", "/api/v1/tokens", admin)[2]
    assert made["token"] in listed and scoped not in json.dumps(listed)
    assert api(server, "GET", "/api/v1/tokens", scoped)[0] == 403
    assert api(server, "POST", "/api/v1/tokens", scoped, {"role": "admin"})[0] == 403  # no way up
    assert api(server, "DELETE", f"/api/v1/tokens/{listed[0]['id']}", scoped)[0] == 403
    assert api(server, "DELETE", f"/api/v1/tokens/{made['token']['id']}", scoped)[0] == 204  # itself
    assert api(server, "GET", "/api/v1/me", scoped)[0] == 401
    assert api(server, "POST", "/api/v1/tokens", admin, {"role": "user"})[2]["error"] == "token_needs_user"
    entries = api(server, "GET", "/api/v1/audit?action=token.", admin)[2]
    assert [e["action"] for e in entries[:2]] == ["token.revoke", "token.create"]
    assert entries[0]["actor"] == f"token:{made['token']['id']}" and entries[0]["after"]["revoked"] is True


def test_routes_relay_networks_and_dkim_keys_over_the_api(server, admin):
    api(server, "POST", "/api/v1/domains", admin, {"name": "flow.test"})
    flow = token(server, "--role", "domain-admin", "--domain", "flow.test")
    status, _, route = api(server, "POST", "/api/v1/routes", admin, {"domain": "xn--wnyq9s.cn", "target": "192.0.2.5:2525"})
    assert status == 201 and route == {"domain": "电网.cn", "kind": "smtp", "host": "192.0.2.5", "port": 2525}
    assert route in api(server, "GET", "/api/v1/routes", admin)[2]
    assert api(server, "GET", "/api/v1/routes", flow)[0] == 403
    status, _, body = api(server, "POST", "/api/v1/routes", admin, {"domain": "x.test", "target": "hold:nobody@nowhere.test"})
    assert (status, body["error"]) == (404, "unknown_user")
    status, _, body = api(server, "POST", "/api/v1/routes", admin, {"domain": DOMAIN, "target": "192.0.2.5"})
    assert (status, body["error"]) == (422, "bad_route")  # a local domain is not routed away
    assert api(server, "DELETE", "/api/v1/routes/电网.cn", admin)[0] == 204
    assert api(server, "DELETE", "/api/v1/routes/电网.cn", admin)[0] == 404

    status, _, relay = api(server, "POST", "/api/v1/relay", admin, {"network": "198.51.100.0/24"})
    assert status == 201 and relay == {"network": "198.51.100.0/24", "source": "relay allow"}
    assert relay in api(server, "GET", "/api/v1/relay", admin)[2]
    assert api(server, "POST", "/api/v1/relay", admin, {"network": "0.0.0.0/0"})[0] == 422  # an open relay
    assert api(server, "POST", "/api/v1/relay", flow, {"network": "203.0.113.0/24"})[0] == 403
    assert api(server, "DELETE", "/api/v1/relay/198.51.100.0/24", admin)[0] == 204
    assert api(server, "DELETE", "/api/v1/relay/198.51.100.0/24", admin)[0] == 404

    assert api(server, "GET", "/api/v1/dkim/flow.test", flow)[0] == 404  # no key yet
    status, _, key = api(server, "POST", "/api/v1/dkim/flow.test", flow, {"bits": 1024})
    assert status == 201 and key["record_name"].endswith("._domainkey.flow.test") and key["txt"].startswith("v=DKIM1;")
    assert api(server, "GET", "/api/v1/dkim/flow.test", flow)[2] == key
    assert api(server, "POST", f"/api/v1/dkim/{DOMAIN}", flow, {})[0] == 404  # not its domain
    entries = api(server, "GET", "/api/v1/audit?action=dkim.", flow)[2]
    assert entries[0]["target"] == "flow.test" and "PRIVATE" not in json.dumps(entries)
    actions = [e["action"] for e in api(server, "GET", "/api/v1/audit?limit=20", admin)[2]]
    assert {"route.add", "route.remove", "relay.allow", "relay.remove", "dkim.generate"} <= set(actions)


def imap_login_ok(server, address: str, password: str) -> bool:
    imap = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls())
    try:
        imap.login(address, password)
        return True
    except imaplib.IMAP4.error:
        return False
    finally:
        try:
            imap.logout()
        except imaplib.IMAP4.abort:
            pass


def test_suspend_resume_quota_and_passwords_over_the_api(server, admin):
    api(server, "POST", "/api/v1/domains", admin, {"name": "patch.test"})
    api(server, "POST", "/api/v1/domains/patch.test/users", admin, {"local_part": "p1", "password": "First-pw-1"})
    api(server, "POST", "/api/v1/domains/patch.test/users", admin, {"local_part": "p2", "password": "First-pw-2"})
    boss = token(server, "--role", "domain-admin", "--domain", "patch.test")
    me = token(server, "--role", "user", "--user", "p1@patch.test")

    assert api(server, "PATCH", "/api/v1/users/p1@patch.test", me, {"password": "Second-pw-1"})[0] == 200
    assert imap_login_ok(server, "p1@patch.test", "Second-pw-1") and not imap_login_ok(server, "p1@patch.test", "First-pw-1")
    assert api(server, "PATCH", "/api/v1/users/p1@patch.test", me, {"status": "suspended"})[0] == 403
    assert api(server, "PATCH", "/api/v1/users/p1@patch.test", me, {"quota_bytes": 0})[0] == 403
    assert api(server, "PATCH", "/api/v1/users/p2@patch.test", me, {"password": "x-Y-z-123"})[0] == 404

    status, _, user = api(server, "PATCH", "/api/v1/users/p2@patch.test", boss, {"quota_bytes": 5 << 20, "status": "suspended"})
    assert status == 200 and (user["quota_bytes"], user["status"]) == (5 << 20, "suspended")
    assert not imap_login_ok(server, "p2@patch.test", "First-pw-2")
    assert api(server, "PATCH", "/api/v1/users/p2@patch.test", boss, {"status": "active"})[2]["status"] == "active"
    assert imap_login_ok(server, "p2@patch.test", "First-pw-2")
    assert api(server, "PATCH", "/api/v1/users/p2@patch.test", boss, {"status": "gone"})[0] == 422

    assert api(server, "PATCH", "/api/v1/domains/patch.test", boss, {"status": "suspended"})[0] == 403
    assert api(server, "PATCH", "/api/v1/domains/patch.test", admin, {"status": "suspended"})[2]["status"] == "suspended"
    assert not imap_login_ok(server, "p2@patch.test", "First-pw-2")
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=15) as smtp:
        smtp.mail("someone@outside.test")
        assert smtp.rcpt("p2@patch.test")[0] >= 500  # a suspended domain takes no mail
    api(server, "PATCH", "/api/v1/domains/patch.test", admin, {"status": "active"})
    assert imap_login_ok(server, "p2@patch.test", "First-pw-2")
    actions = [e["action"] for e in api(server, "GET", "/api/v1/audit?limit=12", admin)[2]]
    assert {"user.password", "user.quota", "user.suspend", "user.resume", "domain.suspend", "domain.resume"} <= set(actions)
    password_entry = next(e for e in api(server, "GET", "/api/v1/audit?action=user.password", admin)[2])
    assert password_entry["actor"] == f"token:{api(server, 'GET', '/api/v1/me', me)[2]['id']}"
    assert "Second-pw-1" not in json.dumps(api(server, "GET", "/api/v1/audit?limit=100", admin)[2])


def test_the_queue_over_the_api(tmp_path):
    srv = start_server(tmp_path / "n")  # its smarthost does not answer: mail to other domains waits
    try:
        admin = token(srv, "--role", "admin")
        sender = srv.add_user("q")
        with submit(srv, sender) as s:
            for n in range(2):
                s.sendmail(sender, ["far@remote.test"], f"Subject: 待发 {n}\r\n\r\nbody\r\n".encode())
        queued = wait_for(lambda: len(got := api(srv, "GET", "/api/v1/queue", admin)[2]) == 2 and got,
                          what="two queued messages")
        assert all(q["sender"] == sender and q["recipients"][0]["address"] == "far@remote.test" for q in queued)
        first = queued[0]["queue_id"]
        item = api(srv, "GET", f"/api/v1/queue/{first}", admin)[2]
        assert "Subject: " in item["headers"] and item["queue_id"] == first
        assert api(srv, "POST", "/api/v1/queue/hold", admin, {"queue_id": first})[2] == {"messages": 1}
        assert [q["held"] for q in api(srv, "GET", "/api/v1/queue", admin)[2]] == [True, False]
        assert api(srv, "POST", "/api/v1/queue/release", admin, {"queue_id": None})[2]["messages"] >= 1
        assert api(srv, "POST", "/api/v1/queue/retry", admin, {"queue_id": None})[0] == 200
        assert api(srv, "POST", "/api/v1/queue/bounce", admin, {"queue_id": None})[0] == 422
        assert api(srv, "DELETE", f"/api/v1/queue/{first}", admin)[0] == 204
        assert api(srv, "GET", f"/api/v1/queue/{first}", admin)[0] == 404
        assert api(srv, "PUT", "/api/v1/queue/concurrency", admin, {"total": 7})[2]["total"] == 7
        assert api(srv, "GET", "/api/v1/queue/concurrency", admin)[2]["total"] == 7
        assert api(srv, "PUT", "/api/v1/queue/concurrency", admin, {"total": 0})[0] == 422
        north = token(srv, "--role", "domain-admin", "--domain", DOMAIN)
        assert api(srv, "GET", "/api/v1/queue", north)[0] == 403
        actions = [e["action"] for e in api(srv, "GET", "/api/v1/audit?action=queue.", admin)[2]]
        assert actions == ["queue.concurrency", "queue.delete", "queue.retry", "queue.release", "queue.hold"]
    finally:
        srv.stop()


def test_fetch_accounts_and_secrets_over_the_api(tmp_path):
    srv = start_server(tmp_path / "n")
    try:
        admin = token(srv, "--role", "admin")
        outside, inside = srv.add_user("outside"), srv.add_user("inside")
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=15) as smtp:
            smtp.sendmail("a@remote.test", [outside], "Subject: 外部邮箱\r\n\r\nfetched from outside\r\n".encode())
        body = {"server": f"127.0.0.1:{srv.ports['pop3s']}", "username": outside, "password": PASSWORD,
                "protocol": "pop3", "security": "tls", "into": inside, "verify": False, "interval_seconds": 3600}
        status, _, made = api(srv, "POST", "/api/v1/fetch", admin, body)
        assert status == 201 and (made["mode"], made["into"], made["port"]) == ("account", inside, srv.ports["pop3s"])
        assert PASSWORD not in json.dumps(api(srv, "GET", "/api/v1/fetch", admin)[2])
        assert api(srv, "POST", "/api/v1/fetch", admin, {**body, "into": f"ghost@{DOMAIN}"})[0] == 404
        assert api(srv, "POST", "/api/v1/fetch/run", admin)[2] == {"messages": 1}
        (mail,) = wait_for(lambda: fetch_all(srv, inside), what="the fetched message")
        assert "Subject: 外部邮箱".encode() in mail and b"fetched from outside" in mail
        assert api(srv, "DELETE", f"/api/v1/fetch/{made['id']}", admin)[0] == 204
        assert api(srv, "DELETE", f"/api/v1/fetch/{made['id']}", admin)[0] == 404

        assert api(srv, "PUT", "/api/v1/secrets/smarthost-password", admin, {"value": "Relay-Secret-42"})[0] == 204
        assert {"name": "smarthost-password", "set": True} in api(srv, "GET", "/api/v1/secrets", admin)[2]
        assert srv.call(lambda s: s.secrets.get("smarthost-password")) == "Relay-Secret-42"
        assert api(srv, "PUT", "/api/v1/secrets/root-password", admin, {"value": "x"})[0] == 422
        assert api(srv, "DELETE", "/api/v1/secrets/smarthost-password", admin)[0] == 204
        assert {"name": "smarthost-password", "set": False} in api(srv, "GET", "/api/v1/secrets", admin)[2]
        log = json.dumps(api(srv, "GET", "/api/v1/audit?limit=50", admin)[2])
        assert "Relay-Secret-42" not in log and PASSWORD not in log and '"fetch.add"' in log and '"secret.set"' in log
    finally:
        srv.stop()


def test_users_import_and_export_over_the_api(server, admin):
    api(server, "POST", "/api/v1/domains", admin, {"name": "bulk.test"})
    boss = token(server, "--role", "domain-admin", "--domain", "bulk.test")
    text = ("address,password,quota,name\n"
            "zhao@bulk.test,Zhao-pw-2026,1GB,赵工\n"
            f"intruder@{DOMAIN},x-Y-z-123,0,not here\n"
            "bad address@bulk.test,x-Y-z-123,0,\n"
            "qian@bulk.test,Qian-pw-2026,lots,钱工\n")
    status, _, result = api(server, "POST", "/api/v1/domains/bulk.test/users/import", boss, {"csv": text},
                            lang="zh-CN")
    assert status == 200 and result["imported"] == 1, result
    assert [(r["line"], r["why"]) for r in result["rejected"]] == [
        (3, f"intruder@{DOMAIN}: 不属于该域名"), (4, "bad address@bulk.test: 无效的电子邮件地址"), (5, "配额无效 'lots'")]
    assert imap_login_ok(server, "zhao@bulk.test", "Zhao-pw-2026")
    assert api(server, "GET", f"/api/v1/users/intruder@{DOMAIN}", admin)[0] == 404  # nothing made elsewhere
    assert api(server, "GET", "/api/v1/domains/bulk.test/users/export", boss)[0] == 403  # hashes: admins only
    request = urllib.request.Request(f"https://127.0.0.1:{server.ports['https']}/api/v1/domains/bulk.test/users/export",
                                     headers={"Authorization": f"Bearer {admin}"})
    with urllib.request.urlopen(request, context=client_tls(), timeout=15) as response:
        assert response.headers["Content-Type"].startswith("text/csv")
        exported = response.read().decode()
    assert exported.startswith("address,password,quota,name,status,used\n")
    assert 'zhao@bulk.test,"$argon2id$' in exported and "赵工" in exported and "Zhao-pw-2026" not in exported
    assert "user.import" in {e["action"] for e in api(server, "GET", "/api/v1/audit?action=user.import", admin)[2]}


def test_grants_notices_reports_settings_and_registrations_for_every_role(server, admin):
    """The routes the admin pages brought, for each role: allowed, forbidden, and another domain's."""
    api(server, "POST", "/api/v1/domains", admin, {"name": "roles-a.test"})
    api(server, "POST", "/api/v1/domains", admin, {"name": "roles-b.test"})
    for local, domain in (("a1", "roles-a.test"), ("b1", "roles-b.test")):
        api(server, "POST", f"/api/v1/domains/{domain}/users", admin, {"local_part": local, "password": "pw-roles-1"})
    chief = token(server, "--role", "domain-admin", "--domain", "roles-a.test")
    user = token(server, "--role", "user", "--user", "a1@roles-a.test")
    # grants: admins only
    status, _, grant = api(server, "PUT", "/api/v1/admins/a1@roles-a.test", admin,
                           {"role": "domain-admin", "domains": ["roles-a.test"]})
    assert status == 200 and grant == {"address": "a1@roles-a.test", "role": "domain-admin",
                                       "domains": ["roles-a.test"], "totp": False}
    for who in (chief, user):
        assert api(server, "GET", "/api/v1/admins", who)[0] == 403
        assert api(server, "PUT", "/api/v1/admins/b1@roles-b.test", who, {"role": "admin"})[0] == 403
    status, _, totp = api(server, "POST", "/api/v1/admins/a1@roles-a.test/totp", admin)
    assert status == 201 and totp["uri"].startswith("otpauth://totp/") and len(totp["secret"]) >= 16
    assert [g["totp"] for g in api(server, "GET", "/api/v1/admins", admin)[2]
            if g["address"] == "a1@roles-a.test"] == [True]
    assert api(server, "DELETE", "/api/v1/admins/a1@roles-a.test/totp", admin)[0] == 204
    assert api(server, "DELETE", "/api/v1/admins/a1@roles-a.test", admin)[0] == 204
    assert api(server, "DELETE", "/api/v1/admins/a1@roles-a.test", admin)[0] == 404
    # notices: a domain admin to its domain only
    assert api(server, "POST", "/api/v1/notices", chief, {"subject": "s", "body": "b", "domain": "roles-a.test"}
               )[2] == {"delivered": 1}
    assert api(server, "POST", "/api/v1/notices", chief, {"subject": "s", "body": "b", "domain": "roles-b.test"}
               )[0] == 404
    assert api(server, "POST", "/api/v1/notices", chief, {"subject": "s", "body": "b"})[0] == 403
    assert api(server, "POST", "/api/v1/notices", user, {"subject": "s", "body": "b", "domain": "roles-a.test"}
               )[0] == 403
    assert api(server, "POST", "/api/v1/notices", admin, {"subject": "two\nlines", "body": "b"})[0] == 422
    # the usage report: each its own domains
    mine = {r["domain"] for r in api(server, "GET", "/api/v1/reports/usage", chief)[2]}
    assert mine == {"roles-a.test"}
    assert {"roles-a.test", "roles-b.test"} <= {r["domain"] for r in api(server, "GET", "/api/v1/reports/usage",
                                                                          admin)[2]}
    assert api(server, "GET", "/api/v1/reports/usage", user)[0] == 403
    assert api(server, "GET", "/api/v1/reports/usage?month=2026-13", admin)[0] == 422
    # settings and logo: its own domain, not the limits
    assert api(server, "GET", "/api/v1/domains/roles-b.test/settings", chief)[0] == 404
    assert api(server, "PATCH", "/api/v1/domains/roles-a.test/settings", chief, {"quota_bytes": 1 << 30})[0] == 403
    assert api(server, "PATCH", "/api/v1/domains/roles-a.test/settings", chief,
               {"display_name": "A 厂", "self_registration": True})[2]["display_name"] == "A 厂"
    assert api(server, "PATCH", "/api/v1/domains/roles-a.test/settings", user, {"display_name": "x"})[0] == 403
    assert api(server, "PUT", "/api/v1/domains/roles-a.test/logo", chief, raw=b"<svg/>")[0] == 422
    assert api(server, "PUT", "/api/v1/domains/roles-b.test/logo", chief, raw=b"GIF89a....")[0] == 404
    assert api(server, "PUT", "/api/v1/domains/roles-a.test/logo", chief, raw=b"GIF89a" + b"\0" * 20)[0] == 204
    # registrations: made on the page; seen and approved by the domain's admin only
    server.call(lambda s: s.profiles.register("roles-a.test", "new1", "新人", "Long-enough-1", "192.0.2.9"))
    listed = api(server, "GET", "/api/v1/registrations", chief)[2]
    assert [r["address"] for r in listed] == ["new1@roles-a.test"]
    other = token(server, "--role", "domain-admin", "--domain", "roles-b.test")
    assert api(server, "GET", "/api/v1/registrations", other)[2] == []
    assert api(server, "POST", f"/api/v1/registrations/{listed[0]['id']}/approve", other)[0] == 404
    status, _, made = api(server, "POST", f"/api/v1/registrations/{listed[0]['id']}/approve", chief)
    assert status == 200 and made["address"] == "new1@roles-a.test" and made["name"] == "新人"
    assert api(server, "DELETE", f"/api/v1/registrations/{listed[0]['id']}", chief)[0] == 404
    # a user renames nobody, not even itself; an admin renames
    assert api(server, "PATCH", "/api/v1/users/a1@roles-a.test", user, {"name": "me"})[0] == 403
    assert api(server, "PATCH", "/api/v1/users/a1@roles-a.test", chief, {"name": "甲一"})[2]["name"] == "甲一"
