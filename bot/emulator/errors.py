"""Errors raised by the emulator, shaped like the Bot API's own."""

from typing import Any


class ApiError(Exception):
    """A Bot API error answered as `{"ok": false, "error_code": ..., "description": ...}`."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        """The JSON body Telegram answers with for this error."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(detail: str) -> ApiError:
    """A 400 error with Telegram's `Bad Request: ` prefix."""
    return ApiError(400, f"Bad Request: {detail}")


def forbidden(detail: str) -> ApiError:
    """A 403 error with Telegram's `Forbidden: ` prefix."""
    return ApiError(403, f"Forbidden: {detail}")


def too_many_requests(retry_after: int) -> ApiError:
    """A 429 error carrying `parameters.retry_after`."""
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)


def not_found() -> ApiError:
    """The 404 Telegram answers for unknown methods and malformed tokens."""
    return ApiError(404, "Not Found")


class ControlError(Exception):
    """A rejected control-API request (a mistake in the test, not a Bot API error)."""

    def __init__(self, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.description = description
        self.status = status
