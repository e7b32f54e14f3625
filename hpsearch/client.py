"""Public: the client of ``hpsearch serve`` in iDDS's shape, :class:`Client`, stdlib only.

``http.client``: one kept-alive connection per client, opened again when the service
closed it.

::

    from hpsearch.client import Client, ClientError

    c = Client("http://127.0.0.1:8787", token_file="out/svc/service.token")
    rid = c.create_request({"parameters": {"lr": {"method": "loguniform", "low": 1e-5,
                                                  "high": 0.1}}, "algorithm": "tpe"},
                           max_points=50, num_points_per_generation=8)
    for point in c.get_points(rid, status="new", limit=1):   # leased to this process
        c.update_point(rid, point["id"], train(**point["params"]))
    c.status(rid)["best"]

The token (every request sends it) is ``token``, else the first line of ``token_file``,
else the environment variable ``HPSEARCH_TOKEN``; a service started with ``--no_token`` needs
none. The search the service was started with is request 1. Each point is a dict with ``id``,
``params``, ``status`` (``new``, ``running``, ``finished``, ``failed``), ``loss`` and
``run_id``. Every error the service answers (and a service that cannot be reached) raises
:class:`ClientError` carrying the service's one-line message and the HTTP status.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import urllib.parse
from typing import Any

from hpsearch.engine.tokens import TOKEN_VARIABLE

__all__ = ["Client", "ClientError", "token_of"]


class ClientError(Exception):
    """The service refused a call: ``message`` is its one line, ``status`` its HTTP status
    (0: no answer); ``str()`` adds the call, e.g. ``PUT /requests/1/points/7: 409 ...``."""

    def __init__(self, call: str, message: str, status: int = 0) -> None:
        super().__init__(f"{call}: {status} {message}" if status else f"{call}: {message}")
        self.message = message
        self.status = status


def token_of(token: str | None, token_file: str | os.PathLike[str] | None) -> str | None:
    """``token``, else the one in ``token_file``, else ``$HPSEARCH_TOKEN`` (None: none)."""
    if token is None and token_file is not None:
        try:
            with open(token_file) as f:
                token = f.readline().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ClientError("Client", f"cannot read the token file {token_file} ({exc})"
                              ) from None
    return token if token is not None else os.environ.get(TOKEN_VARIABLE) or None


class Client:
    """Talks to one service; the token (:func:`token_of`) is sent as ``Authorization:
    Bearer <token>``."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0,
                 worker: str | None = None,
                 token_file: str | os.PathLike[str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientError("Client", f"{url!r} is not an http:// or https:// URL")
        self._https = parts.scheme == "https"
        self._host, self._port, self._prefix = parts.hostname, parts.port, parts.path
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()  # one call at a time on the kept connection
        self._headers = {"Accept": "application/json",
                         "X-Hpsearch-Worker": worker or f"{socket.gethostname()}:{os.getpid()}"}
        token = token_of(token, token_file)
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"

    # -- iDDS's calls -----------------------------------------------------------------
    def create_request(self, search: dict[str, Any], max_points: int | None = None,
                       num_points_per_generation: int | None = None) -> int:
        """A new search from a search file's settings; returns its request id."""
        body = {"search": search, "max_points": max_points,
                "num_points_per_generation": num_points_per_generation}
        return int(self._call("POST", "/requests", body)["request_id"])

    def get_points(self, request_id: int, status: str | None = None,
                   limit: int | None = None) -> list[dict[str, Any]]:
        """Points by status; ``status="new"`` hands new points out to this caller."""
        query = {k: v for k, v in (("status", status), ("limit", limit)) if v is not None}
        path = f"/requests/{int(request_id)}/points"
        if query:
            path += "?" + urllib.parse.urlencode(query)
        return list(self._call("GET", path))

    def update_point(self, request_id: int, point_id: int, loss: Any) -> dict[str, Any]:
        """Report a point: ``loss`` is a number, or a dict ``{"metrics": {...}}`` /
        ``{"failure": "why"}`` for the other two kinds of report."""
        body = loss if isinstance(loss, dict) else {"loss": loss}
        return dict(self._call("PUT", f"/requests/{int(request_id)}/points/{int(point_id)}",
                               body))

    # -- ours -------------------------------------------------------------------------
    def status(self, request_id: int) -> dict[str, Any]:
        """Counts by status, the best point, ``max_points_reached``, ``done``, ..."""
        return dict(self._call("GET", f"/requests/{int(request_id)}"))

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        call = f"{method} {path}"
        with self._lock:
            for again in (True, False):
                reused = self._conn is not None
                try:
                    status, text = self._send(method, path, data, headers)
                    break
                except (http.client.HTTPException, OSError) as exc:
                    self.close()
                    if not (again and reused):  # a kept connection the service closed
                        raise ClientError(call, f"cannot reach {self.url} ({exc})") from None
        if status >= 400:
            try:
                message = json.loads(text)["error"]
            except (ValueError, KeyError, TypeError):
                message = text.strip() or "no message"
            raise ClientError(call, str(message), status)
        return json.loads(text)

    def _send(self, method: str, path: str, data: bytes | None, headers: dict[str, str]
              ) -> tuple[int, str]:
        if self._conn is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = kind(self._host, self._port, timeout=self.timeout)
            self._conn.connect()
            # small requests back to back: Nagle's algorithm would hold each one for the
            # service's delayed ACK (40 ms on Linux)
            self._conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._conn.request(method, self._prefix + path, body=data, headers=headers)
        answer = self._conn.getresponse()
        return answer.status, answer.read().decode(errors="replace")

    def close(self) -> None:
        """Close the kept connection (the next call opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
