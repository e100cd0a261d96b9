"""The admin pages and the users' page over the node's HTTPS listener (issue #11), with a cookie-keeping
HTTP client: logins and their lockout, sessions (fixation, logout, revoked grants, suspended accounts),
CSRF, headers, roles (a domain admin reaches nothing of another domain), the second factor, and what the
pages change working for mail (IMAP, SMTP). The browser itself: tests/e2e/test_web_browser.py."""

from __future__ import annotations

import csv
import imaplib
import io
import json
import re
import smtplib
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import pyotp
import pytest
from argon2 import PasswordHasher

from conftest import DOMAIN, PASSWORD, client_tls, dizimail_cli, start_server, write_config
from helpers import api, busy, greeting_delays, token, wait_for
from processes import serving
from web_tools import WebClient

SESSION = "__Host-dzm"


@pytest.fixture(scope="module")
def boss(server) -> str:
    address = server.add_user("boss")
    dizimail_cli(server.config_file, "admin", "grant", address, "--role", "admin")
    return address


@pytest.fixture
def admin_web(server, boss) -> WebClient:
    web = WebClient(server)
    assert web.login(boss, PASSWORD).url.endswith("/admin/")
    return web


def domain_admin(server, local: str, domain: str) -> tuple[str, WebClient]:
    address = server.add_user(local)
    dizimail_cli(server.config_file, "admin", "grant", address, "--role", "domain-admin", "--domain", domain)
    web = WebClient(server)
    assert web.login(address, PASSWORD).status == 200
    return address, web


def test_login_sets_a_strict_session_cookie_and_pages_carry_a_csp_without_inline_script(server, boss):
    web = WebClient(server)
    form = web.get("/admin/login")
    assert form.status == 200 and 'name="password"' in form.text
    page = web.login(boss, PASSWORD)
    assert page.status == 200 and page.url.endswith("/admin/")
    cookie = web.cookie_object(SESSION)
    assert cookie is not None and cookie.secure and cookie.path == "/" and not cookie.domain_specified
    raw = WebClient(server, follow=False)
    answer = raw.post("/admin/login", {"csrf": raw.get("/admin/login").csrf, "address": boss, "password": PASSWORD})
    assert answer.status == 303 and answer.headers["location"] == "/admin/"
    set_cookie = answer.headers["set-cookie"]
    assert SESSION in set_cookie and all(flag in set_cookie for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"))
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text and " on" + "click=" not in page.text  # no inline script, no handlers
    assert re.findall(r"<script[^>]*>", page.text) == ['<script src="/static/site.js" defer>']


def test_a_session_brought_before_login_is_never_the_one_logged_in(server, boss):
    """Session fixation: a session secret planted in the victim's browser (here: the attacker's own, live
    one) is ended by the victim's login, and the victim gets a new one."""
    attacker = WebClient(server)
    attacker.login(boss, PASSWORD)
    planted = attacker.cookie(SESSION)
    victim = WebClient(server)
    victim.set_cookie(SESSION, planted)
    assert victim.login(boss, PASSWORD).url.endswith("/admin/")
    assert victim.cookie(SESSION) != planted
    assert attacker.get("/admin/").url.endswith("/admin/login?next=%2Fadmin%2F")  # the planted one is dead
    assert victim.get("/admin/domains").status == 200


def test_forms_without_the_sessions_csrf_token_change_nothing(server, admin_web, boss):
    for fields in ({"name": "csrf1.test"}, {"name": "csrf1.test", "csrf": "x" * 64}):
        page = admin_web.post("/admin/domains", fields)
        assert page.status == 403 and "The form has expired" in page.text
    other = WebClient(server)
    other.login(boss, PASSWORD)  # a token valid for another session is not valid for this one
    assert admin_web.post("/admin/domains", {"name": "csrf1.test", "csrf": other.get("/admin/").csrf}).status == 403
    token_ = admin_web.get("/admin/domains").csrf
    assert admin_web.post("/admin/domains", {"name": "csrf1.test", "csrf": token_},
                          {"Origin": "https://evil.example"}).status == 403
    assert "csrf1.test" not in admin_web.get("/admin/domains").text
    # the login form: its token must match its own cookie
    fresh = WebClient(server)
    assert fresh.post("/admin/login", {"csrf": "made-up", "address": boss, "password": PASSWORD}).status == 403
    assert fresh.cookie(SESSION) is None
    # and the same form with its token works
    assert admin_web.post("/admin/domains", {"name": "csrf1.test", "csrf": token_}).url.endswith("done=domain_added")


def test_an_admin_adds_a_domain_and_a_user_who_then_logs_in_over_imap_and_gets_mail(server, admin_web):
    assert admin_web.submit("/admin/domains", "/admin/domains", {"name": "xn--wnyq9s.cn"}).status == 200
    assert "电网.cn" in admin_web.get("/admin/domains").text
    done = admin_web.submit("/admin/domains/电网.cn", "/admin/domains/电网.cn/users",
                            {"local_part": "li", "name": "李工 <b>", "password": "Grid-pass-42", "quota_mib": "50"})
    assert done.url.endswith("done=user_added") and "The user was added." in done.text
    assert "李工 &lt;b&gt;" in done.text  # a name is text
    imap = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls())
    try:
        assert imap.login("li@xn--wnyq9s.cn", "Grid-pass-42")[0] == "OK"
    finally:
        imap.logout()
    user = api(server, "GET", "/api/v1/users/li@电网.cn", token(server, "--role", "admin"))[2]
    assert user["quota_bytes"] == 50 * 1024 * 1024 and user["name"] == "李工 <b>"
    audit = admin_web.get("/admin/audit?action=user.")
    assert "web:boss@example.test" in audit.text and "li@电网.cn" in audit.text


def test_user_page_resets_password_sets_quota_suspends_and_deletes(server, admin_web, user):
    path = f"/admin/users/{user}"
    assert admin_web.submit(path, path, {"action": "password", "password": "New-pass-99"}).url.endswith("password_set")
    with smtplib.SMTP_SSL("127.0.0.1", server.ports["smtps"], context=client_tls(), timeout=15) as smtp:
        smtp.login(user, "New-pass-99")
    assert admin_web.submit(path, path, {"action": "quota", "quota_mib": "7"}).url.endswith("quota_set")
    assert admin_web.submit(path, path, {"action": "quota", "quota_mib": "-1"}).url.endswith("error=bad_quota")
    assert admin_web.submit(path, path, {"action": "suspend"}).url.endswith("user_suspended")
    with pytest.raises(imaplib.IMAP4.error):
        imap = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls())
        try:
            imap.login(user, "New-pass-99")
        finally:
            imap.shutdown()
    assert admin_web.submit(path, path, {"action": "resume"}).url.endswith("user_resumed")
    alias = admin_web.submit(path, f"/admin/domains/{DOMAIN}/aliases",
                             {"local_part": "fw-" + user.partition("@")[0], "targets": f"{user}\nfar@remote.test",
                              "back": path})
    assert alias.url.split("?")[0].endswith(path) and "far@remote.test" in alias.text
    refused = admin_web.submit(path, path, {"action": "delete", "confirm": "someone-else@example.test"})
    assert refused.url.endswith("error=confirm_name") and "nothing was deleted" in refused.text
    assert admin_web.submit(path, path, {"action": "delete", "confirm": user}).url.endswith("user_removed")
    assert admin_web.get(path).status == 404


def test_deleting_a_domain_takes_its_users_and_aliases_once_its_name_is_typed(server, admin_web):
    admin_web.submit("/admin/domains", "/admin/domains", {"name": "gone.test"})
    admin_web.submit("/admin/domains/gone.test", "/admin/domains/gone.test/users",
                     {"local_part": "a", "password": "pw-pw-pw-1"})
    admin_web.submit("/admin/domains/gone.test", "/admin/domains/gone.test/aliases",
                     {"local_part": "all", "targets": "a@gone.test"})
    page = admin_web.submit("/admin/domains/gone.test", "/admin/domains/gone.test/delete", {"confirm": "other.test"})
    assert page.url.endswith("error=confirm_name")
    page = admin_web.submit("/admin/domains/gone.test", "/admin/domains/gone.test/delete", {"confirm": "gone.test"})
    assert page.url.endswith("/admin/domains?done=domain_removed") and "gone.test" not in page.text
    assert admin_web.get("/admin/domains/gone.test").status == 404


def test_a_domain_admin_sees_and_reaches_nothing_of_another_domain(server, admin_web):
    admin_web.submit("/admin/domains", "/admin/domains", {"name": "north.test"})
    admin_web.submit("/admin/domains", "/admin/domains", {"name": "south.test"})
    admin_web.submit("/admin/domains/south.test", "/admin/domains/south.test/users",
                     {"local_part": "s1", "password": "pw-south-1"})
    _, north = domain_admin(server, "northadmin", "north.test")
    listing = north.get("/admin/domains").text
    assert "north.test" in listing and "south.test" not in listing and f'href="/admin/domains/{DOMAIN}"' not in listing
    for path in ("/admin/domains/south.test", "/admin/domains/nowhere.test", "/admin/users/s1@south.test",
                 "/admin/domains/south.test/users.csv"):
        assert north.get(path).status == 404, path
    csrf = north.get("/admin/domains").csrf
    for action, fields in (("/admin/domains/south.test/users", {"local_part": "x", "password": "pw-pw-1"}),
                           ("/admin/users/s1@south.test", {"action": "password", "password": "mine-now-1"}),
                           ("/admin/aliases/x@south.test/delete", {}),
                           ("/admin/domains/south.test/dkim", {})):
        assert north.post(action, {"csrf": csrf, **fields}).status == 404, action
    for path in ("/admin/queue", "/admin/routing", "/admin/admins"):
        assert north.get(path).status == 403, path
    assert north.post("/admin/domains", {"csrf": csrf, "name": "mine.test"}).status == 403
    assert north.post("/admin/domains/north.test/status", {"csrf": csrf, "status": "suspended"}).status == 403
    assert north.post("/admin/notice", {"csrf": csrf, "subject": "hi", "body": "all", "domain": ""}).status == 403
    assert "south.test" not in north.get("/admin/reports").text
    assert "south.test" not in north.get("/admin/audit").text and "s1@south.test" in admin_web.get("/admin/audit").text
    # its own domain it administers
    page = north.submit("/admin/domains/north.test", "/admin/domains/north.test/users",
                        {"local_part": "n1", "password": "pw-north-1"})
    assert page.url.endswith("done=user_added") and "n1@north.test" in page.text


def test_a_csv_import_reports_each_refused_line_and_its_job_is_only_its_owners(server, admin_web, boss):
    admin_web.submit("/admin/domains", "/admin/domains", {"name": "import.test"})
    body = ("address,password,quota,name\r\nok1@import.test,pw-1-pw,0,一号\r\nok2@import.test,pw-2-pw,0,\r\n"
            "bad address,pw,0,\r\nother@elsewhere.test,pw-3-pw,0,\r\n")
    boundary = "----dizimailtest"
    csrf = admin_web.get("/admin/domains/import.test").csrf
    data = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"u.csv\"\r\n"
            f"Content-Type: text/csv\r\n\r\n{body}\r\n--{boundary}--\r\n").encode()
    page = admin_web.request("POST", "/admin/domains/import.test/import", data,
                             {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert page.status == 200 and "/admin/jobs/" in page.url and "<progress" in page.text
    job = page.url.split("/admin/jobs/")[1]
    live = wait_for(lambda: (p := admin_web.get(f"/admin/jobs/{job}/live")) and "data-finished" in p.text and p)
    assert "2 users imported, 2 rows refused" in live.text
    assert "other@elsewhere.test: not in this domain" in live.text and "<td>4</td>" in live.text
    other = WebClient(server)
    other.login(boss, PASSWORD)
    assert other.get(f"/admin/jobs/{job}").status == 200  # the same account (another browser of the admin)
    _, stranger = domain_admin(server, "importadmin", "import.test")
    assert stranger.get(f"/admin/jobs/{job}").status == 404
    export = admin_web.get("/admin/domains/import.test/users.csv")
    rows = list(csv.reader(io.StringIO(export.body.decode("utf-8-sig"))))
    assert rows[0][:3] == ["address", "name", "status"] and {r[0] for r in rows[1:]} == {"ok1@import.test",
                                                                                        "ok2@import.test"}
    assert "$argon2" not in export.text  # no password hashes in the browser's export


def test_queue_view_shows_outsiders_text_as_text_and_acts_on_messages(server, admin_web, user):
    evil = '<img src=x onerror=alert(1)>'
    with smtplib.SMTP_SSL("127.0.0.1", server.ports["smtps"], context=client_tls(), timeout=15) as smtp:
        smtp.login(user, PASSWORD)
        smtp.sendmail(user, ['"<script>alert(2)</script>"@far.test'],
                      f"From: {evil} <{user}>\r\nSubject: {evil}\r\n\r\nhello\r\n".encode())
    page = admin_web.get("/admin/queue?q=far.test")
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page.text and "<script>alert" not in page.text
    queue_id = re.search(r'href="/admin/queue/([^"]+)"', page.text)[1]
    shown = admin_web.get(f"/admin/queue/{queue_id}")
    assert "&lt;img src=x onerror=alert(1)&gt;" in shown.text and "<img" not in shown.text
    held = admin_web.submit(f"/admin/queue/{queue_id}", "/admin/queue", {"action": "hold", "queue_id": queue_id})
    assert "done=queue_done" in held.url and 'class="badge suspended"' in held.text
    assert "held" in admin_web.get("/admin/queue?held=yes").text and queue_id in admin_web.get("/admin/queue?held=yes").text
    assert admin_web.submit(f"/admin/queue/{queue_id}", "/admin/queue",
                            {"action": "delete", "queue_id": queue_id}).url.endswith("done=queue_removed")
    assert admin_web.get(f"/admin/queue/{queue_id}").status == 404


def test_logout_ends_the_session_and_revoking_a_grant_ends_its_sessions_at_once(server):
    address, web = domain_admin(server, "shortlived", DOMAIN)
    assert web.get("/admin/").status == 200
    dizimail_cli(server.config_file, "admin", "revoke", address)
    assert web.get("/admin/").url.endswith("/admin/login?next=%2Fadmin%2F")
    dizimail_cli(server.config_file, "admin", "grant", address, "--role", "domain-admin", "--domain", DOMAIN)
    web.login(address, PASSWORD)
    secret = web.cookie(SESSION)
    page = web.submit("/admin/", "/logout", {})
    assert page.url.endswith("/") and web.cookie(SESSION) is None
    web.set_cookie(SESSION, secret)  # kept by somebody: dead all the same
    assert "/admin/login" in web.get("/admin/").url


def test_a_user_logs_in_at_the_root_changes_its_password_and_cannot_reach_the_admin_pages(server, user):
    web = WebClient(server, lang="zh-CN,zh;q=0.9")
    page = web.get("/")
    assert "登录您的邮箱" in page.text and page.headers["content-language"] == "zh-CN"
    page = web.login(user, PASSWORD, admin=False)
    assert page.url.endswith("/mail") and "收件箱" in page.text  # webmail (issue #13)
    page = web.get("/account")
    assert user in page.text and "修改密码" in page.text
    assert "/admin/login" in web.get("/admin/").url  # a user's session is no admin's
    differ = web.submit("/account", "/account/password", {"current": PASSWORD, "password": "New-1-pass",
                                                          "again": "New-2-pass"})
    assert differ.url.endswith("error=passwords_differ") and "两次输入的新密码不一致" in differ.text
    wrong = web.submit("/account", "/account/password", {"current": "nope", "password": "New-1-pass",
                                                         "again": "New-1-pass"})
    assert wrong.url.endswith("error=auth_failed")
    done = web.submit("/account", "/account/password", {"current": PASSWORD, "password": "New-1-pass",
                                                        "again": "New-1-pass"})
    assert done.url.endswith("done=password_set") and "密码已修改" in done.text
    imap = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls())
    try:
        assert imap.login(user, "New-1-pass")[0] == "OK"
    finally:
        imap.logout()
    no_admin = WebClient(server)
    refused = no_admin.login(user, "New-1-pass")  # right password, but no grant
    assert refused.status == 401 and "This account may not administer" in refused.text


def test_language_follows_the_browser_then_the_switch_and_is_remembered(server, admin_web):
    admin_web.lang = "zh-CN"
    assert "仪表盘" in admin_web.get("/admin/").text
    page = admin_web.get("/lang/en?next=/admin/domains")
    assert page.url.endswith("/admin/domains") and "Domains" in page.text and "域名" not in page.text
    assert "Dashboard" in admin_web.get("/admin/").text  # remembered, though the browser still asks for zh
    assert admin_web.get("/lang/zh_CN?next=//evil.example/").url.endswith(":" + admin_web.base.rsplit(":", 1)[1] + "/")
    assert "仪表盘" in admin_web.get("/admin/").text
    dates = admin_web.get("/admin/audit").text
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", dates)


def test_the_dashboard_counts_todays_mail_and_its_fragment_refreshes(server, admin_web, user):
    def accepted() -> int:
        return int(re.search(r'data-fact="accepted">([\d,]+)<', admin_web.get("/admin/live").text)[1].replace(",", ""))
    count = accepted()
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=15) as smtp:
        smtp.sendmail("a@outside.test", [user], b"Subject: count me\r\n\r\nx\r\n")
    assert accepted() == count + 1
    page = admin_web.get("/admin/")
    assert 'data-refresh="/admin/live"' in page.text and 'data-fact="queue"' in page.text


def test_a_notice_reaches_every_user_of_a_domain_as_mail(server, admin_web):
    admin_web.submit("/admin/domains", "/admin/domains", {"name": "notice.test"})
    for local in ("n1", "n2"):
        admin_web.submit("/admin/domains/notice.test", "/admin/domains/notice.test/users",
                         {"local_part": local, "password": "pw-notice-1"})
    page = admin_web.submit("/admin/notice", "/admin/notice", {"domain": "notice.test", "subject": "明天停电检修",
                                                               "body": "全厂 8:00–12:00 停电。"})
    assert page.url.endswith("done=notice_sent")
    for local in ("n1", "n2"):
        imap = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls())
        try:
            imap.login(f"{local}@notice.test", "pw-notice-1")
            imap.select("INBOX")
            _, data = imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT AUTO-SUBMITTED FROM)])")
            header = data[0][1].decode()
            assert "=?utf-8?" in header.lower() and "auto-generated" in header
        finally:
            imap.logout()
    assert "notice.send" in admin_web.get("/admin/audit?action=notice.").text
    report = admin_web.get("/admin/reports")
    row = re.search(r"<tr><td>notice.test</td>(.*?)</tr>", report.text)[1]
    assert row.startswith("<td>2</td>")  # two mailboxes
    assert re.findall(r"<td>([\d,]+)</td>", row)[1] == "2"  # two messages in (the notice, once for each)


def test_a_notice_can_be_sent_later_from_the_page(server, admin_web):
    admin_web.submit("/admin/domains", "/admin/domains", {"name": "later.test"})
    admin_web.submit("/admin/domains/later.test", "/admin/domains/later.test/users",
                     {"local_part": "l1", "password": "pw-notice-1"})
    at = datetime.now().replace(microsecond=0) + timedelta(seconds=3)  # the server's zone, as the field means
    page = admin_web.submit("/admin/notice", "/admin/notice", {"domain": "later.test", "subject": "周五演练",
                                                               "body": "消防演练。", "at": at.isoformat()})
    assert page.url.endswith("done=notice_scheduled")
    assert "l1@later.test" in admin_web.get("/admin/queue").text  # waiting, visible (and cancellable) there

    def arrived() -> bool:
        with imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls()) as imap:
            imap.login("l1@later.test", "pw-notice-1")
            return imap.select("INBOX")[1][0] != b"0"
    wait_for(arrived, what="the scheduled notice")


def test_totp_second_factor_for_an_admin(server):
    address = server.add_user("totpadmin")
    dizimail_cli(server.config_file, "admin", "grant", address, "--role", "admin")
    uri = dizimail_cli(server.config_file, "admin", "totp", address).stdout.strip().splitlines()[-1]
    assert uri.startswith("otpauth://totp/dizimail:")
    secret = re.search(r"secret=([A-Z2-7]+)", uri)[1]
    web = WebClient(server)
    assert web.login(address, PASSWORD).status == 401  # no code
    assert web.login(address, PASSWORD, code="000000").status == 401
    code = pyotp.TOTP(secret).now()
    assert web.login(address, PASSWORD, code=code).url.endswith("/admin/")
    again = WebClient(server)
    assert again.login(address, PASSWORD, code=code).status == 401  # a code works once
    assert "Wrong or used verification code" in again.login(address, PASSWORD, code=code).text
    page = web.submit("/admin/security", "/admin/security", {"action": "off"})
    assert page.url.endswith("done=totp_off")
    assert WebClient(server).login(address, PASSWORD).url.endswith("/admin/")


def test_brute_force_on_the_login_page_locks_the_client_out_of_every_protocol(tmp_path):
    srv = start_server(tmp_path / "n")  # auth.fail_threshold: 10 failed logins
    try:
        address = srv.add_user("target")
        dizimail_cli(srv.config_file, "admin", "grant", address, "--role", "admin")
        web = WebClient(srv)

        def attempt(password: str) -> int:
            try:
                return web.login(address, password).status
            except OSError:  # urllib's URLError too: refused at connect, as every protocol refuses it
                return 0
        statuses = [attempt(f"guess-{i}") for i in range(12)]
        assert statuses[:9] == [401] * 9 and set(statuses[10:]) <= {0, 429}, statuses
        assert attempt(PASSWORD) in (0, 429)  # the right password too, now
        with pytest.raises((imaplib.IMAP4.error, OSError)):
            imap = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=client_tls(), timeout=10)
            imap.login(address, PASSWORD)
    finally:
        srv.stop()


def test_heavy_pages_do_not_keep_mail_waiting(tmp_path):
    """SMTP and IMAP greetings stay under 100 ms while three admins load heavy pages. Measured against ``dizimail serve`` in a process of its own, as in production: in this process the
    node would share the GIL (and the collector's pauses) with the test's clients."""
    config_file, ports = write_config(tmp_path / "n")
    with open(tmp_path / "users.csv", "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["address", "password", "quota", "name"])
        hashed = PasswordHasher(time_cost=1, memory_cost=1024).hash("Pw-of-everyone-1")  # imported as it is
        out.writerows([f"u{i:04d}@{DOMAIN}", hashed, 0, f"staff {i}"] for i in range(5000))
        out.writerow([f"heavy@{DOMAIN}", PASSWORD, 0, "heavy"])
    dizimail_cli(config_file, "user", "import", str(tmp_path / "users.csv"))
    dizimail_cli(config_file, "admin", "grant", f"heavy@{DOMAIN}", "--role", "admin")
    with serving(config_file, ports, tmp_path / "node.log") as node:
        errors: list[str] = []

        def reader(path: str) -> Callable[[], None]:
            web = WebClient(node)
            web.login(f"heavy@{DOMAIN}", PASSWORD)

            def step() -> None:
                if (status := web.get(path).status) != 200:
                    errors.append(f"{path} {status}")
            return step
        with busy(reader("/admin/"), reader(f"/admin/domains/{DOMAIN}/users.csv"),
                  reader(f"/admin/domains/{DOMAIN}?q=staff")):
            delays = greeting_delays(ports["smtp"], count=8) + greeting_delays(ports["imap"], 8, greeting=b"* OK")
        assert not errors and max(delays) < 0.1, (errors, delays)


PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4d00000000049454e44ae426082")


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, dict[str, str]]:
    boundary = "----dizimailtest"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"; filename="{n}"\r\nContent-Type: {t}\r\n\r\n'
              .encode() + data + b"\r\n" for k, (n, data, t) in files.items()]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_domain_limits_hold_for_pages_api_and_command_line_and_a_domain_admin_cannot_raise_them(server, admin_web):
    admin_web.submit("/admin/domains", "/admin/domains", {"name": "small.test"})
    path = "/admin/domains/small.test"
    page = admin_web.submit(path, f"{path}/settings", {"display_name": "小厂", "quota_mib": "100", "max_users": "2"})
    assert page.url.endswith("done=settings_saved") and 'value="100"' in page.text
    assert admin_web.submit(path, f"{path}/users", {"local_part": "a", "password": "pw-aaaa-1"}).url.endswith(
        "error=quota_needed")
    assert admin_web.submit(path, f"{path}/users", {"local_part": "a", "password": "pw-aaaa-1", "quota_mib": "60"}
                            ).url.endswith("done=user_added")
    assert admin_web.submit(path, f"{path}/users", {"local_part": "b", "password": "pw-bbbb-1", "quota_mib": "60"}
                            ).url.endswith("error=domain_quota_full")
    assert admin_web.submit(path, f"{path}/users", {"local_part": "b", "password": "pw-bbbb-1", "quota_mib": "40"}
                            ).url.endswith("done=user_added")
    full = admin_web.submit(path, f"{path}/users", {"local_part": "c", "password": "pw-cccc-1", "quota_mib": "1"})
    assert full.url.endswith("error=domain_full") and "as many mailboxes as it may" in full.text
    assert admin_web.submit("/admin/users/a@small.test", "/admin/users/a@small.test",
                            {"action": "quota", "quota_mib": "61"}).url.endswith("error=domain_quota_full")
    admin = token(server, "--role", "admin")
    assert api(server, "POST", "/api/v1/domains/small.test/users", admin,
               {"local_part": "d", "password": "pw-dddd-1", "quota_bytes": 1})[2]["error"] == "domain_full"
    csv_rows = "d@small.test,pw-dddd-1,1MB,\n"
    imported = api(server, "POST", "/api/v1/domains/small.test/users/import", admin, {"csv": csv_rows})[2]
    assert imported["imported"] == 0 and "as many mailboxes" in imported["rejected"][0]["why"]
    settings = api(server, "GET", "/api/v1/domains/small.test/settings", admin)[2]
    assert settings == {"domain": "small.test", "display_name": "小厂", "logo": False, "quota_bytes": 100 << 20,
                        "max_users": 2, "self_registration": False}
    assert api(server, "PATCH", "/api/v1/domains/small.test/settings", admin, {"max_users": 1})[0] == 409
    # its domain admin: sees the limits, cannot raise them
    _, chief = domain_admin(server, "smallchief", "small.test")
    chief_token = token(server, "--role", "domain-admin", "--domain", "small.test")
    assert api(server, "PATCH", "/api/v1/domains/small.test/settings", chief_token, {"max_users": 50})[0] == 403
    assert api(server, "PATCH", "/api/v1/domains/small.test/settings", chief_token,
               {"self_registration": True})[2]["self_registration"] is True
    page = chief.submit(path, f"{path}/settings", {"display_name": "小厂邮件", "quota_mib": "9999", "max_users": "99"})
    assert page.url.endswith("done=settings_saved") and "100 MiB" in page.text and 'name="max_users"' not in page.text
    after = api(server, "GET", "/api/v1/domains/small.test/settings", admin)[2]
    assert (after["quota_bytes"], after["max_users"], after["display_name"]) == (100 << 20, 2, "小厂邮件")
    out = dizimail_cli(server.config_file, "domain", "settings", "small.test", "--max-users", "3", "--json").stdout
    assert '"max_users": 3' in out


def test_people_ask_for_a_mailbox_on_the_login_page_and_an_admin_approves(server, admin_web):
    admin_web.submit("/admin/domains", "/admin/domains", {"name": "open.test"})
    admin_web.submit("/admin/domains/open.test", "/admin/domains/open.test/settings",
                     {"display_name": "开放电厂", "self_registration": "on"})
    body, headers = multipart({"csrf": admin_web.get("/admin/domains/open.test").csrf}, {"logo": ("l.png", PNG, "image/png")})
    assert admin_web.request("POST", "/admin/domains/open.test/logo", body, headers).url.endswith("settings_saved")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    body, headers = multipart({"csrf": admin_web.get("/admin/domains/open.test").csrf},
                              {"logo": ("l.png", svg, "image/png")})  # says PNG; is SVG
    assert admin_web.request("POST", "/admin/domains/open.test/logo", body, headers).url.endswith("error=bad_logo")
    visitor = WebClient(server, lang="zh-CN")
    login = visitor.get("/?domain=open.test")
    assert "开放电厂" in login.text and 'src="/brand/open.test/logo"' in login.text and "还没有邮箱？" in login.text
    logo = visitor.get("/brand/open.test/logo")
    assert logo.body == PNG and logo.headers["content-type"] == "image/png"
    assert logo.headers["x-content-type-options"] == "nosniff"
    assert "开放电厂" not in visitor.get("/").text and "还没有邮箱？" not in visitor.get("/").text
    form = visitor.get("/register?domain=open.test")
    fields = {"csrf": form.csrf, "domain": "open.test", "local_part": "wang", "name": "王 <i>", "password": "short",
              "again": "short"}
    assert visitor.post("/register?domain=open.test", fields).status == 422
    fields.update(password="Long-enough-1", again="Long-enough-1")
    sent = visitor.post("/register?domain=open.test", fields)
    assert sent.status == 200 and "您的申请已提交" in sent.text
    assert visitor.post("/register?domain=open.test", fields).status == 409  # asked for already
    assert WebClient(server).get("/register?domain=small-closed.test").status == 404
    page = admin_web.get("/admin/domains/open.test")
    assert "wang@open.test" in page.text and "王 &lt;i&gt;" in page.text
    assert "Requests for mailboxes" in admin_web.get("/admin/live").text
    reg_id = re.search(r'action="/admin/registrations/(\d+)"', page.text)[1]
    _, other = domain_admin(server, "otherchief", DOMAIN)
    assert other.submit("/admin/", f"/admin/registrations/{reg_id}", {"action": "approve"}).url.endswith(
        "error=unknown_registration")  # not its domain's request
    done = admin_web.submit("/admin/domains/open.test", f"/admin/registrations/{reg_id}",
                            {"action": "approve", "back": "/admin/domains/open.test"})
    assert done.url.endswith("done=registration_approved") and 'href="/admin/users/wang%40open.test"' in done.text
    imap = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls())
    try:
        assert imap.login("wang@open.test", "Long-enough-1")[0] == "OK"
    finally:
        imap.logout()
    assert "registration.approve" in admin_web.get("/admin/audit?action=registration.").text


def test_one_client_cannot_fill_the_requests(tmp_path):
    srv = start_server(tmp_path / "n")
    try:
        dizimail_cli(srv.config_file, "domain", "settings", DOMAIN, "--self-registration")
        web = WebClient(srv)
        statuses = []
        for i in range(7):
            form = web.get("/register?domain=" + DOMAIN)
            statuses.append(web.post("/register", {"csrf": form.csrf, "domain": DOMAIN, "local_part": f"p{i}",
                                                   "name": "x", "password": "Long-enough-1",
                                                   "again": "Long-enough-1"}).status)
        assert statuses == [200] * 5 + [429] * 2, statuses
        assert len(dizimail_cli(srv.config_file, "registration", "list", "--json").stdout.split('"id"')) == 6
    finally:
        srv.stop()


def test_lists_and_thresholds_in_the_pages_follow_the_roles(server, admin_web):
    page = admin_web.submit("/admin/antispam", "/admin/antispam",
                            {"action": "block", "domain": "", "patterns": "@spam-land.test\n10.66.0.0/16",
                             "note": "批量垃圾"})
    assert page.url.endswith("done=list_changed") and "@spam-land.test" in page.text and "10.66.0.0/16" in page.text
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=15) as smtp:
        smtp.ehlo("x")
        code, _ = smtp.mail("boss@spam-land.test")
        if code == 250:
            code, _ = smtp.rcpt(f"boss@{DOMAIN}")
        assert code >= 500  # the page's entry is the policy's
    admin_web.submit("/admin/domains", "/admin/domains", {"name": "lists.test"})
    _, chief = domain_admin(server, "listchief", "lists.test")
    assert "@spam-land.test" not in chief.get("/admin/antispam").text  # the server's list is not its
    csrf = chief.get("/admin/antispam").csrf
    assert chief.post("/admin/antispam", {"csrf": csrf, "action": "block", "domain": "", "patterns": "x@y.test"}
                      ).status == 403
    assert chief.post("/admin/antispam", {"csrf": csrf, "action": "block", "domain": DOMAIN, "patterns": "x@y.test"}
                      ).status == 404
    mine = chief.submit("/admin/antispam", "/admin/antispam", {"action": "allow", "domain": "lists.test",
                                                              "patterns": "partner@friend.test"})
    assert mine.url.endswith("done=list_changed") and "partner@friend.test" in mine.text
    page = chief.submit("/admin/antispam", "/admin/antispam", {"action": "threshold", "scope": "lists.test",
                                                              "tag_at": "4", "junk_at": "6", "reject_at": "10.5"})
    assert page.url.endswith("done=settings_saved") and re.search(r"<td>lists.test</td><td>4.0</td><td>6.0</td>",
                                                                  page.text)
    assert chief.submit("/admin/antispam", "/admin/antispam", {"action": "threshold", "scope": "lists.test",
                                                              "tag_at": "11"}).url.endswith("error=bad_setting")
    assert chief.post("/admin/antispam", {"csrf": csrf, "action": "threshold", "scope": DOMAIN, "tag_at": "1"}
                      ).status == 404
    assert chief.get("/admin/quarantine").status == 403 and chief.get("/admin/fetch").status == 403
    assert admin_web.get("/admin/quarantine").status == 200
    assert admin_web.submit("/admin/quarantine", "/admin/quarantine", {"action": "release", "id": "999999"}
                            ).url.endswith("error=unknown_quarantine_id")


def test_fetch_accounts_in_the_pages_never_show_a_password(server, admin_web, user):
    page = admin_web.submit("/admin/fetch", "/admin/fetch", {
        "action": "add", "server": "pop.far.test:1995", "protocol": "pop3", "security": "tls",
        "username": "zhang", "password": "Secret-Far-1", "into": user, "minutes": "5", "verify": "on"})
    assert page.url.endswith("done=fetch_added") and "pop.far.test:1995" in page.text and user in page.text
    assert "Secret-Far-1" not in page.text and "5 min" in page.text
    for server_, error in (("pop.far.test:abc", "bad_server"), ("pop.far.test:99999", "bad_setting")):
        assert admin_web.submit("/admin/fetch", "/admin/fetch", {
            "action": "add", "server": server_, "username": "z", "password": "p", "into": user}
                                ).url.endswith(f"error={error}")
    assert admin_web.submit("/admin/fetch", "/admin/fetch", {
        "action": "add", "server": "pop.far.test", "username": "z", "password": "p", "into": "nobody@example.test"}
                            ).url.endswith("error=unknown_user")
    fetch_id = re.search(r'name="id" value="(\d+)"', admin_web.get("/admin/fetch").text)[1]
    assert admin_web.submit("/admin/fetch", "/admin/fetch", {"action": "remove", "id": fetch_id}
                            ).url.endswith("done=fetch_removed")
    assert "pop.far.test" not in admin_web.get("/admin/fetch").text


def test_the_api_reference_page_lists_every_operation_without_script_from_anywhere(server):
    spec = api(server, "GET", "/api/v1/openapi.json")[2]
    page = WebClient(server).get("/api/v1/docs")
    assert page.status == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    for route, methods in spec["paths"].items():
        for method in methods:
            assert f'<code class="method {method}">{method.upper()}</code> <code>{route}</code>' in page.text, route
    assert re.findall(r"<script[^>]*>", page.text) == ['<script src="/static/site.js" defer>']
    assert "http://" not in page.text.replace("http://www.w3.org", "") and "cdn" not in page.text.lower()


def test_a_remote_servers_reply_in_the_queue_view_is_text(server, admin_web, user):
    """The reply text of a hostile next hop (a scripted peer: no real server says this) is shown escaped."""
    evil = "450 4.7.1 <script>alert('reply')</script><img src=x onerror=alert(6)>"
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def peer() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn, conn.makefile("rb") as lines:
                conn.sendall(b"220 evil ESMTP\r\n")
                while line := lines.readline():
                    verb = line[:4].upper()
                    conn.sendall(b"250 evil\r\n" if verb in (b"EHLO", b"HELO", b"MAIL") else
                                 b"221 bye\r\n" if verb == b"QUIT" else evil.encode() + b"\r\n")
                    if verb == b"QUIT":
                        return
    thread = threading.Thread(target=peer, daemon=True)
    thread.start()
    dizimail_cli(server.config_file, "route", "add", "evil-reply.test", f"127.0.0.1:{port}")
    with smtplib.SMTP_SSL("127.0.0.1", server.ports["smtps"], context=client_tls(), timeout=15) as smtp:
        smtp.login(user, PASSWORD)
        smtp.sendmail(user, ["victim@evil-reply.test"], b"Subject: x\r\n\r\nx\r\n")
    page = wait_for(lambda: (p := admin_web.get("/admin/queue?q=evil-reply")) and "alert" in p.text and p)
    assert "&lt;script&gt;alert(&#39;reply&#39;)&lt;/script&gt;&lt;img src=x onerror=alert(6)&gt;" in page.text
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    thread.join(10)


def test_tokens_secrets_and_concurrency_from_the_pages(server, admin_web):
    page = admin_web.submit("/admin/tokens", "/admin/tokens", {"action": "create", "role": "domain-admin",
                                                              "domains": DOMAIN, "label": "网页令牌", "days": "1"})
    secret = re.search(r'<pre class="record" id="new-token">(dzm_[^<]+)</pre>', page.text)[1]
    assert api(server, "GET", "/api/v1/me", secret)[2]["domains"] == [DOMAIN]
    assert secret not in admin_web.get("/admin/tokens").text  # shown once
    token_id = str(api(server, "GET", "/api/v1/me", secret)[2]["id"])
    assert admin_web.submit("/admin/tokens", "/admin/tokens", {"action": "revoke", "id": token_id}).url.endswith(
        "done=token_revoked")
    assert api(server, "GET", "/api/v1/me", secret)[0] == 401
    stored = admin_web.submit("/admin/tokens", "/admin/tokens", {"action": "set_secret", "name": "smarthost-password",
                                                                "password": "Relay-Secret-7"})
    assert stored.url.endswith("done=secret_saved") and "Relay-Secret-7" not in stored.text
    assert {"name": "smarthost-password", "set": True} in api(server, "GET", "/api/v1/secrets",
                                                              token(server, "--role", "admin"))[2]
    admin_web.submit("/admin/tokens", "/admin/tokens", {"action": "remove_secret", "name": "smarthost-password"})
    queue = admin_web.submit("/admin/queue", "/admin/queue", {"action": "concurrency", "total": "30",
                                                              "per_destination": "4"})
    assert queue.url.endswith("done=queue_done") and 'value="30"' in queue.text and 'value="4"' in queue.text
    assert admin_web.submit("/admin/queue", "/admin/queue", {"action": "concurrency", "total": "0",
                                                             "per_destination": "4"}).url.endswith("error=bad_setting")
    _, chief = domain_admin(server, "tokenchief", DOMAIN)
    assert chief.get("/admin/tokens").status == 403


def test_notice_and_usage_report_from_the_command_line(server, tmp_path):
    server.add_user("clinotice")
    body = tmp_path / "notice.txt"
    body.write_text("今晚 22:00 系统维护。\nMaintenance tonight at 22:00.\n", encoding="utf-8")
    sent = dizimail_cli(server.config_file, "notice", "send", "--subject", "系统维护", "--body-file", str(body),
                        "--domain", DOMAIN)
    delivered = int(re.search(r"delivered to (\d+) mailboxes", sent.stdout)[1])
    assert delivered >= 1
    assert "notice.send" in dizimail_cli(server.config_file, "audit", "list", "--action", "notice.").stdout
    rows = json.loads(dizimail_cli(server.config_file, "report", "usage", "--json").stdout)
    mine = next(r for r in rows if r["domain"] == DOMAIN)
    assert mine["mailboxes"] >= 1 and mine["messages_in"] >= delivered and mine["used_bytes"] > 0
    as_csv = dizimail_cli(server.config_file, "report", "usage", "--csv").stdout
    assert as_csv.startswith("\ufeffdomain,mailboxes,used_bytes,messages_in,") and f"\n{DOMAIN}," in as_csv
    assert dizimail_cli(server.config_file, "report", "usage", "--month", "2026-13", check=False).returncode != 0
    assert dizimail_cli(server.config_file, "notice", "send", "--subject", "x", "--domain", DOMAIN,
                        check=False).returncode == 2  # no text


def test_numbers_typed_wrong_are_refused_not_read_as_no_limit(server, admin_web, user):
    admin_web.submit("/admin/domains", "/admin/domains", {"name": "typo.test"})
    path = "/admin/domains/typo.test"
    admin_web.submit(path, f"{path}/settings", {"max_users": "5"})
    page = admin_web.submit(path, f"{path}/settings", {"max_users": "5O"})  # a letter O
    assert page.url.endswith("error=bad_setting") and 'value="5"' in admin_web.get(path).text
    assert admin_web.submit(path, f"{path}/settings", {"max_users": ""}).url.endswith("done=settings_saved")
    assert 'name="max_users" inputmode="numeric" pattern="[0-9]*" maxlength="9" value=""' in admin_web.get(path).text
    refused = admin_web.submit("/admin/fetch", "/admin/fetch", {
        "action": "add", "server": "pop.far.test", "username": "z", "password": "p", "into": user, "minutes": "ten"})
    assert refused.url.endswith("error=bad_setting") and "pop.far.test" not in refused.text
