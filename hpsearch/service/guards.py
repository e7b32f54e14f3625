"""What every HTTP request passes before the API sees it: the token, then the body's limits.

ASGI middleware: the token check (:class:`TokenCheck`), then the body's limits
(:class:`BodyLimits`). Each refusal is ``{"error": "<one line>"}`` with a 4xx status, as
every error of the API.
"""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from starlette.responses import Response

from hpsearch.service.limits import MAX_BODY_BYTES, MAX_DEPTH, MAX_FAILURE_CHARS, too_deep


def error_response(status: int, message: str) -> Response:
    """``{"error": message}`` with ``status`` (also an ASGI app: it sends itself)."""
    return Response(orjson.dumps({"error": message}), status, media_type="application/json")


class TokenCheck:
    """Every HTTP request must carry ``Authorization: Bearer <token>`` (else 401)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                reply = error_response(401, "this service needs a token: send the header "
                                       "'Authorization: Bearer <token>' (Client(url, "
                                       "token_file=...), or HPSEARCH_TOKEN=<token>)")
                await reply(scope, receive, send)
                return
        await self.app(scope, receive, send)


_TOO_LARGE = (f"the body is larger than {MAX_BODY_BYTES} bytes, the most this service takes: "
              f"send less (a failure message is kept to {MAX_FAILURE_CHARS} characters)")
_TOO_DEEP = (f"the body nests arrays and objects more than {MAX_DEPTH} deep: send a flatter "
             "body")


async def drain(receive: Any) -> None:
    """Read the rest of a request's body and drop it: a client sends a body whole before it
    reads the answer (``http.client``, ``urllib``), and a connection closed under it would
    lose the answer."""
    more = True
    while more:
        message = await receive()
        more = message["type"] != "http.disconnect" and message.get("more_body", False)


class BodyLimits:
    """The app gets a request's body whole, once it passed the limits of
    :mod:`~hpsearch.service.limits`: a body over :data:`MAX_BODY_BYTES` (its
    ``Content-Length``, or what came of a body sent in chunks) is refused (413) and dropped,
    never kept whole; a nesting deeper than :data:`MAX_DEPTH` (``[[[[...``: a parser's
    recursion) is refused (400) before anything parses it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            await drain(receive)
            await error_response(413, _TOO_LARGE)(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY_BYTES:
                if more:
                    await drain(receive)
                await error_response(413, _TOO_LARGE)(scope, receive, send)
                return
        if too_deep(body):
            await error_response(400, _TOO_DEEP)(scope, receive, send)
            return
        whole: dict[str, Any] | None = {"type": "http.request", "body": bytes(body),
                                        "more_body": False}

        async def replay() -> Any:
            """The body once, then what the server says (a disconnect)."""
            nonlocal whole
            if whole is None:
                return await receive()
            message, whole = whole, None
            return message

        await self.app(scope, replay, send)
