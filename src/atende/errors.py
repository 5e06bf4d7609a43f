"""Domain errors, mapped to HTTP responses in one place (``atende.app``).

Each carries a message that says what was wrong and how to fix it.
"""

from __future__ import annotations


class AtendeError(Exception):
    """Base of every error a user can cause."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field  # the request field at fault, when there is one


class NotFound(AtendeError):
    status_code = 404
    code = "not_found"


class Conflict(AtendeError):
    status_code = 409
    code = "conflict"


class InvalidInput(AtendeError):
    status_code = 422
    code = "invalid_input"


class OutsideReplyWindow(AtendeError):
    """A free-form reply the conversation's channel would refuse: the customer's last message
    is older than the channel's customer-service window (WhatsApp: 24 hours); only an approved
    template may go out now."""

    status_code = 409
    code = "outside_reply_window"


class Unauthorized(AtendeError):
    status_code = 401
    code = "unauthorized"


class Forbidden(AtendeError):
    status_code = 403
    code = "forbidden"


class RateLimited(AtendeError):
    """Too many requests of one kind from one visitor, address or site; ``retry_after``: whole
    seconds until one more is accepted (the ``Retry-After`` header and ``retry_after`` field)."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DatabaseUnavailable(AtendeError):
    """The database cannot be reached or started (the embedded server's folder is unusable)."""

    status_code = 503
    code = "database_unavailable"


# the ``code`` of an HTTP error that no AtendeError raised (the framework's routing, body
# parsing and size limit; a channel webhook's own refusals)
HTTP_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    503: "unavailable",
}
