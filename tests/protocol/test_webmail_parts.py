"""Webmail's attachments and pictures (issue #13): images and PDFs previewed only when their own bytes say
what they are (anything else stays a download), every attachment in one zip with safe unique names, and
pictures from elsewhere blocked until the user asks for them, never in Junk."""

from __future__ import annotations

import base64
import io
import zipfile

from conftest import PASSWORD
from web_tools import WebClient, deliver, uid_of

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def attached(name: str, kind: str, data: bytes) -> str:
    return (f'--b\r\nContent-Type: {kind}\r\nContent-Disposition: attachment; filename="{name}"\r\n'
            f"Content-Transfer-Encoding: base64\r\n\r\n{base64.encodebytes(data).decode()}")


def test_previews_trust_the_bytes_and_the_zip_holds_every_attachment_with_safe_names(server, user):
    body = ("From: a@outside.example\r\nSubject: 图纸 parts\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee\r\n'
            + attached("photo.png", "image/png", PNG) + attached("fake.png", "image/png", b"<script>alert(1)</script>")
            + attached("plan.pdf", "application/pdf", b"%PDF-1.4\n%%EOF\n")
            + attached("../a.txt", "text/plain", b"one") + attached("a.txt", "text/plain", b"two") + "--b--\r\n")
    deliver(server, user, body.encode())
    web = WebClient(server)
    inbox = web.login(user, PASSWORD, admin=False)
    uid = uid_of(inbox.text, "图纸 parts")
    page = web.get(f"/mail/read?f=INBOX&uid={uid}").text
    assert page.count('class="preview"') == 2 and "view=1" in page and 'id="zip"' in page

    def view(n: int):
        return web.get(f"/mail/part?f=INBOX&uid={uid}&n={n}&view=1")
    photo, fake, pdf = view(1), view(2), view(3)
    assert photo.headers["content-type"] == "image/png" and photo.body == PNG
    assert photo.headers["content-disposition"].startswith("inline;") and "sandbox" in photo.headers[
        "content-security-policy"]
    assert fake.headers["content-type"] == "application/octet-stream" and fake.headers[
        "content-disposition"].startswith("attachment;")  # it says PNG; its bytes do not
    assert pdf.headers["content-type"] == "application/pdf" and "default-src 'none'" in pdf.headers[
        "content-security-policy"]

    archive = web.get(f"/mail/zip?f=INBOX&uid={uid}")
    assert archive.headers["content-type"] == "application/zip" and "attachment;" in archive.headers[
        "content-disposition"]
    with zipfile.ZipFile(io.BytesIO(archive.body)) as z:
        assert z.namelist() == ["photo.png", "fake.png", "plan.pdf", "a.txt", "a (2).txt"]
        assert z.read("a.txt") == b"one" and z.read("a (2).txt") == b"two" and z.read("photo.png") == PNG
    assert web.get("/mail/zip?f=INBOX&uid=999999").status == 404


def test_pictures_from_elsewhere_wait_for_the_user_and_never_show_in_junk(server, user):
    deliver(server, user, b"From: shop@outside.example\r\nSubject: offer\r\nMIME-Version: 1.0\r\n"
                          b"Content-Type: text/html; charset=utf-8\r\n\r\n"
                          b'<p>Sale!<img src="https://tracker.example/open.gif?u=1"></p>\r\n')
    web = WebClient(server)
    inbox = web.login(user, PASSWORD, admin=False)
    uid = uid_of(inbox.text, "offer")
    page = web.get(f"/mail/read?f=INBOX&uid={uid}").text
    assert 'id="pictures-blocked"' in page and "pictures=1" in page
    frame = web.get(f"/mail/html?f=INBOX&uid={uid}")
    assert "img-src data:;" in frame.headers["content-security-policy"]
    shown = web.get(f"/mail/read?f=INBOX&uid={uid}&pictures=1").text
    assert 'id="pictures-blocked"' not in shown and f"uid={uid}&amp;pictures=1" in shown
    allowed = web.get(f"/mail/html?f=INBOX&uid={uid}&pictures=1")
    assert "img-src data: https: http:" in allowed.headers["content-security-policy"]
    assert "sandbox" in allowed.headers["content-security-policy"] and "script" not in allowed.headers[
        "content-security-policy"]

    web.submit("/mail", "/mail/act", {"f": "INBOX", "uid": str(uid), "action": "spam"})
    junk = web.get("/mail?f=Junk")
    junk_uid = uid_of(junk.text, "offer")
    in_junk = web.get(f"/mail/read?f=Junk&uid={junk_uid}&pictures=1").text
    assert 'id="pictures-blocked"' not in in_junk and "pictures=1" not in in_junk.split('id="html"')[1]
