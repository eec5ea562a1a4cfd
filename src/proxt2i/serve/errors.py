"""The API's error: an HTTP status, one line of message and an OpenAI-style type."""

from __future__ import annotations


class ApiError(Exception):
    """Answered as {"error": {"message": MESSAGE, "type": KIND}} with `status`; message is one line."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.headers = status, one_line(message), kind, headers or {}


def one_line(text: str, limit: int = 300) -> str:
    """Whitespace (newlines included) folded to single spaces and the line bounded, so no error ever spans lines."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_body(message: str, kind: str) -> dict:
    return {"error": {"message": one_line(message), "type": kind}}
