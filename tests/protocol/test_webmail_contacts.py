"""Webmail's address book and preferences (issue #13): contacts and groups kept per user (another user's are
out of reach), completion from contacts, groups and the domain's directory, vCard and CSV round trips
(Chinese names, Outlook-style headers, formulas defused), "add the sender"; a time zone that moves the
dates shown, a signature in what the user writes, a sender whose pictures always show."""

from __future__ import annotations

import json
import re
import urllib.parse
from datetime import datetime, timedelta

from conftest import DOMAIN, PASSWORD, dizimail_cli
from web_tools import WebClient, deliver, multipart, uid_of


def act(web: WebClient, fields: list[tuple[str, str]], path: str = "/mail/contacts") -> str:
    """Post a form of the contacts page; the error its redirect names ("" for none)."""
    answer = web.request("POST", path, urllib.parse.urlencode([("csrf", web.get("/mail/contacts").csrf),
                                                                *fields]).encode(),
                         {"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status == 200, answer.status
    return urllib.parse.parse_qs(urllib.parse.urlparse(answer.url).query).get("error", [""])[0]


def upload(web: WebClient, kind: str, data: bytes):
    """The import form posted with ``data`` as its file."""
    fields = [("csrf", web.get("/mail/contacts").csrf), ("action", "import"), ("kind", kind)]
    body, content_type = multipart(fields, [])
    boundary = content_type.split("boundary=")[1]
    body = body[:-len(f"--{boundary}--\r\n")] + (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="book.{kind}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return web.request("POST", "/mail/contacts", body, {"Content-Type": content_type})


def complete(web: WebClient, text: str) -> list[dict[str, str]]:
    return json.loads(web.get("/mail/contacts/complete?q=" + urllib.parse.quote(text)).text)


def test_contacts_groups_and_completion_are_each_users_own(server, user):
    colleague = f"wangwei{user.split('@')[0]}@{DOMAIN}"
    dizimail_cli(server.config_file, "user", "add", colleague, "--password", PASSWORD, "--name", "王伟")
    web = WebClient(server, lang="zh-CN")
    web.login(user, PASSWORD, admin=False)
    assert act(web, [("action", "save"), ("name", "李 检修"), ("email", "Li.Jianxiu@Plant.Example"),
                     ("phone", "+86 10 1234"), ("org", "二号机组")]) == ""
    assert act(web, [("action", "save"), ("name", "Zhang"), ("email", "zhang@plant.example")]) == ""
    assert act(web, [("action", "group_add"), ("name", "检修组")]) == ""
    page = web.get("/mail/contacts").text
    li = re.search(r'href="/mail/contacts\?id=(\d+)#edit">[^<]*</a>', page.split("li.jianxiu@plant.example")[1])[1]
    group = re.search(r'name="group" value="(\d+)"', page)[1]
    assert act(web, [("action", "save"), ("id", li), ("name", "李建修"), ("email", "li.jianxiu@plant.example"),
                     ("groups_shown", "1"), ("group", group)]) == ""
    page = web.get("/mail/contacts").text
    assert "李建修" in page and "检修组 (1)" in page and "二号机组" not in page  # an edit replaces every field
    assert "李建修" in web.get(f"/mail/contacts?g={group}").text and "Zhang" not in web.get(f"/mail/contacts?g={group}").text

    offered = complete(web, "li")
    assert {"label": '"李建修" <li.jianxiu@plant.example>', "value": '"李建修" <li.jianxiu@plant.example>',
            "source": "contact"} in offered
    assert [c["value"] for c in complete(web, "检修") if c["source"] == "group"] == ['"李建修" <li.jianxiu@plant.example>']
    assert any(c["source"] == "directory" and colleague in c["value"] and "王伟" in c["value"] for c in complete(web, "王伟"))
    assert complete(web, "") == []
    directory = web.get("/mail/directory?q=" + urllib.parse.quote("王伟")).text
    assert colleague in directory

    other = WebClient(server)
    other.login(colleague, PASSWORD, admin=False)
    assert "li.jianxiu" not in other.get("/mail/contacts").text and complete(other, "li") == []
    assert "li.jianxiu" not in other.get(f"/mail/contacts?id={li}").text
    assert act(other, [("action", "remove"), ("id", li)]) == "unknown_contact"
    assert act(other, [("action", "save"), ("id", li), ("email", "x@plant.example")]) == "unknown_contact"
    assert act(web, [("action", "save"), ("email", "not an address")]) == "bad_address"
    assert act(web, [("action", "save"), ("email", "a@plant.example"), ("name", "x\x07y")]) == "bad_contact"
    assert act(web, [("action", "group_add"), ("name", "检修组")]) == "group_exists"
    assert act(web, [("action", "explode")]) == "bad_action"
    assert act(web, [("action", "remove"), ("id", li)]) == ""
    assert "li.jianxiu" not in web.get("/mail/contacts").text


def test_vcard_and_csv_round_trips_with_chinese_names_and_formulas_defused(server, user):
    web = WebClient(server)
    web.login(user, PASSWORD, admin=False)
    outlook = ("\ufeffFirst Name,Full Name,E-mail Address,Mobile Phone,Company,Categories\r\n"
               ",陈工,chen@plant.example,139,=HYPERLINK(\"http://evil\"),检修组;值班\r\n"
               ",Bad,not-an-address,,,\r\n").encode("utf-8")
    imported = upload(web, "csv", outlook)
    assert "imported=1" in imported.url and "refused=1" in imported.url
    page = web.get("/mail/contacts").text
    assert "陈工" in page and "检修组" in page and "值班" in page

    exported = web.get("/mail/contacts/export?kind=csv")
    assert exported.headers["content-type"].startswith("text/csv") and exported.body.startswith("\ufeff".encode())
    assert "'=HYPERLINK" in exported.body.decode("utf-8-sig")  # a spreadsheet shows it, never runs it
    vcard = web.get("/mail/contacts/export?kind=vcf")
    assert vcard.headers["content-type"].startswith("text/vcard") and "FN:陈工" in vcard.text
    assert "CATEGORIES:" in vcard.text and "EMAIL;TYPE=INTERNET:chen@plant.example" in vcard.text

    twin = server.add_user(f"twin{user.split('@')[0]}")
    copy = WebClient(server)
    copy.login(twin, PASSWORD, admin=False)
    assert "imported=1" in upload(copy, "vcf", vcard.body).url
    mirrored = copy.get("/mail/contacts").text
    assert "陈工" in mirrored and "chen@plant.example" in mirrored and "检修组" in mirrored

    skipped = upload(copy, "vcf", vcard.body.replace(b"BEGIN:VCARD", b"BEGIN:VCARD\r\nFN;;;:\x00broken", 1))
    assert "imported=1" in skipped.url  # a line it cannot read is skipped; the card's address is intact
    for broken in (b"BEGIN:VCARD\r\nVERSION:3.0\r\n" + b"X" * 70_000, b"\xff\xfe garbage", b"END:VCARD\r\n"):
        answer = upload(copy, "vcf", broken)
        assert answer.status == 200 and ("error=" in answer.url or "imported=0" in answer.url), answer.url
    assert "error=bad_contact_file" in upload(copy, "csv", b"just,some,columns\r\n1,2,3\r\n").url


def test_time_zone_signature_add_sender_and_trusted_pictures(server, user):
    deliver(server, user, b"From: =?utf-8?b?5byg5bel?= <zhang@shop.example>\r\nSubject: catalogue\r\n"
                          b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
                          b'<p>New!<img src="https://shop.example/p.png"></p>\r\n')
    web = WebClient(server)
    inbox = web.login(user, PASSWORD, admin=False)
    uid = uid_of(inbox.text, "catalogue")
    settings = web.get("/mail/settings")
    shown = {}
    for zone in ("Asia/Shanghai", "America/New_York"):
        answer = web.request("POST", "/mail/settings/prefs", urllib.parse.urlencode(
            {"csrf": settings.csrf, "time_zone": zone, "signature": "王工\n二号机组"}).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"})
        assert "done=settings_saved" in answer.url
        text = re.search(r"<td>(\w{3} \d+, \d{4}, \d+:\d\d:\d\d\W{1,3}[AP]M)</td>", web.get("/mail").text)[1]
        shown[zone] = datetime.strptime(re.sub(r"\W+([AP]M)$", r" \1", text), "%b %d, %Y, %I:%M:%S %p")
    assert shown["Asia/Shanghai"] - shown["America/New_York"] == timedelta(hours=13)  # the same moment, two zones
    assert "-- \n王工\n二号机组" in web.get("/mail/compose").text
    bad = web.request("POST", "/mail/settings/prefs", urllib.parse.urlencode(
        {"csrf": settings.csrf, "time_zone": "Mars/Olympus"}).encode(),
        {"Content-Type": "application/x-www-form-urlencoded"})
    assert "error=bad_time_zone" in bad.url

    opened = web.get(f"/mail/read?f=INBOX&uid={uid}")
    assert 'id="add-sender"' in opened.text and 'id="trust-pictures"' in opened.text
    added = web.submit(f"/mail/read?f=INBOX&uid={uid}", "/mail/contacts", {
        "action": "save", "name": "张工", "email": "zhang@shop.example", "back": f"/mail/read?f=INBOX&uid={uid}"})
    assert f"/mail/read?f=INBOX&uid={uid}&done=contact_saved" in added.url
    assert "张工" in web.get("/mail/contacts").text
    web.submit(f"/mail/read?f=INBOX&uid={uid}", "/mail/settings/pictures", {"f": "INBOX", "uid": str(uid)})
    trusted = web.get(f"/mail/read?f=INBOX&uid={uid}").text
    assert 'id="pictures-blocked"' not in trusted and "pictures=1" in trusted.split('id="html"')[1]


def test_a_large_import_fills_the_book_to_its_limit_and_the_page_shows_a_part(server, user):
    web = WebClient(server)
    web.login(user, PASSWORD, admin=False)
    rows = "".join(f"同事{n},c{n}@plant.example,,,,{'值班' if n % 2 else ''}\r\n" for n in range(10_050))
    answer = upload(web, "csv", ("name,email,phone,org,note,groups\r\n" + rows).encode())
    assert "imported=10000" in answer.url and "refused=50" in answer.url, answer.url
    page = web.get("/mail/contacts").text
    assert "10,000 contacts" in page and 'id="contacts-more"' in page and page.count('href="/mail/contacts?id=') == 500
    assert "值班 (5000)" in page  # one group made, half of them in it
    assert upload(web, "csv", b"name,email\r\nmore,more@plant.example\r\n").url.count("refused=1") == 1
