"""A browser-like HTTP client for the web pages (issue #11): cookies kept as a browser keeps them, forms
posted with the CSRF token of the page they came from, redirects followed or not."""

from __future__ import annotations

import html
import http.cookiejar
import re
import smtplib
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from conftest import client_tls

CSRF = re.compile(r'name="csrf" value="([^"]*)"')


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Page:
    def __init__(self, status: int, url: str, headers: dict[str, str], body: bytes) -> None:
        self.status, self.url, self.headers, self.body = status, url, headers, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def csrf(self) -> str:
        found = CSRF.search(self.text)
        assert found, f"no form with a CSRF token on {self.url}"
        return found[1]


class WebClient:
    def __init__(self, server: Any, lang: str = "en", follow: bool = True) -> None:
        self.base = f"https://127.0.0.1:{server.ports['https']}"
        self.jar = http.cookiejar.CookieJar()
        handlers: list[Any] = [urllib.request.HTTPSHandler(context=client_tls()),
                               urllib.request.HTTPCookieProcessor(self.jar)]
        if not follow:
            handlers.append(NoRedirect())
        self.opener = urllib.request.build_opener(*handlers)
        self.lang = lang

    def request(self, method: str, path: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> Page:
        url = self.base + urllib.parse.quote(path, safe="/:@?&=%")
        req = urllib.request.Request(url, data=data, method=method, headers={"Accept-Language": self.lang,
                                                                               **(headers or {})})
        try:
            with self.opener.open(req, timeout=30) as response:
                return Page(response.status, response.geturl(), {k.lower(): v for k, v in response.headers.items()},
                            response.read())
        except urllib.error.HTTPError as exc:
            return Page(exc.code, url, {k.lower(): v for k, v in exc.headers.items()}, exc.read())

    def get(self, path: str) -> Page:
        return self.request("GET", path)

    def post(self, path: str, fields: dict[str, str], headers: dict[str, str] | None = None) -> Page:
        return self.request("POST", path, urllib.parse.urlencode(fields).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})

    def submit(self, page_path: str, action: str, fields: dict[str, str]) -> Page:
        """Post a form of ``page_path`` (its CSRF token read from the page, as a browser sends it)."""
        return self.post(action, {"csrf": self.get(page_path).csrf, **fields})

    def login(self, address: str, password: str, *, admin: bool = True, code: str = "") -> Page:
        path = "/admin/login" if admin else "/"
        return self.post(path, {"csrf": self.get(path).csrf, "address": address, "password": password, "code": code,
                                "next": ""})

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def cookie_object(self, name: str) -> Any:
        return next((c for c in self.jar if c.name == name), None)

    def set_cookie(self, name: str, value: str) -> None:
        self.jar.set_cookie(http.cookiejar.Cookie(0, name, value, None, False, "127.0.0.1", False, False, "/", True,
                                                  True, None, False, None, None, {}))


def uid_of(text: str, subject: str) -> int:
    """The UID in the link of the message listed with ``subject``."""
    found = re.search(r'uid=(\d+)">' + re.escape(html.escape(subject, quote=False)) + "<", text)
    assert found, subject
    return int(found[1])


def deliver(server: Any, to: str, data: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        s.sendmail("sender@outside.example", [to], data)


def compose_form(web: WebClient, path: str = "/mail/compose") -> dict[str, str]:
    page = web.get(path)
    assert page.status == 200, page.text[:300]
    fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', page.text))
    fields.update(re.findall(r'<input name="(to|cc|bcc|subject)" value="([^"]*)"', page.text))
    body = re.search(r'<textarea name="body"[^>]*>(.*?)</textarea>', page.text, re.S)
    fields["body"] = html.unescape(body[1]) if body else ""
    return {k: html.unescape(v) for k, v in fields.items()}


def multipart(fields: dict[str, str] | list[tuple[str, str]], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body as a browser sends the compose form (RFC 7578)."""
    boundary = "----dizimailtest7MA4YWxkTrZu0gW"
    out = b""
    for name, value in (fields.items() if isinstance(fields, dict) else fields):
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").encode()
    for filename, kind, data in files:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"attach\"; filename=\"{filename}\"\r\n"
                f"Content-Type: {kind}\r\n\r\n").encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"
