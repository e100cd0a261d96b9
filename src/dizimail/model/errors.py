"""The neutral error tree shared by services and every front-end."""

from __future__ import annotations


class MailError(Exception):
    """A failure with enough structure for any protocol to report it.

    ``code`` and ``enhanced`` follow RFC 5321 / RFC 3463 (other front-ends map
    them); ``public_key`` names the translated text a client sees; ``detail``
    goes to the log only.
    """

    def __init__(self, temporary: bool, code: int, enhanced: str, public_key: str, detail: str = "") -> None:
        super().__init__(detail or public_key)
        self.temporary = temporary
        self.code = code
        self.enhanced = enhanced
        self.public_key = public_key
        self.detail = detail


class NotFound(MailError):
    def __init__(self, public_key: str, detail: str = "") -> None:
        super().__init__(False, 550, "5.1.1", public_key, detail)


class Conflict(MailError):
    def __init__(self, public_key: str, detail: str = "") -> None:
        super().__init__(False, 550, "5.0.0", public_key, detail)


class InvalidInput(MailError):
    def __init__(self, public_key: str, detail: str = "") -> None:
        super().__init__(False, 501, "5.5.4", public_key, detail)


class QuotaExceeded(MailError):
    def __init__(self, detail: str = "") -> None:
        super().__init__(True, 452, "4.2.2", "quota_exceeded", detail)


class TemporaryFailure(MailError):
    def __init__(self, detail: str = "") -> None:
        super().__init__(True, 451, "4.3.0", "temporary_failure", detail)


class AuthFailed(MailError):
    def __init__(self, detail: str = "") -> None:
        super().__init__(False, 535, "5.7.8", "auth_failed", detail)


class LockedOut(MailError):
    def __init__(self, detail: str = "") -> None:
        super().__init__(True, 421, "4.7.0", "locked_out", detail)


class PreconditionFailed(MailError):
    """A conditional write found its condition false (e.g. a limit the caller set) and wrote nothing;
    the service that set the condition says what it means to the user."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(False, 550, "5.0.0", "precondition_failed", detail)
