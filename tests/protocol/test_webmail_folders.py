"""Webmail's folder management (issue #13): what the browser creates, renames, deletes, subscribes to and
empties is what an IMAP client of the same user sees, Chinese names included; INBOX and the special-use
folders stay; a bad name or action is a clear error on the page."""

from __future__ import annotations

import urllib.parse

from conftest import PASSWORD
from dizimail.codec.imap.utf7 import decode_mutf7
from helpers import imap_login
from web_tools import WebClient, deliver, uid_of


def names(imap, command: str = "LIST") -> set[str]:
    _, data = getattr(imap, command.lower())('""', "*")
    return {decode_mutf7(line.decode().rsplit(' "/" ', 1)[1].strip('"')) for line in data if line}


def change(web: WebClient, action: str, folder: str, new: str = "") -> str:
    answer = web.submit("/mail/folders", "/mail/folders", {"action": action, "f": folder, "new": new})
    assert answer.status == 200
    return urllib.parse.parse_qs(urllib.parse.urlparse(answer.url).query).get("error", [""])[0]


def test_folders_made_renamed_and_deleted_in_the_browser_are_what_imap_sees(server, user):
    web = WebClient(server, lang="zh-CN")
    web.login(user, PASSWORD, admin=False)
    assert change(web, "create", "", "工作") == ""
    assert change(web, "create", "工作", "检修") == ""
    page = web.get("/mail/folders")
    assert "工作/检修" in page.text and "文件夹已更改" not in page.text
    with imap_login(server, user) as imap:
        assert {"工作", "工作/检修"} <= names(imap) and {"工作", "工作/检修"} <= names(imap, "LSUB")
    deliver(server, user, b"From: a@outside.example\r\nSubject: pump report\r\n\r\nbody\r\n")
    inbox = web.get("/mail")
    token = inbox.csrf
    moved = web.request("POST", "/mail/act", urllib.parse.urlencode(
        [("csrf", token), ("f", "INBOX"), ("action", "move"), ("target", "工作/检修"),
         ("uid", str(uid_of(inbox.text, "pump report")))]).encode(), {"Content-Type": "application/x-www-form-urlencoded"})
    assert "error=" not in moved.url

    assert change(web, "rename", "工作/检修", "大修") == ""
    with imap_login(server, user) as imap:
        listed = names(imap)
        assert "工作/大修" in listed and "工作/检修" not in listed and "工作/大修" in names(imap, "LSUB")
        imap.select(f'"{"&XeVPXA-/&WSdP7g-"}"', readonly=True)  # 工作/大修 in modified UTF-7
        _, data = imap.uid("SEARCH", "ALL")
        assert len(data[0].split()) == 1
    assert "pump report" in web.get("/mail?f=" + urllib.parse.quote("工作/大修")).text

    assert change(web, "unsubscribe", "工作") == ""
    with imap_login(server, user) as imap:
        assert "工作" not in names(imap, "LSUB") and "工作" in names(imap)
    nav = web.get("/mail").text
    assert "未订阅" in nav.split('<nav class="folders"')[1].split("</nav>")[0]

    assert change(web, "delete", "工作") == ""
    with imap_login(server, user) as imap:
        assert not {"工作", "工作/大修"} & names(imap)


def test_special_folders_stay_trash_and_junk_empty_and_bad_names_are_refused(server, user):
    web = WebClient(server)
    web.login(user, PASSWORD, admin=False)
    for action, folder in (("delete", "INBOX"), ("delete", "Sent"), ("rename", "Trash")):
        assert change(web, action, folder, "x") == "special_folder", (action, folder)
    assert change(web, "empty", "INBOX") == "bad_action"
    assert change(web, "create", "", "a/b") == "bad_mailbox_name"
    assert change(web, "create", "", "") == "bad_mailbox_name"
    assert change(web, "create", "", "Archive") == "mailbox_exists"
    assert change(web, "delete", "Nowhere") == "unknown_mailbox"
    assert change(web, "explode", "INBOX") == "bad_action"
    page = web.get("/mail/folders?error=special_folder")
    assert "special folders" in page.text

    for n in range(3):
        deliver(server, user, f"From: a@outside.example\r\nSubject: old {n}\r\n\r\nbody\r\n".encode())
    inbox = web.get("/mail")
    body = [("csrf", inbox.csrf), ("f", "INBOX"), ("action", "delete")] + [
        ("uid", str(uid_of(inbox.text, f"old {n}"))) for n in range(3)]
    web.request("POST", "/mail/act", urllib.parse.urlencode(body).encode(),
                {"Content-Type": "application/x-www-form-urlencoded"})
    with imap_login(server, user) as imap:
        assert imap.select("Trash")[1] == [b"3"]
    assert change(web, "empty", "Trash") == ""
    with imap_login(server, user) as imap:
        assert imap.select("Trash")[1] == [b"0"] and imap.select("INBOX")[1] == [b"0"]
    no_token = web.post("/mail/folders", {"action": "create", "new": "x"})
    assert no_token.status == 403
