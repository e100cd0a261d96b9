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
import time
from collections.abc import Iterator

import pytest
from browser_tools import base, chromium, no_dialogs, shot
from playwright.sync_api import Browser, BrowserContext, Page, expect

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


def logged_in(browser: Browser, node, address: str, locale: str) -> tuple[BrowserContext, Page, list[str]]:
    """A desktop-sized browser context logged in as ``address``, and the dialogs its page opens."""
    ctx = browser.new_context(ignore_https_errors=True, locale=locale, viewport={"width": 1280, "height": 860})
    ctx.set_default_timeout(20_000)
    page = ctx.new_page()
    dialogs = no_dialogs(page)
    user_login(page, node, address)
    return ctx, page, dialogs


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
    ctx, page, _dialogs = logged_in(browser, node, f"boss@{DOMAIN}", "zh-CN")  # and in the recipient's webmail
    page.click("#message-rows a:text-is('Re: hostile html')")
    expect(page.locator("#text")).to_contain_text("网页回复 from the browser")
    expect(page.locator("#attachments")).to_contain_text("报告.txt")
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
    ctx, page, dialogs = logged_in(browser, node, worker, "zh-CN")
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
    ctx, page, dialogs = logged_in(browser, node, writer, "zh-CN")
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


HOSTILE = {
    "script and handlers": ('text/html', '<p onmouseover="top.stolen=1">hi<script>top.stolen=2;alert(1)</script>'
                                         '<img src=x onerror="top.stolen=3;alert(3)"><body onload="alert(4)">'
                                         '<a href="javascript:top.stolen=4">js link</a></p>'),
    "svg and data links": ('text/html', '<svg><script>alert(5)</script><circle onload="alert(6)"/></svg>'
                                        '<a href="data:text/html,<script>alert(7)</script>">data link</a>'
                                        '<object data="data:text/html,x"></object><embed src="x.swf">'),
    "overlay css": ('text/html', '<style>.x{position:fixed;top:0;left:0;width:100vw;height:100vh;z-index:2147483647;'
                                 'background:red}</style><div class="x" style="position:absolute;top:-500px">'
                                 'fake login</div><p>text</p>'),
    "meta refresh and base": ('text/html', '<meta http-equiv="refresh" content="0;url=https://evil.example/">'
                                           '<base href="https://evil.example/"><form action="https://evil.example">'
                                           '<input name=pw></form><iframe src="https://evil.example"></iframe>'),
}


def test_a_corpus_of_hostile_mail_runs_nothing_and_nothing_escapes_the_frame(node, browser):
    victim = node.add_user("victim", password=PASSWORD)
    with smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=30) as s:
        for subject, (kind, body) in HOSTILE.items():
            s.sendmail("evil@evil.example", [victim], (f"From: evil@evil.example\r\nSubject: {subject}\r\n"
                                                       f"MIME-Version: 1.0\r\nContent-Type: {kind}; charset=utf-8\r\n\r\n"
                                                       f"{body}\r\n").encode())
        s.sendmail("evil@evil.example", [victim], (
            '"Boss\\r\\nBcc: all@plant.example <script>alert(8)</script>" <evil@evil.example>'.join(
                ["From: ", "\r\n"]) + "Subject: names and files\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee files\r\n'
            "--b\r\nContent-Type: image/svg+xml\r\nContent-Disposition: attachment; filename=\"../../pic.svg\"\r\n\r\n"
            "<svg xmlns='http://www.w3.org/2000/svg' onload='alert(9)'/>\r\n"
            "--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
            "filename*=UTF-8''report%E2%80%AEfdp.exe\r\n\r\nMZ\r\n").encode())
        s.sendmail("evil@evil.example", [victim], (  # malformed MIME: no end boundary, bad base64, deep nesting
            "From: evil@evil.example\r\nSubject: broken mime\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="x"\r\n\r\n' + "--x\r\nContent-Type: multipart/mixed; "
            'boundary="x"\r\n\r\n' * 60 + "--x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            "!!!not base64@@@\r\n").encode())
    ctx = browser.new_context(ignore_https_errors=True, locale="en-US", viewport={"width": 1280, "height": 860})
    ctx.set_default_timeout(20_000)
    page = ctx.new_page()
    dialogs = no_dialogs(page)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    user_login(page, node, victim)
    for subject in [*HOSTILE, "names and files", "broken mime"]:
        page.goto(base(node) + "/mail")
        page.click(f"#message-rows a:text-is('{subject}')")
        expect(page.locator("#subject")).to_have_text(subject)
        page.wait_for_timeout(300)  # time for anything that would run to run
        assert page.evaluate("() => window.stolen") is None, subject
        box = page.locator("#reply").bounding_box()
        hit = page.evaluate("([x, y]) => document.elementFromPoint(x, y).id", [box["x"] + box["width"] / 2,
                                                                              box["y"] + box["height"] / 2])
        assert hit == "reply", (subject, hit)  # nothing overlays the page's own controls
        frame = page.locator("#html")
        if frame.count():
            height = frame.bounding_box()["height"]
            assert height < 2000, subject  # the frame stays a box in the page
    assert dialogs == [] and not [u for u in requests if "evil.example" in u or u.startswith("data:text/html")]
    page.goto(base(node) + "/mail")
    page.click("#message-rows a:text-is('names and files')")
    header = page.locator("#header").inner_text()
    assert "<script>" in header and "Bcc:" in header.replace("\n", " ")  # shown as text, one field
    files = page.locator("#attachments").inner_text()
    assert "pic.svg" in files and "../" not in files and "\u202e" not in files
    assert page.locator("#attachments img.preview").count() == 0  # an SVG is never previewed
    ctx.close()


def test_vacation_and_a_filter_set_in_the_browser_and_every_page_fits_a_phone(node, browser):
    """In English this time: a vacation and a filter set on the settings page; a colleague writes twice and
    gets one reply; the filtered message is in its folder, the other in the inbox; a forward; each page at
    375 px without sideways scrolling (screenshots)."""
    away, colleague = node.add_user("away", password=PASSWORD), node.add_user("colleague", password=PASSWORD)
    ctx, page, dialogs = logged_in(browser, node, away, "en-US")
    expect(page.locator("#folder-nav")).to_contain_text("Inbox")
    page.click("#settings")
    page.check("#rules input[name=vacation]")
    page.fill("#rules input[name=vacation_subject]", "Away until Monday")
    page.fill("#rules textarea[name=vacation_text]", "I am away; 我下周一回来。")
    row = page.locator("#filters tbody tr").first
    row.locator("select[name=filter_field]").select_option("subject")
    row.locator("input[name=filter_value]").fill("检修")
    row.locator("select[name=filter_action]").select_option("fileinto")
    row.locator("input[name=filter_folder]").fill("Maintenance")
    page.click("#rules button[type=submit]")
    expect(page.locator(".note.ok")).to_contain_text("The settings were saved.")
    expect(page.locator("#rules textarea[name=vacation_text]")).to_have_value("I am away; 我下周一回来。")
    for subject in ("检修 plan", "lunch?"):
        send(node, away, f"From: {colleague}\r\nTo: {away}\r\nSubject: {subject}\r\n\r\nhi\r\n".encode(),
             sender=colleague)
    deadline = time.monotonic() + 30
    while not subjects(node, colleague, "INBOX") and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # a second reply, if there were one, would be here by now
    assert subjects(node, colleague, "INBOX") == ["Away until Monday"]
    page.click("#folder-nav >> text=Inbox")
    expect(page.locator("#message-rows")).to_contain_text("lunch?")
    expect(page.locator("#folder-nav")).to_contain_text("Maintenance")
    page.click("#folder-nav a[data-folder='Maintenance']")
    expect(page.locator("#message-rows")).to_contain_text("检修 plan")
    page.click("#message-rows a:text-is('检修 plan')")
    page.click("#forward")
    expect(page.locator("textarea[name=body]")).to_contain_text("Forwarded message")
    page.fill("input[name=to]", colleague)
    page.click("#compose button[type=submit]:text('Send')")
    expect(page.locator(".note.ok")).to_contain_text("The message was sent")
    assert "Fwd: 检修 plan" in subjects(node, colleague, "INBOX")
    assert dialogs == []
    ctx.close()

    phone = browser.new_context(ignore_https_errors=True, locale="zh-CN", viewport={"width": 375, "height": 740})
    small = phone.new_page()
    user_login(small, node, away)
    for path, name in (("/mail", "inbox"), ("/mail/compose", "compose"), ("/mail/settings", "settings"),
                       ("/mail/contacts", "contacts"), ("/mail/folders", "folders")):
        small.goto(base(node) + path)
        width = small.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 376, (path, width)
        if name in ("compose", "settings"):
            shot(small, f"webmail-{name}-phone-zh_CN")
    phone.close()
