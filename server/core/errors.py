"""The one error type the server raises for a request it refuses."""

from __future__ import annotations


class BadInput(ValueError):
    """A user's input is refused; ``status`` is the HTTP status to answer with (4xx, or 503
    when a service the request needs is unreachable or the server is overloaded). The message is
    one line for the client; ``retry_after``: seconds the client should wait (``Retry-After``)."""

    def __init__(self, message: str, status: int = 422, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
