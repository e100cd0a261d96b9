"""Mailing lists (issue #12) over real SMTP, IMAP and the command line: who may post, the header fields
members see, moderation by reply and from the CLI, subscription by mail, VERP bounces that disable a
member, the archive folder, and one stored message for 5,000 members."""

from __future__ import annotations

import email
import email.header
import email.utils
import re
import smtplib
import sqlite3

import dkim
import pytest

from conftest import DOMAIN, dizimail_cli
from dizimail.model.errors import NotFound
from helpers import add_route, fetch_all, wait_for
from peers import SmtpSinkPeer, free_port

OUTSIDE = "friend@outside.test"
_n = iter(range(1, 1_000_000))


def make_list(server, *, policy: str = "members", members: list[str] = (), **kw) -> str:
    address = f"list{next(_n)}@{DOMAIN}"
    server.call(lambda s: s.lists.create(address, name="Staff 员工", policy=policy, members=list(members), **kw))
    return address


def send(server, sender: str, rcpts: list[str], subject: str, extra: str = "") -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=60) as s:
        s.sendmail(sender, rcpts, f"From: {sender}\r\nTo: {rcpts[0]}\r\nSubject: {subject}\r\n{extra}"
                                  f"Message-ID: <{next(_n)}@test>\r\n\r\nhello list\r\n".encode())


def refused(server, sender: str, rcpt: str) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        s.ehlo("client.test")
        s.mail(sender)
        return s.rcpt(rcpt)


def subjects(server, user: str) -> list[str]:
    return [str(email.message_from_bytes(m)["Subject"]) for m in fetch_all(server, user)]


def decoded(value: str) -> str:
    return str(email.header.make_header(email.header.decode_header(value))).replace("\r\n", "").replace("\n", "")


def db(server) -> sqlite3.Connection:
    return sqlite3.connect(server.config.path(server.config.storage.database))


def test_members_only_list_refuses_others_at_rcpt_and_members_see_the_list_fields(server):
    alice, bob = server.add_user(f"a{next(_n)}"), server.add_user(f"b{next(_n)}")
    mlist = make_list(server, members=[alice, bob])
    code, text = refused(server, OUTSIDE, mlist)
    assert code == 550 and b"only members" in text
    assert refused(server, "", mlist)[0] == 550  # bounces belong to the return path, not the list
    send(server, alice, [mlist], "first post")
    got = wait_for(lambda: fetch_all(server, bob), what="bob's copy")
    message = email.message_from_bytes(got[0])
    local = mlist.split("@")[0]
    assert message["List-Id"] == f'"Staff 员工" <{local}.{DOMAIN}>' or message["List-Id"] == f"<{local}.{DOMAIN}>"
    assert message["List-Post"] == f"<mailto:{mlist}>"
    assert f"<mailto:{local}+unsubscribe@{DOMAIN}>" in message["List-Unsubscribe"]
    assert message["Precedence"] == "list" and message["Subject"] == "first post"
    assert message["Return-Path"] == f"<{local}+bounces@{DOMAIN}>"
    assert subjects(server, alice) == ["first post"]  # the poster is a member too


def test_a_post_to_5000_local_members_is_one_blob_and_5000_mailbox_rows(tmp_path_factory):
    from conftest import start_server
    srv = start_server(tmp_path_factory.mktemp("big"))
    try:
        async def users(s):
            out = []
            for i in range(5000):
                address = f"m{i}@{DOMAIN}"
                await s.accounts.add_user(address, "secret-password", f"m{i}", 0)
                out.append(address)
            return out
        members = srv.call(users)
        mlist = make_list(srv, policy="anyone", members=members)
        send(srv, OUTSIDE, [mlist], "to everyone")
        with db(srv) as conn:
            rows = conn.execute("SELECT blob_id, count(*) FROM messages GROUP BY blob_id").fetchall()
            refs = conn.execute("SELECT refcount FROM blobs WHERE id = ?", (rows[0][0],)).fetchone()[0]
        assert len(rows) == 1 and rows[0][1] == 5000 and refs == 5000
        for who in (members[0], members[4999]):
            assert subjects(srv, who) == ["to everyone"]
    finally:
        srv.stop()


def test_a_moderated_post_waits_and_goes_out_when_the_moderator_replies(server):
    moderator, member, poster = (server.add_user(f"{p}{next(_n)}") for p in "mpq")
    mlist = make_list(server, policy="moderated", members=[member], moderators=[moderator])
    send(server, poster, [mlist], "please approve")
    request = wait_for(lambda: fetch_all(server, moderator), what="moderation request")[0]
    assert fetch_all(server, member) == []
    head = email.message_from_bytes(request)
    approve = email.utils.parseaddr(head["Reply-To"])[1]
    assert re.fullmatch(rf"{mlist.split('@')[0]}\+approve-\d+-[a-z2-7]{{16}}@{DOMAIN}", approve)
    assert "[待审核 To moderate]" in decoded(head["Subject"]) and "please approve" in decoded(head["Subject"])
    held = dizimail_cli(server.config_file, "list", "moderate", mlist).stdout
    assert "please approve" in held
    # A forged approval (wrong MAC) is an unknown address; the moderator's reply approves.
    real_end = approve[-len(DOMAIN) - 3:-len(DOMAIN) - 1]  # the MAC's last two characters
    forged = approve[:-len(DOMAIN) - 3] + ("bb" if real_end == "aa" else "aa") + "@" + DOMAIN  # never the real one
    assert refused(server, moderator, forged)[0] == 550
    send(server, moderator, [approve], "Re: " + head["Subject"])
    wait_for(lambda: subjects(server, member) == ["please approve"], what="the approved post")
    assert "please approve" not in dizimail_cli(server.config_file, "list", "moderate", mlist).stdout

    send(server, poster, [mlist], "not this one")
    entry = wait_for(lambda: server.call(lambda s: s.lists.held(mlist)), what="held")[0]
    out = dizimail_cli(server.config_file, "list", "moderate", mlist, "--reject", str(entry.id),
                       "--reason", "off topic").stdout
    assert "rejected" in out
    notice = wait_for(lambda: [m for m in fetch_all(server, poster) if b"Not approved" in m], what="rejection")
    assert b"off topic" in email.message_from_bytes(notice[0]).get_payload(decode=True)
    assert subjects(server, member) == ["please approve"]


def test_subscribe_and_unsubscribe_by_mail_with_confirmation(server):
    joiner = server.add_user(f"j{next(_n)}")
    mlist = make_list(server, policy="members")
    local = mlist.split("@")[0]
    send(server, joiner, [f"{local}+subscribe@{DOMAIN}"], "subscribe")
    ask = email.message_from_bytes(wait_for(lambda: fetch_all(server, joiner), what="confirmation request")[0])
    confirm = email.utils.parseaddr(ask["Reply-To"])[1]
    assert confirm.startswith(f"{local}+confirm-")
    assert "请确认" in decoded(ask["Subject"])
    assert server.call(lambda s: s.lists.members(mlist)) == []
    assert refused(server, joiner, f"{local}+confirm-{'0' * 32}@{DOMAIN}")[0] == 550  # a made-up token
    send(server, joiner, [confirm], "Re: confirm")
    wait_for(lambda: [m.address for m in server.call(lambda s: s.lists.members(mlist))] == [joiner], what="member")
    send(server, joiner, [mlist], "now I may post")  # a members-only list takes it now
    wait_for(lambda: "now I may post" in subjects(server, joiner), what="own post")

    send(server, joiner, [f"{local}+unsubscribe@{DOMAIN}"], "unsubscribe")
    wait_for(lambda: len([m for m in fetch_all(server, joiner) if b"+confirm-" in m]) == 2, what="2nd confirm")
    second = [m for m in fetch_all(server, joiner) if b"+confirm-" in m][-1]
    send(server, joiner, [email.utils.parseaddr(email.message_from_bytes(second)["Reply-To"])[1]], "Re: bye")
    wait_for(lambda: server.call(lambda s: s.lists.members(mlist)) == [], what="left")
    assert refused(server, joiner, confirm)[0] == 550  # a token works once


def test_a_closed_list_takes_no_subscriptions_by_mail(server):
    mlist = make_list(server, subscription="closed")
    assert refused(server, OUTSIDE, mlist.replace("@", "+subscribe@"))[0] == 550


def test_the_archive_keeps_every_post_and_a_looping_post_is_dropped(server):
    keeper, member = server.add_user(f"k{next(_n)}"), server.add_user(f"n{next(_n)}")
    mlist = make_list(server, policy="anyone", members=[member], archive=keeper)
    send(server, OUTSIDE, [mlist], "for the record")
    local = mlist.split("@")[0]
    send(server, OUTSIDE, [mlist], "came back", extra=f"List-Id: <{local}.{DOMAIN}>\r\n")
    wait_for(lambda: subjects(server, member) == ["for the record"], what="member copy")
    from helpers import imap_login
    with imap_login(server, keeper) as imap:
        assert imap.select(f'"Lists/{mlist}"', readonly=True)[0] == "OK"
        _, ids = imap.search(None, "ALL")
        assert len(ids[0].split()) == 1
        assert imap.select("INBOX", readonly=True)[1] == [b"0"]


def test_remote_members_get_their_own_return_path_and_hard_bounces_disable_them(server, tmp_path):
    good = SmtpSinkPeer(tmp_path / "good", free_port())
    bad = SmtpSinkPeer(tmp_path / "bad", free_port(), hard=["RCPT"], hard_reply="550 5.1.1 no such user")
    with good, bad:
        add_route(server, "good.test", f"127.0.0.1:{good.port}")
        add_route(server, "bad.test", f"127.0.0.1:{bad.port}")
        key = server.call(lambda s: s.dkim.generate(DOMAIN))
        mlist = make_list(server, policy="anyone", members=["ann@good.test", "gone@bad.test"], bounce_limit=2)
        local = mlist.split("@")[0]
        send(server, OUTSIDE, [mlist], "hello outside")
        sent = good.wait_for(1)
        assert re.fullmatch(rf"{local}\+bounce-\d+-[a-z2-7]{{16}}@{DOMAIN}", sent[0].sender), sent[0].sender
        data = sent[0].data if b"\r\n" in sent[0].data else sent[0].data.replace(b"\n", b"\r\n")
        head = email.message_from_bytes(data)
        assert f"<mailto:{local}+unsubscribe@{DOMAIN}>" in head["List-Unsubscribe"]
        assert head["List-Id"] and head["Subject"] == "hello outside"
        # The list domain's signature covers the member's own unsubscription fields (RFC 8058 §4).
        signature = head["DKIM-Signature"]
        assert signature and "list-unsubscribe" in signature.lower().replace(" ", "")
        record = f"v=DKIM1; k=rsa; p={key.public_key}".encode()
        assert dkim.verify(data, dnsfunc=lambda name, timeout=5: record)

        def status() -> tuple[str, int]:
            m = next(m for m in server.call(lambda s: s.lists.members(mlist)) if m.address == "gone@bad.test")
            return m.status, m.bounces
        wait_for(lambda: status() == ("active", 1), what="first hard bounce counted")
        send(server, OUTSIDE, [mlist], "hello again")
        wait_for(lambda: status() == ("disabled", 2), what="member disabled")
        good.wait_for(2)
        send(server, OUTSIDE, [mlist], "third")
        good.wait_for(3)
        members = dizimail_cli(server.config_file, "list", "members", mlist).stdout
        assert "disabled" in members and "gone@bad.test" in members


def test_cli_adds_lists_members_and_policy(server):
    address = f"cli{next(_n)}@{DOMAIN}"
    out = dizimail_cli(server.config_file, "list", "add", address, "--member", "x@outside.test", "--member",
                       f"@{DOMAIN}", "--policy", "anyone").stdout
    assert "created" in out
    assert "anyone" in dizimail_cli(server.config_file, "list", "show", address).stdout
    dizimail_cli(server.config_file, "list", "policy", address, "moderated", "--moderator", f"postmaster@{DOMAIN}")
    assert server.call(lambda s: s.lists.get(address)).policy == "moderated"
    dizimail_cli(server.config_file, "list", "members", address, "--remove", "x@outside.test")
    assert "x@outside.test" not in dizimail_cli(server.config_file, "list", "members", address).stdout
    bad = dizimail_cli(server.config_file, "list", "policy", address, "everyone", check=False)
    assert bad.returncode != 0
    dizimail_cli(server.config_file, "list", "remove", address)
    with pytest.raises(NotFound):
        server.call(lambda s: s.lists.get(address))
