"""The one error an API call ends in: an HTTP status and a one-line message.

It is sent as ``{"error": "<message>"}``.
"""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = " ".join(message.split())
