"""Webmail's reading (issue #13) over the node's HTTPS listener, against what IMAP sees: the folder list
with unread counts, a folder's page, a GB2312 multipart message opened (and so \\Seen over IMAP), its
attachment downloaded safely, hostile HTML served cleaned into a sandboxed frame."""

from __future__ import annotations

import base64
import datetime
import email
import email.header
import email.policy
import email.utils
import re
import urllib.parse

from conftest import PASSWORD
from dizimail.codec.imap.utf7 import encode_mutf7
from helpers import imap_login
from web_tools import WebClient, compose_form, deliver, multipart, uid_of

PDF = b"%PDF-1.4\n% not really a pdf\n" + bytes(range(256))


def gb2312_message(to: str) -> bytes:
    text = base64.encodebytes("各位同事：\n下周一 8 点开始 2 号机组检修，请提前做好准备。\n".encode("gb2312")).decode()
    return (f"From: =?gb2312?b?{base64.b64encode('王工'.encode('gb2312')).decode()}?= <wang@plant.example>\r\n"
            f"To: {to}\r\nSubject: =?gb2312?b?{base64.b64encode('检修通知'.encode('gb2312')).decode()}?=\r\n"
            "Date: Mon, 07 Dec 2026 08:00:00 +0800\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
            "--b1\r\nContent-Type: text/plain; charset=gb2312\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            f"{text}\r\n--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
            "Content-Disposition: attachment; filename*=UTF-8''..%2F..%2F%E6%8A%A5%E5%91%8A.pdf\r\n\r\n"
            f"{base64.encodebytes(PDF).decode()}\r\n--b1--\r\n").encode()


HOSTILE = (b"From: bad@evil.example\r\nSubject: hostile html\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/html; charset=utf-8\r\n\r\n"
           b'<p onclick="steal()">hi<script>parent.stolen = 1</script>'
           b'<img src="https://tracker.example/p.gif" onerror="alert(1)"><a href="javascript:alert(2)">x</a>'
           b'<form action="https://evil.example"><input name="pw"></form>'
           b'<iframe src="https://evil.example"></iframe><style>body{display:none}</style>'
           b'<a href="https://ok.example/">fine link</a></p>\r\n')


def test_a_user_reads_a_gb2312_message_and_imap_sees_it_read(server, user):
    deliver(server, user, gb2312_message(user))
    deliver(server, user, HOSTILE)
    web = WebClient(server, lang="zh-CN,zh;q=0.9")
    inbox = web.login(user, PASSWORD, admin=False)
    assert inbox.status == 200 and inbox.url.endswith("/mail")
    assert "检修通知" in inbox.text and "王工" in inbox.text and "hostile html" in inbox.text
    assert 'title="未读">2<' in inbox.text  # the folder list: two unread in the inbox
    assert inbox.text.count('class="unread') == 2
    uid = uid_of(inbox.text, "检修通知")

    opened = web.get(f"/mail/read?f=INBOX&uid={uid}")
    assert opened.status == 200
    assert "下周一 8 点开始 2 号机组检修" in opened.text and "wang@plant.example" in opened.text
    assert "报告.pdf" in opened.text and "../" not in opened.text.split('id="attachments"')[1].split("</section>")[0]
    assert "frame-src 'self'" in opened.headers["content-security-policy"]
    with imap_login(server, user) as imap:  # opened in the browser: read, for every client
        imap.select("INBOX", readonly=True)
        _, data = imap.uid("FETCH", str(uid), "(FLAGS)")
        assert b"\\Seen" in data[0]
    assert 'title="未读">1<' in web.get("/mail").text

    n = opened.text.split("/mail/part?")[1].split("n=")[1].split('"')[0]
    part = web.get(f"/mail/part?f=INBOX&uid={uid}&n={n}")
    assert part.status == 200 and part.body == PDF
    assert part.headers["content-type"] == "application/octet-stream"
    assert part.headers["content-disposition"].startswith("attachment;") and "..%2F" not in part.headers[
        "content-disposition"] and "%E6%8A%A5%E5%91%8A.pdf" in part.headers["content-disposition"]
    assert part.headers["x-content-type-options"] == "nosniff"


def test_hostile_html_is_cleaned_and_framed_with_no_script_and_nothing_remote(server, user):
    deliver(server, user, HOSTILE)
    web = WebClient(server)
    page = web.login(user, PASSWORD, admin=False)
    uid = uid_of(page.text, "hostile html")
    opened = web.get(f"/mail/read?f=INBOX&uid={uid}")
    assert '<iframe id="html"' in opened.text and 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in opened.text
    frame = web.get(f"/mail/html?f=INBOX&uid={uid}")
    body = frame.text.lower()
    for bad in ("<script", "onclick", "onerror", "javascript:", "<form", "<iframe", "<style>body{display"):
        assert bad not in body, bad
    assert "https://ok.example/" in frame.text and "fine link" in frame.text
    csp = frame.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "img-src data:" in csp and "sandbox" in csp and "script" not in csp
    assert frame.headers["x-frame-options"] == "SAMEORIGIN"


def test_folders_made_over_imap_show_with_their_chinese_names_and_unknown_ones_are_404(server, user):
    deliver(server, user, gb2312_message(user))
    with imap_login(server, user) as imap:
        name = encode_mutf7("工作/检修")
        assert imap.create(f'"{name}"')[0] == "OK"
        imap.select("INBOX")
        assert imap.uid("MOVE", "1:*", f'"{name}"')[0] == "OK"
    web = WebClient(server)
    web.login(user, PASSWORD, admin=False)
    inbox = web.get("/mail")
    assert "工作/检修" in inbox.text and "No messages." in inbox.text
    folder = web.get("/mail?f=%E5%B7%A5%E4%BD%9C/%E6%A3%80%E4%BF%AE")
    assert folder.status == 200 and "检修通知" in folder.text
    assert web.get("/mail?f=Nowhere").status == 404
    assert web.get("/mail/read?f=INBOX&uid=999999").status == 404
    assert web.get("/mail/part?f=INBOX&uid=1&n=99").status == 404


def test_mail_pages_need_a_login(server):
    web = WebClient(server, follow=False)
    for path in ("/mail", "/mail/read?f=INBOX&uid=1", "/mail/html?f=INBOX&uid=1", "/mail/part?f=INBOX&uid=1&n=0"):
        answer = web.get(path)
        assert answer.status == 303 and answer.headers["location"].startswith("/?next="), path


def test_a_user_writes_to_another_who_replies_and_both_clients_see_it(server, user):
    other = server.add_user(f"peer{user.split('@')[0]}")
    web = WebClient(server)
    web.login(user, PASSWORD, admin=False)
    fields = compose_form(web)
    fields.update(to=f"同事 <{other}>", subject="周报 weekly", body="本周完成 2 号机组检修。\nDone.")
    sent = web.post("/mail/send", fields)
    assert sent.status == 200 and sent.url.endswith("/mail?done=sent") and "a copy is in Sent" in sent.text
    with imap_login(server, other) as imap:
        imap.select("INBOX")
        _, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
        got = email.message_from_bytes(data[0][1], policy=email.policy.default)
    assert got["From"].addresses[0].addr_spec == user and got["Subject"] == "周报 weekly"
    assert "本周完成 2 号机组检修" in got.get_content() and got["Message-ID"]
    with imap_login(server, user) as imap:  # a copy in Sent, read
        imap.select("Sent", readonly=True)
        _, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"\\Seen" in data[0][0] and str(email.header.make_header(email.header.decode_header(
            data[0][1].decode().partition(":")[2].strip()))) == "周报 weekly"

    reply_web = WebClient(server)
    listed = reply_web.login(other, PASSWORD, admin=False)
    uid = uid_of(listed.text, "周报 weekly")
    answer = compose_form(reply_web, f"/mail/compose?f=INBOX&reply={uid}")
    assert email.utils.parseaddr(answer["to"])[1] == user and answer["subject"] == "Re: 周报 weekly" and "> 本周完成" in answer["body"]
    assert answer["in_reply_to"] == got["Message-ID"] and answer["answer_uid"] == str(uid)
    answer["body"] = "收到 thanks\n" + answer["body"]
    assert reply_web.post("/mail/send", answer).url.endswith("done=sent")
    with imap_login(server, other) as imap:  # the original is \Answered for every client
        imap.select("INBOX", readonly=True)
        _, data = imap.uid("FETCH", str(uid), "(FLAGS)")
        assert b"\\Answered" in data[0]
    with imap_login(server, user) as imap:
        imap.select("INBOX")
        _, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
        back = email.message_from_bytes(data[-1][1] if isinstance(data[-1], tuple) else data[-2][1],
                                        policy=email.policy.default)
    assert back["In-Reply-To"] == got["Message-ID"] and got["Message-ID"] in back["References"]
    assert back["Subject"] == "Re: 周报 weekly"


def test_sending_refuses_header_injection_a_forged_sender_and_a_missing_csrf_token(server, user):
    web = WebClient(server)
    web.login(user, PASSWORD, admin=False)
    fields = compose_form(web)
    fields.update(to=user, subject="hi\r\nBcc: victim@outside.example", body="x")
    refused = web.post("/mail/send", fields)
    assert refused.status == 422 and "Bcc: victim" not in refused.text.split('id="compose-error"')[0]
    fields.update(subject="fine", to="not an address@@")
    assert web.post("/mail/send", fields).status == 422
    fields.update(to=user, **{"from": "ceo@example.test"})  # no such field: From is always the user
    assert web.post("/mail/send", fields).url.endswith("done=sent")
    no_token = {k: v for k, v in fields.items() if k != "csrf"}
    assert web.post("/mail/send", no_token).status == 403
    with imap_login(server, user) as imap:
        imap.select("INBOX", readonly=True)
        _, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (FROM SUBJECT BCC)])")
        heads = [d[1] for d in data if isinstance(d, tuple)]
    assert len(heads) == 1 and user.encode() in heads[0] and b"ceo@" not in heads[0] and b"victim" not in heads[0]


def test_marking_flagging_moving_and_deleting_in_the_browser_is_what_imap_sees(server, user):
    for n in range(3):
        deliver(server, user, f"From: a@outside.example\r\nSubject: note {n}\r\n\r\nbody {n}\r\n".encode())
    web = WebClient(server)
    page = web.login(user, PASSWORD, admin=False)
    uids = {s: uid_of(page.text, s) for s in ("note 0", "note 1", "note 2")}
    token = page.csrf

    def act(action: str, chosen: list[int], target: str = "", folder: str = "INBOX") -> None:
        body = [("csrf", token), ("f", folder), ("action", action), ("target", target)] + [("uid", str(u)) for u in chosen]
        answer = web.request("POST", "/mail/act", urllib.parse.urlencode(body).encode(),
                             {"Content-Type": "application/x-www-form-urlencoded"})
        assert answer.status == 200 and "error=" not in answer.url, answer.url

    act("read", [uids["note 0"], uids["note 1"]])
    act("flag", [uids["note 1"]])
    act("move", [uids["note 2"]], target="Archive")
    act("delete", [uids["note 0"]])
    with imap_login(server, user) as imap:
        imap.select("INBOX", readonly=True)
        _, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        inbox = {d[1].decode().strip(): d[0].decode() for d in data if isinstance(d, tuple)}
        assert list(inbox) == ["Subject: note 1"] and "\\Seen" in inbox["Subject: note 1"] and "\\Flagged" in inbox[
            "Subject: note 1"]
        for folder, subject in (("Archive", "note 2"), ("Trash", "note 0")):
            imap.select(folder, readonly=True)
            _, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            assert [d[1].decode().strip() for d in data if isinstance(d, tuple)] == [f"Subject: {subject}"]
    trashed = web.get("/mail?f=Trash")
    trash_uid = uid_of(trashed.text, "note 0")
    act("delete", [trash_uid], folder="Trash")  # deleted from Trash: gone
    assert "note 0" not in web.get("/mail?f=Trash").text
    bad = web.request("POST", "/mail/act", urllib.parse.urlencode(
        [("csrf", token), ("f", "INBOX"), ("action", "explode"), ("uid", str(uids["note 1"]))]).encode(),
        {"Content-Type": "application/x-www-form-urlencoded"})
    assert "error=bad_action" in bad.url
    no_csrf = web.request("POST", "/mail/act", urllib.parse.urlencode(
        [("f", "INBOX"), ("action", "delete"), ("uid", str(uids["note 1"]))]).encode(),
        {"Content-Type": "application/x-www-form-urlencoded"})
    assert no_csrf.status == 403


def test_attachments_go_with_the_message_and_the_size_limit_is_shown_and_kept(server, user):
    other = server.add_user(f"att{user.split('@')[0]}")
    web = WebClient(server)
    web.login(user, PASSWORD, admin=False)
    form = web.get("/mail/compose")
    assert 'enctype="multipart/form-data"' in form.text and "At most 25 MiB in all" in form.text
    fields = compose_form(web)
    fields.update(to=other, subject="图纸 drawings", body="见附件。")
    drawing = bytes(range(256)) * 40
    body, kind = multipart(fields, [("../../机组图纸.pdf", "application/pdf", drawing),
                                    ("notes.txt", "text/plain", "检修记录\n".encode())])
    sent = web.request("POST", "/mail/send", body, {"Content-Type": kind})
    assert sent.url.endswith("done=sent"), sent.text[:500]
    with imap_login(server, other) as imap:
        imap.select("INBOX")
        _, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
    got = email.message_from_bytes(data[0][1], policy=email.policy.default)
    parts = {p.get_filename(): p.get_content() for p in got.iter_attachments()}
    parts["notes.txt"] = parts.get("notes.txt", "").replace("\r\n", "\n")  # text travels with CRLF
    assert parts == {"机组图纸.pdf": drawing, "notes.txt": "检修记录\n"}, list(parts)
    assert "见附件" in got.get_body(("plain",)).get_content()

    too_big, kind = multipart(fields, [("big.bin", "application/octet-stream", b"x" * (26 << 20))])
    refused = web.request("POST", "/mail/send", too_big, {"Content-Type": kind})
    assert refused.status in (413, 422), refused.status  # the form is larger than a message may be


def test_searching_a_folder_finds_chinese_words_and_filters_by_field(server, user):
    deliver(server, user, gb2312_message(user))  # subject 检修通知, text about 机组检修
    deliver(server, user, "From: boss@plant.example\r\nSubject: lunch\r\n\r\n午饭 at noon\r\n".encode())
    deliver(server, user, "From: wang@plant.example\r\nSubject: 会议\r\n\r\n明天开会\r\n".encode())
    web = WebClient(server)
    web.login(user, PASSWORD, admin=False)

    def found(query: str, within: str = "text") -> list[str]:
        page = web.get("/mail?f=INBOX&q=" + urllib.parse.quote(query) + "&in=" + within)
        assert page.status == 200
        return re.findall(r'uid=\d+">([^<]*)<', page.text)
    assert found("检修") == ["检修通知"]  # in the subject and in a GB2312 body
    assert found("机组", "body") == ["检修通知"] and found("机组", "subject") == []
    assert sorted(found("wang@plant.example", "from")) == ["会议", "检修通知"]
    assert found("noon") == ["lunch"] and found("nothing-like-this") == []
    assert len(found("")) == 3  # an empty search lists the folder
    assert 'value="检修"' in web.get("/mail?f=INBOX&q=" + urllib.parse.quote("检修")).text


def test_searching_every_folder_by_date_and_for_attachments(server, user):
    deliver(server, user, gb2312_message(user))  # 检修通知, with a PDF attached
    deliver(server, user, "From: wang@plant.example\r\nSubject: 检修总结\r\n\r\n全部完成\r\n".encode())
    deliver(server, user, "From: wang@plant.example\r\nSubject: 检修垃圾\r\n\r\n广告\r\n".encode())
    web = WebClient(server)
    inbox = web.login(user, PASSWORD, admin=False)
    web.submit("/mail", "/mail/act", {"f": "INBOX", "uid": str(uid_of(inbox.text, "检修总结")), "action": "move",
                                      "target": "Archive"})
    web.submit("/mail", "/mail/act", {"f": "INBOX", "uid": str(uid_of(inbox.text, "检修垃圾")), "action": "spam"})

    def found(**params: str) -> list[tuple[str, str]]:
        page = web.get("/mail?" + urllib.parse.urlencode({"f": "INBOX", **params}))
        assert page.status == 200
        return re.findall(r'href="/mail/read\?f=([^&]*)&amp;uid=\d+">([^<]*)<', page.text)
    assert found(q="检修") == [("INBOX", "检修通知")]
    assert sorted(found(q="检修", all="1")) == [("Archive", "检修总结"), ("INBOX", "检修通知")]  # not Junk
    assert found(q="检修", all="1", att="1") == [("INBOX", "检修通知")]
    today = datetime.date.today()
    assert len(found(all="1", since=str(today))) == 2
    assert found(all="1", before=str(today)) == [] and found(all="1", since=str(today + datetime.timedelta(1))) == []
    assert found(q="检修", since="not a date") == [("INBOX", "检修通知")]  # a date it cannot read is no filter
    page = web.get("/mail?f=INBOX&q=%E6%A3%80%E4%BF%AE&all=1").text
    assert 'name="uid"' not in page and "data-keys" not in page  # results from several folders: no bulk actions


def test_conversations_group_a_thread_and_show_it_on_one_page(server, user):
    for n, (subject, refs) in enumerate((("检修计划", ""), ("Re: 检修计划", "<p0@x>"), ("lunch", ""),
                                         ("Re: 检修计划", "<p0@x> <p1@x>"))):
        deliver(server, user, (f"From: w{n}@plant.example\r\nSubject: {subject}\r\nMessage-ID: <p{n}@x>\r\n"
                               + (f"References: {refs}\r\nIn-Reply-To: {refs.split()[-1]}\r\n" if refs else "")
                               + f"Date: Mon, 07 Dec 2026 0{n}:00:00 +0000\r\n\r\n第 {n} 封\r\n").encode())
    web = WebClient(server)
    web.login(user, PASSWORD, admin=False)
    page = web.get("/mail?f=INBOX&threads=1").text
    rows = re.findall(r'href="/mail/conversation\?f=INBOX&amp;uid=(\d+)">([^<]*)</a>(?: <span class="count"[^>]*>(\d+)<)?',
                      page)
    assert [(s, c) for _u, s, c in rows] == [("Re: 检修计划", "3"), ("lunch", "")]  # newest activity first
    assert "第 3 封" not in page
    conversation = web.get(f"/mail/conversation?f=INBOX&uid={rows[0][0]}")
    assert conversation.status == 200
    assert [conversation.text.index(f"第 {n} 封") for n in (0, 1, 3)] == sorted(
        conversation.text.index(f"第 {n} 封") for n in (0, 1, 3)) and "第 2 封" not in conversation.text
    after = web.get("/mail?f=INBOX&threads=1").text
    assert re.search(rf'<tr class="(unread)?[^"]*" data-uid="{rows[0][0]}"', after)[1] is None  # opened: read
    assert re.search(r'<tr class="(unread)?[^"]*" data-uid="3"', after)[1] == "unread"  # lunch: not opened
    assert web.get("/mail/conversation?f=INBOX&uid=99999").status == 404
