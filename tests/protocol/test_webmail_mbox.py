"""A folder out and back in (issue #13, the seed's mail backup): exported as mbox (mboxrd quoting) and as a
zip of .eml files, streamed; an mbox imported into a Chinese-named folder arrives whole, flags from its
Status lines, "From " lines unquoted, and IMAP sees it; a file that is no mbox is a clear error."""

from __future__ import annotations

import io
import mailbox
import zipfile

from conftest import PASSWORD
from dizimail.codec.imap.utf7 import encode_mutf7
from helpers import imap_login
from web_tools import WebClient, deliver


def upload_mbox(web: WebClient, folder: str, data: bytes):
    token = web.get("/mail/folders").csrf
    boundary = "----mboxtest"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{token}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="f"\r\n\r\n{folder}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="old.mbox"\r\n'
            "Content-Type: application/mbox\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return web.request("POST", "/mail/import", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def test_a_folder_goes_out_as_mbox_and_zip_and_comes_back_in(server, user, tmp_path):
    deliver(server, user, "From: wang@plant.example\r\nSubject: 第一封\r\n\r\nFrom the start\r\n>From quoted\r\nend\r\n".encode())
    deliver(server, user, b"From: li@plant.example\r\nSubject: second\r\n\r\nbody two\r\n")
    web = WebClient(server)
    web.login(user, PASSWORD, admin=False)
    exported = web.get("/mail/export?f=INBOX&kind=mbox")
    assert exported.headers["content-type"].startswith("application/mbox")
    assert 'filename="INBOX.mbox"' in exported.headers["content-disposition"]
    assert exported.body.startswith(b"From wang@plant.example ") and b"\n>From the start\n>>From quoted\n" in exported.body
    path = tmp_path / "out.mbox"
    path.write_bytes(exported.body)
    box = mailbox.mbox(str(path))
    try:
        read = [m["subject"] for m in box]
    finally:
        box.close()
    assert len(read) == 2 and "second" in read  # the stdlib's mbox reader finds both

    zipped = web.get("/mail/export?f=INBOX&kind=zip")
    with zipfile.ZipFile(io.BytesIO(zipped.body)) as z:
        assert len(z.namelist()) == 2 and all(n.endswith(".eml") for n in z.namelist())
        assert b"body two" in z.read(z.namelist()[1])
    assert web.get("/mail/export?f=Nowhere").status == 404

    web.submit("/mail/folders", "/mail/folders", {"action": "create", "f": "", "new": "旧邮件"})
    old = (b"From someone@old.example Mon Jan  5 10:00:00 2015\nFrom: someone@old.example\nSubject: old one\n"
           b"Status: RO\nX-Status: F\n\n>From a quoted line\nplain\n\n"
           b"From other@old.example Tue Jan  6 10:00:00 2015\nFrom: other@old.example\nSubject: old two\n\nsecond\n")
    done = upload_mbox(web, "旧邮件", old)
    assert "done=mbox_imported" in done.url and "added=2" in done.url and "skipped=0" in done.url
    with imap_login(server, user) as imap:
        imap.select(f'"{encode_mutf7("旧邮件")}"', readonly=True)
        _, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        got = [(d[0], d[1]) for d in data if isinstance(d, tuple)]
    assert len(got) == 2
    flags, first = got[0]
    assert b"\\Seen" in flags and b"\\Flagged" in flags and b"Status:" not in first
    assert first.endswith(b"From a quoted line\r\nplain\r\n") and b"\r\n" in first and b"\n\n" not in first

    refused = upload_mbox(web, "旧邮件", b"this is no mbox\n")
    assert "error=bad_mbox" in refused.url
