"""Webmail's settings (issue #13), each on the service IMAP's and the CLI's users reach: vacation, forwarding
and filters set in the page work on the next mail (a reply once per sender, a copy forwarded, a message
filed in a Chinese-named folder); the raw Sieve editor shows the line of an error and stores a valid script
as the active one (what ManageSieve lists); the spam threshold reaches the filter's settings."""

from __future__ import annotations

import json
import re
import smtplib
import urllib.parse

from conftest import PASSWORD, dizimail_cli, start_server
from helpers import fetch_all, imap_login, wait_for
from web_tools import WebClient


def post(web: WebClient, path: str, fields: list[tuple[str, str]]) -> tuple[int, str, str]:
    """(status, the error the redirect names, the page) of a settings form posted with the page's token."""
    token = web.get("/mail/settings").csrf
    answer = web.request("POST", path, urllib.parse.urlencode([("csrf", token), *fields]).encode(),
                         {"Content-Type": "application/x-www-form-urlencoded"})
    error = urllib.parse.parse_qs(urllib.parse.urlparse(answer.url).query).get("error", [""])[0]
    return answer.status, error, answer.text


def scripts(server, user: str) -> dict[str, bool]:
    """The user's Sieve scripts and whether each is the active one (``dizimail sieve list --json``)."""
    listed = json.loads(dizimail_cli(server.config_file, "sieve", "list", user, "--json").stdout)
    return {s["name"]: s["active"] for s in listed}


def folder_subjects(server, user: str, folder: str) -> list[str]:
    from dizimail.codec.imap.utf7 import encode_mutf7
    with imap_login(server, user) as imap:
        if imap.select(f'"{encode_mutf7(folder)}"', readonly=True)[0] != "OK":
            return []  # not made yet
        _, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    return sorted(d[1].decode().strip() for d in data if isinstance(d, tuple))


def test_vacation_forwarding_and_a_filter_set_on_the_page_work_on_the_next_mail(server, user):
    writer, copy = server.add_user(f"w{user.split('@')[0]}"), server.add_user(f"c{user.split('@')[0]}")
    web = WebClient(server, lang="zh-CN")
    web.login(user, PASSWORD, admin=False)
    fields = [("vacation", "on"), ("vacation_subject", "休假中"), ("vacation_text", "我在休假，12 月 20 日回来。"),
              ("vacation_start", ""), ("vacation_end", ""), ("vacation_days", "7"),
              ("forward_to", copy), ("forward_keep", "on"),
              ("filter_field", "subject"), ("filter_op", "contains"), ("filter_value", "报表"),
              ("filter_action", "fileinto"), ("filter_folder", "工作/报表"),
              ("filter_field", "from"), ("filter_op", "is"), ("filter_value", ""), ("filter_action", "discard"),
              ("filter_folder", "")]  # an empty row: no filter
    status, error, page = post(web, "/mail/settings/rules", fields)
    assert status == 200 and error == "" and "设置已保存" in page
    assert 'value="我在休假' not in page and "我在休假，12 月 20 日回来。</textarea>" in page  # shown back
    assert page.count('name="filter_value" value="报表"') == 1
    script = dizimail_cli(server.config_file, "sieve", "rules", user, "--script").stdout
    assert 'fileinto :create "工作/报表"' in script and "vacation :days 7" in script

    for subject in ("月度报表", "lunch"):
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
            s.sendmail(writer, [user], f"From: {writer}\r\nTo: {user}\r\nSubject: {subject}\r\n\r\nhi\r\n".encode())
    wait_for(lambda: len(fetch_all(server, copy)) == 2, what="both forwarded")
    replies = wait_for(lambda: fetch_all(server, writer), what="the vacation reply")
    assert len(replies) == 1 and b"=?utf-8?" in replies[0]
    assert folder_subjects(server, user, "工作/报表") == ["Subject: 月度报表"]
    assert folder_subjects(server, user, "INBOX") == ["Subject: lunch"]

    bad = [("vacation", "on"), ("vacation_text", "x"), ("vacation_start", "2026-02-01"), ("vacation_end", "2026-01-01")]
    assert post(web, "/mail/settings/rules", bad)[1] == "bad_rule"
    assert post(web, "/mail/settings/rules", [("filter_field", "subject"), ("filter_op", "matches"),
                                              ("filter_value", "x"), ("filter_action", "discard")])[1] == "bad_rule"
    assert post(web, "/mail/settings/rules", [("forward_to", "not an address")])[1] == "bad_rule"
    assert "vacation :days 7" in dizimail_cli(server.config_file, "sieve", "rules", user, "--script").stdout
    assert post(web, "/mail/settings/rules", [])[1] == ""  # all cleared
    assert json.loads(dizimail_cli(server.config_file, "sieve", "rules", user).stdout) == {
        "filters": [], "forwarding": None, "vacation": None}
    actions = dizimail_cli(server.config_file, "audit", "list", "--json").stdout
    assert f"web:{user}" in actions and "sieve.rules" in actions


def test_the_sieve_editor_shows_the_errors_line_and_stores_a_valid_script_as_the_active_one(server, user):
    web = WebClient(server)
    web.login(user, PASSWORD, admin=False)
    bad = 'require "fileinto";\n\nif header :contains "subject" "x" {\n  fileinto "X"\n}\n'  # no ; after fileinto
    status, _error, page = post(web, "/mail/settings/sieve", [("name", "mine"), ("script", bad), ("action", "save")])
    assert status == 422 and 'id="sieve-error"' in page and "Line 5" in page and 'class="bad-line"' in page
    good = 'require ["fileinto", "mailbox"];\nif header :contains "subject" "检修" { fileinto :create "检修"; }\n'
    status, _error, page = post(web, "/mail/settings/sieve", [("name", "mine"), ("script", good), ("action", "check")])
    assert status == 200 and 'id="sieve-ok"' in page
    assert scripts(server, user) == {}  # a check stores nothing
    status, error, page = post(web, "/mail/settings/sieve", [("name", "mine"), ("script", good), ("action", "save")])
    assert status == 200 and error == ""
    assert scripts(server, user) == {"mine": True}
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        s.sendmail("a@outside.example", [user], "Subject: 2 号机组检修\r\n\r\nx\r\n".encode())
    assert wait_for(lambda: folder_subjects(server, user, "检修"), what="filed by the script") == [
        "Subject: 2 号机组检修"]
    assert "检修" in web.get("/mail/settings/sieve").text  # the active script, shown to edit
    post(web, "/mail/settings/sieve", [("action", "off")])
    assert scripts(server, user) == {"mine": False}


def test_the_spam_threshold_and_personal_model_reach_the_filters_settings(server, user):
    web = WebClient(server)
    web.login(user, PASSWORD, admin=False)
    assert post(web, "/mail/settings/spam", [("junk_at", "3.5"), ("personal", "on")])[1] == ""
    levels = server.call(lambda s: s.spam_settings.levels(user))
    assert levels.junk_at == 3.5 and server.call(lambda s: s.spam_settings.personal(user)) is True
    assert post(web, "/mail/settings/spam", [("junk_at", "eleven")])[1] == "bad_setting"
    assert post(web, "/mail/settings/spam", [("junk_at", "42")])[1] == "bad_setting"
    assert server.call(lambda s: s.spam_settings.levels(user)).junk_at == 3.5
    assert post(web, "/mail/settings/held", [("id", "1"), ("action", "release")])[1] == "unknown_quarantine_id"
    assert web.get("/mail/settings/held/1").status == 404


def test_a_users_own_external_mailbox_is_fetched_and_inner_hosts_are_refused(server, user, tmp_path):
    web = WebClient(server)
    web.login(user, PASSWORD, admin=False)
    fields = [("action", "add"), ("server", f"127.0.0.1:{server.ports['pop3s']}"), ("protocol", "pop3"),
              ("security", "tls"), ("username", user), ("password", PASSWORD)]
    assert post(web, "/mail/settings/fetch", fields)[1] == "fetch_inner_host"  # this machine: not for users
    assert post(web, "/mail/settings/fetch", [*fields[:1], ("server", "10.1.2.3"), *fields[2:]])[1] == \
        "fetch_inner_host"
    assert post(web, "/mail/settings/fetch", [*fields[:1], ("server", "no such host.invalid"), *fields[2:]])[1] in (
        "bad_server", "fetch_inner_host")

    node = start_server(tmp_path / "open", extra="[fetch]\nuser_private_hosts = true\n")
    try:
        owner, elsewhere = node.add_user("owner"), node.add_user("elsewhere")
        with smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=30) as s:
            s.sendmail("a@outside.example", [elsewhere], "Subject: 外部邮件\r\n\r\nfrom elsewhere\r\n".encode())
        web = WebClient(node)
        web.login(owner, PASSWORD, admin=False)
        added = [("action", "add"), ("server", f"127.0.0.1:{node.ports['pop3s']}"), ("protocol", "pop3"),
                 ("security", "tls"), ("username", elsewhere), ("password", PASSWORD), ("keep", "on")]

        def fetch_id() -> str:
            page = web.get("/mail/settings").text.split('id="fetch"')[1]
            assert elsewhere in page
            return re.search(r'name="id" value="(\d+)"', page)[1]
        assert post(web, "/mail/settings/fetch", [*added, ("verify", "on")])[1] == ""
        post(web, "/mail/settings/fetch", [("action", "run")])  # the node's self-signed certificate: refused
        assert "certificate" in web.get("/mail/settings").text.split('id="fetch"')[1].lower()
        assert fetch_all(node, owner) == []
        assert post(web, "/mail/settings/fetch", [("action", "remove"), ("id", fetch_id())])[1] == ""
        assert post(web, "/mail/settings/fetch", added)[1] == ""  # the certificate not checked
        post(web, "/mail/settings/fetch", [("action", "run")])
        [fetched] = fetch_all(node, owner)
        assert b"from elsewhere" in fetched
        other = WebClient(node)
        other.login(elsewhere, PASSWORD, admin=False)
        assert owner not in other.get("/mail/settings").text.split('id="fetch"')[1]
        assert post(other, "/mail/settings/fetch", [("action", "remove"), ("id", fetch_id())])[1] == \
            "unknown_fetch_account"
    finally:
        node.stop()


def test_a_users_own_block_list_refuses_a_sender_for_them_alone(server, user):
    other = server.add_user(f"ob{user.split('@')[0]}")
    web = WebClient(server, lang="zh-CN")
    web.login(user, PASSWORD, admin=False)
    assert post(web, "/mail/settings/spam", [("junk_at", ""), ("allow", ""),
                                             ("block", "@nuisance.example\nboss@annoying.example\n")])[1] == ""
    page = web.get("/mail/settings").text.split('id="spam"')[1]
    assert "@nuisance.example\nboss@annoying.example" in page
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        s.ehlo("mail.nuisance.example")
        s.mail("ads@nuisance.example")
        code, text = s.rcpt(user)
        assert code == 550 and b"does not take mail from you" in text
        assert s.rcpt(other)[0] == 250  # another user of the same domain still gets it
        s.rset()
        s.mail("friend@elsewhere.example")
        assert s.rcpt(user)[0] == 250
    assert post(web, "/mail/settings/spam", [("allow", "10.0.0.0/8"), ("block", "")])[1] == "bad_access_pattern"
    assert post(web, "/mail/settings/spam", [("allow", ""), ("block", "not a pattern at all")])[1] == \
        "bad_access_pattern"
    assert post(web, "/mail/settings/spam", [("junk_at", "42"), ("allow", ""), ("block", "")])[1] == "bad_setting"
    assert "@nuisance.example" in web.get("/mail/settings").text  # a refused change changes nothing
    assert post(web, "/mail/settings/spam", [("allow", ""), ("block", "")])[1] == ""
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        s.ehlo("mail.nuisance.example")
        s.mail("ads@nuisance.example")
        assert s.rcpt(user)[0] == 250  # the list emptied: taken again


def test_a_users_mailbox_host_is_checked_again_at_each_run_and_the_checked_address_is_used(server, user):
    """DNS rebinding: a name that resolved outward when the user added it and inward now is refused at the
    run (here: an account stored as a user's, naming this machine); and the connection goes to the address
    that was checked, whatever the name resolves to by then (here: a name that resolves nowhere)."""
    from dizimail.clients.fetch import StdlibMailboxClient
    from dizimail.services.fetch import fetch_account
    holder = server.add_user(f"rb{user.split('@')[0]}")
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        s.sendmail("a@outside.example", [holder], b"Subject: inner\r\n\r\nnot for the user\r\n")
    acc = fetch_account(f"localhost:{server.ports['pop3s']}", holder, PASSWORD, into=user, keep=True, verify=False)

    async def rebound(s):
        import dataclasses
        fetch_id = await s.fetch.add(dataclasses.replace(acc, outside_only=True))
        stored = next(a for a in await s.fetch.list() if a.id == fetch_id)
        count = await s.fetch.run_one(stored)
        return count, next(a for a in await s.fetch.list() if a.id == fetch_id).last_error
    count, error = server.call(rebound)
    assert count == 0 and "localhost is 127.0.0.1" in error, error
    assert fetch_all(server, holder) and not [m for m in fetch_all(server, user) if b"not for the user" in m]

    async def pinned(_s):
        import dataclasses
        session = await StdlibMailboxClient().open(dataclasses.replace(acc, host="no-such-host.invalid"), 30,
                                                   "127.0.0.1")
        try:
            return len(await session.listing())
        finally:
            await session.close()
    assert server.call(pinned) == 1  # connected to the given address: the name was never looked up
