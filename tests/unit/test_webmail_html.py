"""How webmail cleans HTML mail (issue #13): a newsletter keeps its look (its CSS inlined, then filtered to
properties that cannot overlay anything), its own inline images become data: URLs, nothing else runs or
loads; a hostile amount of CSS is dropped rather than matched; pictures from elsewhere are noticed."""

from __future__ import annotations

import base64

from dizimail.services.webmail import INLINE_BUDGET, _render, clean_html, image_type

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def test_a_newsletters_css_is_inlined_and_filtered_to_what_cannot_overlay():
    markup = ('<html><head><link rel="stylesheet" href="https://evil.example/x.css"><style>'
              ".title { color: #c00; font-weight: bold; position: fixed; top: 0; z-index: 99999 }"
              "p { margin: 4px; background: url(https://tracker.example/p.gif) }</style></head>"
              '<body><h1 class="title">检修通知</h1><p style="behavior: url(x.htc); color: blue">text</p></body></html>')
    out = clean_html(markup)
    assert "color:#c00" in out.replace(" ", "") and "font-weight:bold" in out.replace(" ", "")
    for gone in ("position", "z-index", "top:", "<style", "<link", "evil.example", "behavior", "tracker.example"):
        assert gone not in out, gone
    assert "检修通知" in out and "color:blue" in out.replace(" ", "")


def test_links_keep_only_web_and_mail_schemes_and_cid_images_become_data_urls():
    images = {"logo@x": "data:image/png;base64," + base64.b64encode(PNG).decode()}
    out = clean_html('<img src="cid:logo@x"><img src="cid:missing@x"><a href="cid:logo@x">c</a>'
                     '<a href="data:text/html,<script>alert(1)</script>">d</a><a href="javascript:alert(1)">j</a>'
                     '<a href="https://ok.example/">ok</a><img src="data:image/svg+xml,<svg onload=alert(1)>">', images)
    assert out.count("data:image/png;base64,") == 1 and "svg" not in out and "javascript" not in out
    assert 'href="https://ok.example/"' in out and "data:text/html" not in out and "cid:" not in out


def test_too_much_css_for_the_elements_is_dropped_not_matched():
    css = "".join(f"* * * * * * :not(.a{i}) {{ color: red }}\n" for i in range(3000))
    body = "<div>" * 100 + "<span>x</span>" * 20_000 + "</div>" * 100
    assert len(css) * (body.count("<") + 4) > INLINE_BUDGET
    out = clean_html(f"<html><head><style>{css}</style></head><body>{body}</body></html>")
    assert "style=" not in out and out.count("<span>x</span>") == 20_000


def test_inline_images_are_recognised_by_their_bytes_and_remote_pictures_are_noticed():
    assert image_type(PNG) == "image/png" and image_type(b"<svg onload=alert(1)>") is None
    assert image_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp" and image_type(b"RIFF\x00\x00\x00\x00WAVE") is None
    raw = (b"From: a@example.org\r\nSubject: news\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/related; boundary="r"\r\n\r\n--r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n'
           b'<p><img src="cid:logo"><img src="https://tracker.example/p.gif"></p>\r\n'
           b"--r\r\nContent-Type: image/png\r\nContent-ID: <logo>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.encodebytes(PNG) + b"--r\r\nContent-Type: image/png\r\nContent-ID: <fake>\r\n\r\n<svg/>\r\n--r--\r\n")
    _head, _text, html, attachments = _render(raw)
    assert html is not None and "data:image/png;base64," in html and "https://tracker.example/p.gif" in html
    assert len(attachments) == 2  # the inline images are listed too (each can be saved)
