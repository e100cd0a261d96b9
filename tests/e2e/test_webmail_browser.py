"""Webmail in a real browser (issue #13): Debian's Chromium driven by Playwright. A GB2312 message with an
attachment read in Chinese, hostile HTML that runs nothing, a reply with an attachment (its upload through
the page's progress bar); new mail appearing live; a Chinese-named folder made on the page and a message
dragged onto it; keys that move through the list and delete; a draft saved by the page's own timer and
reopened from Drafts; a search for 检修. IMAP sees each change. Phone-sized screenshots."""

from __future__ import annotations

import base64
import email
import email.policy
import imaplib
import re
import smtplib
from collections.abc import Iterator

import pytest
from browser_tools import base, chromium, no_dialogs, shot
from playwright.sync_api import Browser, Page, expect

from conftest import DOMAIN, PASSWORD, client_tls, start_server
from dizimail.codec.imap.utf7 import encode_mutf7

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    srv = start_server(tmp_path_factory.mktemp("webmail"))
    srv.add_user("boss", password=PASSWORD)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


def user_login(page: Page, node, address: str) -> None:
    page.goto(base(node) + "/")
    page.fill("input[name=address]", address)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/mail$"))


def imap_of(node, address: str) -> imaplib.IMAP4_SSL:
    imap = imaplib.IMAP4_SSL("127.0.0.1", node.ports["imaps"], ssl_context=client_tls())
    imap.login(address, PASSWORD)
    return imap


def subjects(node, address: str, folder: str) -> list[str]:
    imap = imap_of(node, address)
    try:
        imap.select(f'"{encode_mutf7(folder)}"', readonly=True)
        _, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        return sorted(str(email.message_from_bytes(d[1], policy=email.policy.default)["Subject"])
                      for d in data if isinstance(d, tuple))
    finally:
        imap.logout()


def send(node, to: str, data: bytes, sender: str = "wang@plant.example") -> None:
    with smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=30) as s:
        s.sendmail(sender, [to], data)


def test_a_user_reads_mail_in_the_browser_and_hostile_html_runs_nothing(node, browser):
    """Webmail (issue #13): a GB2312 message with an attachment, read in Chinese; a hostile HTML message in
    its sandboxed frame: no dialog opens, nothing reaches the page, the harmless link stays; a phone-sized
    inbox."""

    reader = node.add_user("reader", password=PASSWORD)
    gb = base64.b64encode("下周一开始 2 号机组检修。".encode("gb2312")).decode()
    with smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=30) as s:
        s.sendmail("wang@plant.example", [reader], (
            "From: wang@plant.example\r\nSubject: =?gb2312?b?" + base64.b64encode("检修通知".encode("gb2312")).decode()
            + "?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            "Content-Type: text/plain; charset=gb2312\r\nContent-Transfer-Encoding: base64\r\n\r\n" + gb +
            "\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=plan.pdf\r\n\r\n"
            "%PDF-1.4\r\n--b--\r\n").encode())
        s.sendmail("bad@evil.example", [reader], (
            b"From: bad@evil.example\r\nSubject: hostile html\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/html; charset=utf-8\r\n\r\n"
            b'<p>hello<script>parent.stolen = 1; alert(1)</script><img src=x onerror="top.stolen = 2; alert(2)">'
            b'<a href="javascript:alert(3)">bad</a> <a href="https://ok.example/">fine link</a></p>\r\n'))
    ctx = browser.new_context(ignore_https_errors=True, locale="zh-CN", viewport={"width": 1280, "height": 860})
    ctx.set_default_timeout(20_000)
    page = ctx.new_page()
    dialogs = no_dialogs(page)
    page.goto(base(node) + "/")
    page.fill("input[name=address]", reader)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/mail$"))
    expect(page.locator("nav.folders")).to_contain_text("收件箱")
    page.click("a:text('检修通知')")
    expect(page.locator("#text")).to_contain_text("2 号机组检修")
    expect(page.locator("#attachments")).to_contain_text("plan.pdf")
    shot(page, "webmail-message-zh_CN")
    page.click("text=返回列表")
    page.click("a:text('hostile html')")
    frame = page.frame_locator("#html")
    expect(frame.locator("body")).to_contain_text("fine link")
    page.wait_for_timeout(300)  # time for anything that would run to run
    assert page.evaluate("() => window.stolen") is None and dialogs == []
    page.click("#reply")  # a reply from the browser, read over IMAP by its recipient
    expect(page.locator("input[name=subject]")).to_have_value("Re: hostile html")
    page.fill("input[name=to]", f"boss@{DOMAIN}")
    page.fill("textarea[name=body]", "网页回复 from the browser")
    page.set_input_files("input[name=attach]", files=[{"name": "报告.txt", "mimeType": "text/plain",
                                                       "buffer": "检修报告\n".encode()}])
    page.click("#compose button[type=submit]")
    expect(page.locator(".note.ok")).to_contain_text("邮件已发送")
    imap = imaplib.IMAP4_SSL("127.0.0.1", node.ports["imaps"], ssl_context=client_tls())
    try:
        imap.login(f"boss@{DOMAIN}", PASSWORD)
        imap.select("INBOX", readonly=True)
        _, found = imap.uid("SEARCH", "SUBJECT", "hostile")
        assert found[0], "the reply did not arrive"
        _, data = imap.uid("FETCH", found[0].split()[-1].decode(), "(BODY.PEEK[])")
        arrived = email.message_from_bytes(data[0][1], policy=email.policy.default)
        assert [a.get_filename() for a in arrived.iter_attachments()] == ["报告.txt"]
    finally:
        imap.logout()
    ctx.close()
    phone = browser.new_context(ignore_https_errors=True, locale="zh-CN", viewport={"width": 375, "height": 740})
    small = phone.new_page()
    small.goto(base(node) + "/")
    small.fill("input[name=address]", reader)
    small.fill("input[name=password]", PASSWORD)
    small.click("button[type=submit]")
    small.wait_for_url(re.compile(r"/mail$"))
    assert small.evaluate("() => document.documentElement.scrollWidth") <= 375 + 1, "wider than the phone"
    shot(small, "webmail-inbox-phone-zh_CN")
    phone.close()


def test_live_mail_a_chinese_folder_drag_and_drop_keys_a_timed_draft_and_search(node, browser):
    worker = node.add_user("worker", password=PASSWORD)
    send(node, worker, "Subject: =?utf-8?b?{}?=\r\n\r\n2 号机组检修安排\r\n".format(
        base64.b64encode("检修安排".encode()).decode()).encode())
    ctx = browser.new_context(ignore_https_errors=True, locale="zh-CN", viewport={"width": 1280, "height": 860})
    ctx.set_default_timeout(20_000)
    page = ctx.new_page()
    dialogs = no_dialogs(page)
    user_login(page, node, worker)
    expect(page.locator("#message-rows")).to_contain_text("检修安排")

    send(node, worker, b"Subject: arrives live\r\n\r\nno reload needed\r\n")  # the page hears of it
    expect(page.locator("#message-rows")).to_contain_text("arrives live", timeout=10_000)
    expect(page.locator("#folder-nav")).to_contain_text("2")  # two unread, counted again

    page.click("#manage-folders")
    page.fill("#create-folder input[name=new]", "检修")
    page.click("#create-folder button[type=submit]")
    expect(page.locator("#folder-table")).to_contain_text("检修")
    page.click("#folder-nav >> text=收件箱")
    page.drag_and_drop("#message-rows tr:has-text('检修安排')", "#folder-nav a[data-folder='检修']")
    expect(page.locator("#message-rows")).not_to_contain_text("检修安排")
    assert subjects(node, worker, "检修") == ["检修安排"]

    page.keyboard.press("j")  # the first message of the list: "arrives live"
    expect(page.locator("#message-rows tr.current")).to_contain_text("arrives live")
    page.keyboard.press("#")
    expect(page.locator("#message-rows")).not_to_contain_text("arrives live")
    assert subjects(node, worker, "Trash") == ["arrives live"]

    page.fill("input[name=q]", "检修")  # found in the folder it was moved to
    page.click("#folder-nav a[data-folder='检修']")
    page.fill("input[name=q]", "检修")
    page.click("#search button[type=submit]")
    expect(page.locator("#message-rows")).to_contain_text("检修安排")

    page.clock.install()  # from here the pages' timers (the draft's auto-save) run when the test says
    page.click("#write")
    page.fill("input[name=to]", f"boss@{DOMAIN}")
    page.fill("input[name=subject]", "周报 draft")
    page.fill("textarea[name=body]", "本周完成 2 号机组检修。")
    page.clock.run_for(31_000)  # the auto-save's turn
    expect(page.locator("#autosaved")).to_contain_text("草稿已保存")
    assert subjects(node, worker, "Drafts") == ["周报 draft"]
    page.click("#folder-nav >> text=草稿箱")
    page.click("#message-rows >> text=周报 draft")
    expect(page.locator("textarea[name=body]")).to_have_value("本周完成 2 号机组检修。")
    page.click("#compose button[type=submit]:text('发送')")
    expect(page.locator(".note.ok")).to_contain_text("邮件已发送")
    assert subjects(node, worker, "Drafts") == [] and subjects(node, f"boss@{DOMAIN}", "INBOX")[-1:] == ["周报 draft"]
    assert dialogs == []
    ctx.close()


def test_rich_text_and_address_completion_in_the_browser(node, browser):
    writer, reader = node.add_user("writer", password=PASSWORD), node.add_user("liming", password=PASSWORD)
    ctx = browser.new_context(ignore_https_errors=True, locale="zh-CN", viewport={"width": 1280, "height": 860})
    ctx.set_default_timeout(20_000)
    page = ctx.new_page()
    dialogs = no_dialogs(page)
    user_login(page, node, writer)
    page.click("#contacts-link")
    page.fill("#contact-form input[name=name]", "李明")
    page.fill("#contact-form input[name=email]", reader)
    page.click("#contact-form button[type=submit]")
    expect(page.locator("#contacts")).to_contain_text("李明")

    page.click("#write")
    page.locator("input[name=to]").press_sequentially("李", delay=50)  # typed: the list offers the contact
    expect(page.locator("#to-completions li").first).to_contain_text("李明")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator("input[name=to]")).to_have_value(f'"李明" <{reader}>, ')
    page.fill("input[name=subject]", "富文本 from the editor")
    page.click("[data-rich-toggle]")
    editor = page.locator("#editor")
    expect(editor).to_be_visible()
    editor.click()
    page.keyboard.type("普通 ")
    page.click("[data-command=bold]")
    page.keyboard.type("加粗")
    shot(page, "webmail-compose-zh_CN")
    page.click("#compose button[type=submit]:text('发送')")
    expect(page.locator(".note.ok")).to_contain_text("邮件已发送")
    imap = imap_of(node, reader)
    try:
        imap.select("INBOX", readonly=True)
        _, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
        got = email.message_from_bytes(data[0][1], policy=email.policy.default)
    finally:
        imap.logout()
    html = got.get_body(("html",)).get_content()
    assert re.search(r"<(b|strong)>加粗</(b|strong)>", html), html
    assert "普通 加粗" in got.get_body(("plain",)).get_content()
    assert dialogs == []
    ctx.close()
