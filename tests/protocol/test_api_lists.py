"""Mailing lists over the node's HTTPS listener (issue #12): the REST resources under
/api/v1/mailing-lists with tokens made by the real command line (lists, members, policy, the moderation
queue, roles, the audit log), the admin pages' escaping of mail-borne text and their CSRF check, and the
members' one-click unsubscription (RFC 8058) POSTed without a session or a CSRF token, as a mail
provider sends it."""

from __future__ import annotations

import email
import email.policy
import smtplib
from urllib.parse import quote, urlsplit

import pytest

from conftest import DOMAIN, PASSWORD, dizimail_cli
from helpers import api, fetch_all, token, wait_for
from web_tools import WebClient

BASE = "/api/v1/mailing-lists"
_n = iter(range(1, 1_000_000))


@pytest.fixture(scope="module")
def admin(server) -> str:
    return token(server, "--role", "admin", "--label", "lists")


def new_list(server, admin: str, **fields) -> str:
    address = f"list{next(_n)}@{DOMAIN}"
    status, _, made = api(server, "POST", BASE, admin, {"address": address, **fields})
    assert status == 201, made
    return address


def members(server, admin: str, address: str) -> list[str]:
    status, _, rows = api(server, "GET", f"{BASE}/{address}/members", admin)
    assert status == 200, rows
    return [m["address"] for m in rows]


def post(server, sender: str, to: str, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=60) as s:
        s.sendmail(sender, [to], f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
                                 f"Message-ID: <{next(_n)}@lists.test>\r\n\r\nto the list\r\n".encode())


def test_an_admin_creates_a_list_adds_members_and_changes_its_policy(server, admin):
    alice, bob = server.add_user(f"a{next(_n)}"), server.add_user(f"b{next(_n)}")
    address = f"staff{next(_n)}@{DOMAIN}"
    status, headers, made = api(server, "POST", BASE, admin, {"address": address.upper(), "name": "员工",
                                                               "members": [alice]})
    assert status == 201 and headers["location"] == f"{BASE}/{quote(address)}"
    assert (made["address"], made["name"], made["policy"], made["members"]) == (address, "员工", "members", 1)
    assert api(server, "POST", BASE, admin, {"address": address})[0] == 409
    status, _, added = api(server, "POST", f"{BASE}/{address}/members", admin, {"addresses": [bob, alice]})
    assert status == 200 and added == {"added": 1}  # alice was a member already
    assert members(server, admin, address) == sorted([alice, bob])
    status, _, changed = api(server, "PATCH", f"{BASE}/{address}", admin,
                             {"policy": "moderated", "moderators": [alice], "subscription": "closed"})
    assert status == 200 and (changed["policy"], changed["moderators"], changed["subscription"]) == (
        "moderated", [alice], "closed")
    assert changed["name"] == "员工"  # left out: unchanged
    shown = api(server, "GET", f"{BASE}/{address}", admin)[2]
    assert (shown["policy"], shown["members"]) == ("moderated", 2)
    assert address in [m["address"] for m in api(server, "GET", BASE, admin)[2]]
    status, _, removed = api(server, "DELETE", f"{BASE}/{address}/members", admin, {"addresses": [bob]})
    assert status == 200 and removed == {"removed": 1} and members(server, admin, address) == [alice]
    audit = api(server, "GET", "/api/v1/audit?action=list.", admin)[2]
    mine = [(e["action"], e["after"]) for e in audit if e["target"] == address]
    assert [a for a, _ in mine] == ["list.members.remove", "list.policy", "list.members.add", "list.add"]
    assert mine[1][1]["policy"] == "moderated" and mine[2][1]["added"] == 1
    assert api(server, "DELETE", f"{BASE}/{address}", admin)[0] == 204
    assert api(server, "GET", f"{BASE}/{address}", admin)[0] == 404


def test_an_unknown_list_is_404_and_a_bad_document_is_422(server, admin):
    nobody = f"nolist{next(_n)}@{DOMAIN}"
    for method, path, body in [("GET", f"{BASE}/{nobody}", None), ("PATCH", f"{BASE}/{nobody}", {"name": "x"}),
                               ("DELETE", f"{BASE}/{nobody}", None), ("GET", f"{BASE}/{nobody}/members", None),
                               ("POST", f"{BASE}/{nobody}/members", {"addresses": ["x@y.test"]}),
                               ("GET", f"{BASE}/{nobody}/held", None),
                               ("POST", f"{BASE}/{nobody}/held/1/approve", None)]:
        status, _, answer = api(server, method, path, admin, body)
        assert (status, answer["error"]) == (404, "unknown_list"), (method, path, answer)
    address = new_list(server, admin)
    assert api(server, "POST", f"{BASE}/{address}/held/99999/approve", admin)[2]["error"] == "unknown_held_post"
    for body in ({"address": f"x{next(_n)}@{DOMAIN}", "policy": "everyone"},
                 {"address": f"x{next(_n)}@{DOMAIN}", "unknown": 1},
                 {"address": f"x{next(_n)}@{DOMAIN}", "name": "x" * 2001}):
        assert api(server, "POST", BASE, admin, body)[0] == 422, body
    assert api(server, "POST", BASE, admin, {"address": f"x@nowhere{next(_n)}.test"})[2]["error"] == "unknown_domain"
    assert api(server, "PATCH", f"{BASE}/{address}", admin, {"bounce_limit": 0})[0] == 422


def test_a_user_token_is_refused_and_a_domain_admin_reaches_only_its_domains_lists(server, admin):
    address = new_list(server, admin, members=[f"m{next(_n)}@{DOMAIN}"])
    mine = token(server, "--role", "user", "--user", server.add_user(f"u{next(_n)}"))
    for method, path, body in [("GET", BASE, None), ("POST", BASE, {"address": f"x{next(_n)}@{DOMAIN}"}),
                               ("GET", f"{BASE}/{address}", None), ("GET", f"{BASE}/{address}/members", None),
                               ("DELETE", f"{BASE}/{address}", None)]:
        status, _, answer = api(server, method, path, mine, body)
        assert (status, answer["error"]) == (403, "forbidden"), (method, path)
    other = f"other{next(_n)}.test"
    assert api(server, "POST", "/api/v1/domains", admin, {"name": other})[0] == 201
    chief = token(server, "--role", "domain-admin", "--domain", other)
    for method, path, body in [("GET", f"{BASE}/{address}", None), ("DELETE", f"{BASE}/{address}", None),
                               ("POST", f"{BASE}/{address}/members", {"addresses": ["x@y.test"]}),
                               ("POST", BASE, {"address": f"x{next(_n)}@{DOMAIN}"})]:
        status, _, answer = api(server, method, path, chief, body)
        assert (status, answer["error"]) == (404, "not_found"), (method, path)
    own = f"news@{other}"
    assert api(server, "POST", BASE, chief, {"address": own})[0] == 201
    assert [m["address"] for m in api(server, "GET", BASE, chief)[2]] == [own]
    # every user of another domain as one member: as unreachable as the domain itself
    assert api(server, "POST", f"{BASE}/{own}/members", chief, {"addresses": [f"@{DOMAIN}"]})[0] == 404
    assert api(server, "GET", f"{BASE}/{address}", admin)[0] == 200  # untouched


def test_held_posts_are_listed_and_approved_to_the_members_or_rejected(server, admin):
    alice, bob = server.add_user(f"a{next(_n)}"), server.add_user(f"b{next(_n)}")
    address = new_list(server, admin, policy="moderated", members=[bob])
    post(server, alice, address, "first 第一")
    post(server, alice, address, "second")
    held = api(server, "GET", f"{BASE}/{address}/held", admin)[2]
    assert [(h["subject"], h["sender"], h["from"]) for h in held] == [("second", alice, alice),
                                                                     ("first 第一", alice, alice)]
    assert fetch_all(server, bob) == []  # nothing before a moderator says so
    status, _, approved = api(server, "POST", f"{BASE}/{address}/held/{held[1]['id']}/approve", admin)
    assert status == 200 and approved == {"delivered": 1}
    got = wait_for(lambda: fetch_all(server, bob), what="bob's copy of the approved post")
    assert [email.message_from_bytes(m, policy=email.policy.default)["Subject"] for m in got] == ["first 第一"]
    status, _, _ = api(server, "POST", f"{BASE}/{address}/held/{held[0]['id']}/reject", admin, {"reason": "off topic"})
    assert status == 204
    assert api(server, "GET", f"{BASE}/{address}/held", admin)[2] == []
    assert api(server, "POST", f"{BASE}/{address}/held/{held[0]['id']}/approve", admin)[0] == 404  # gone
    assert len(fetch_all(server, bob)) == 1
    audit = api(server, "GET", "/api/v1/audit?action=list.", admin)[2]
    decided = {e["action"]: e for e in audit if e["target"] == address and e["action"] in ("list.approve", "list.reject")}
    assert decided["list.approve"]["before"]["subject"] == "first 第一"
    assert decided["list.reject"]["after"] == {"reason": "off topic"}


def test_one_click_unsubscription_needs_no_session_and_a_bad_link_is_400(server, admin):
    bob, carol = f"b{next(_n)}@{DOMAIN}", f"c{next(_n)}@{DOMAIN}"
    address = new_list(server, admin, members=[bob, carol])

    async def link(s):
        return s.list_mail.keys.unsubscribe_url(await s.lists.get(address), bob)
    url = urlsplit(server.call(link))
    path = f"{url.path}?{url.query}"
    mac = dict(p.split("=", 1) for p in url.query.split("&"))["mac"]
    bad = path.replace(f"mac={mac}", "mac=" + ("a" if mac[0] != "a" else "b") + mac[1:])
    other = path.replace(quote(bob, safe=""), quote(carol, safe="")).replace(bob, carol)  # bob's MAC, carol's address
    provider = WebClient(server)  # no cookie, no CSRF token: what a mail provider sends
    for wrong in (bad, other):
        answer = provider.post(wrong, {"List-Unsubscribe": "One-Click"})
        assert answer.status == 400 and "not valid" in answer.text and "无效" in answer.text, wrong
    assert provider.post(path, {"something": "else"}).status == 400  # RFC 8058 §3.2: the body says One-Click
    assert members(server, admin, address) == sorted([bob, carol])
    shown = provider.get(path)
    assert shown.status == 200 and 'method="post"' in shown.text and 'name="csrf"' not in shown.text
    assert bob in shown.text and "退订" in shown.text and "Unsubscribe" in shown.text
    assert members(server, admin, address) == sorted([bob, carol])  # showing the page removes nobody
    done = provider.post(path, {"List-Unsubscribe": "One-Click"})
    assert done.status == 200 and "no longer receives" in done.text and "不再收到" in done.text
    assert members(server, admin, address) == [carol]
    assert provider.get(bad).status == 400


def test_the_list_pages_escape_mail_borne_text_and_check_their_csrf_token(server, admin):
    boss = server.add_user(f"boss{next(_n)}")
    dizimail_cli(server.config_file, "admin", "grant", boss, "--role", "admin")
    web = WebClient(server)
    assert web.login(boss, PASSWORD).url.endswith("/admin/")
    address = new_list(server, admin, policy="moderated", name="<b>named</b>")
    evil = "<img src=x onerror=alert(1)>"
    post(server, server.add_user(f"p{next(_n)}"), address, evil)
    page = web.get(f"/admin/lists/{address}")
    assert page.status == 200 and evil not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert "<b>named</b>" not in page.text and "&lt;b&gt;named&lt;/b&gt;" in web.get("/admin/lists").text
    local = f"forged{next(_n)}"
    refused = web.post("/admin/lists", {"local_part": local, "domain": DOMAIN, "policy": "anyone"})
    assert refused.status == 403
    assert api(server, "GET", f"{BASE}/{local}@{DOMAIN}", admin)[0] == 404
    held_id = api(server, "GET", f"{BASE}/{address}/held", admin)[2][0]["id"]
    assert web.post(f"/admin/lists/{address}", {"action": "approve", "id": str(held_id)}).status == 403
    assert len(api(server, "GET", f"{BASE}/{address}/held", admin)[2]) == 1
    done = web.submit(f"/admin/lists/{address}", f"/admin/lists/{address}", {"action": "reject", "id": str(held_id)})
    assert done.url.endswith("done=post_rejected") and api(server, "GET", f"{BASE}/{address}/held", admin)[2] == []
