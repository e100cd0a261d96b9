"""Browser sessions of the pages (issue #11): the cookie, CSRF tokens, the caller's language.

- The session cookie ``__Host-dzm`` carries a web session's secret (services.weblogin): Secure, HttpOnly,
  SameSite=Strict, Path=/, no Domain (the ``__Host-`` prefix makes browsers insist on all of it). A new
  session is made at every login and the one the browser brought is ended: a session fixed by
  somebody else before the login is never the one logged in (session fixation).
- Every form that changes something carries a CSRF token: an HMAC of the session secret, which a page
  of another site can neither read nor compute. The login form, which has no session yet, carries a
  random token that must match its own cookie (double submit). Requests whose Origin is another site
  are refused as well.
- The language: the ``lang`` cookie (set by the switch on every page, kept a year), else the browser's
  Accept-Language; zh_CN or en."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "__Host-dzm"
LOGIN_COOKIE = "__Host-dzm-login"  # the login form's double-submit token
LANG_COOKIE = "lang"
LANGUAGES = ("zh_CN", "en")
YEAR = 365 * 86400


def language(request: Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    accepted = request.headers.get("accept-language", "")[:200].lower()
    return "zh_CN" if accepted.split(",")[0].strip().startswith("zh") else "en"


def session_secret(request: Request) -> str:
    return request.cookies.get(SESSION_COOKIE, "")[:200]


def csrf_for(secret: str) -> str:
    return hmac.new(secret.encode(), b"dizimail csrf", hashlib.sha256).hexdigest()


def csrf_ok(request: Request, sent: str, secret: str) -> bool:
    """The form's token matches the session (or, at login, the login cookie), and the request does not come
    from another site."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null" and origin != f"https://{request.headers.get('host', '')}":
        return False
    if not sent or not secret:
        return False
    return hmac.compare_digest(sent, csrf_for(secret))


def login_token(request: Request) -> str:
    """The login form's token: the one in its cookie, or a new one (set by set_login_cookie)."""
    return request.cookies.get(LOGIN_COOKIE, "")[:100] or secrets.token_urlsafe(24)


def set_cookie(response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="strict")


def set_session(response: Response, secret: str, lifetime: float) -> None:
    set_cookie(response, SESSION_COOKIE, secret, int(lifetime))
    response.delete_cookie(LOGIN_COOKIE, path="/", secure=True, httponly=True, samesite="strict")


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")


def safe_next(target: str, default: str) -> str:
    """A local path to go back to (never another site: ``//evil`` or ``/\\evil`` are not local)."""
    if target.startswith("/") and not target.startswith(("//", "/\\")) and len(target) < 500 and "\r" not in target \
            and "\n" not in target:
        return target
    return default
