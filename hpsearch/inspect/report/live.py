"""``hpsearch report OUT_DIR --serve``: the report over HTTP, updating while the search runs.

The same page as the static report (:func:`hpsearch.inspect.report.page.render`), with one
more element, ``#hpsearch-live``, that makes the page's script poll ``data.json`` every
:data:`POLL_MS` and draw the sections again when the search changed. Two GET paths, nothing
else (a request writes nothing and runs nothing):

* ``/``: the page, its data embedded as in the static report;
* ``/data.json``: ``{"version", "summary", "failures", "data"}`` -- the two text sections'
  HTML and the plots' data; ``/data.json?since=V`` answers 204 (no body) while ``V`` is
  still the current version.

Every request needs the token (``Authorization: Bearer <token>``, or ``?token=`` in the URL, which
is how the printed URL opens the page; the page's script sends the header); without it, 403 and
nothing else. The token (:mod:`hpsearch.engine.tokens`) is the live report's own, kept in
``OUT_DIR/report.token`` (:data:`hpsearch.engine.tokens.REPORT_TOKEN_FILE`), not the service's:
reading a report does not let anyone report losses.

The search is read again only when it changed (:func:`watched`: the journal, and the
directories and curve files of the runs that were active at the last read: a few ``stat``
calls however big the search is), and then not sooner than
:data:`BUILD_SHARE` allows: a search that takes ``s`` seconds to read is read again at most
every ``s / BUILD_SHARE`` seconds. A read that fails keeps the last data (said once on
stderr). SIGINT/SIGTERM end it; the exit status is 128 + the signal's number, as for
``hpsearch serve``.
"""

from __future__ import annotations

import functools
import json
import secrets
import signal
import socket
import socketserver
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hpsearch.engine.journal import JOURNAL_FILE
from hpsearch.engine.stopsignal import stop_signals
from hpsearch.engine.tokens import REPORT_TOKEN_FILE, given_token, kept_token
from hpsearch.errors import UsageError
from hpsearch.inspect.report import data, page, sections
from hpsearch.inspect.view import load_view
from hpsearch.runs.curves import DRIVER_CURVE_FILE
from hpsearch.runs.files import SIM_OUT_DIR
from hpsearch.runs.reporter import REPORT_FILE

#: how often the page asks whether the search changed (milliseconds)
POLL_MS = 2000
#: the share of one CPU that reading the search again may take at most
BUILD_SHARE = 0.25
#: seconds before a read that failed is tried again (the directory unchanged)
RETRY_S = 10.0
#: run states whose curve files may still grow
ACTIVE = ("running", "launching")
#: response headers of every answer: nothing cached (the URL holds the token), nothing
#: loaded from elsewhere, no frame around the page, no referrer
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # plotly's WebGL plots (parallel coordinates, big scatters) compile their code: eval
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
                               "style-src 'unsafe-inline'; img-src data: blob:; "
                               "connect-src 'self'; frame-ancestors 'none'",
}


@dataclass(frozen=True)
class Listen:
    """Where and for whom: ``--host``, ``--port``, ``--token-file``, ``--no_token``."""

    host: str
    port: int
    token_file: Path | None
    no_token: bool


@dataclass(frozen=True)
class Snapshot:
    """One read of the search: its version and what the page shows."""

    version: str
    title: str
    summary: str
    failures: str
    data: dict[str, Any]
    active: tuple[Path, ...]  # the run directories whose curves may still grow

    @functools.cached_property
    def payload(self) -> bytes:
        """``data.json``'s body (made once: every page that polls gets the same)."""
        return json.dumps({"version": self.version, "summary": self.summary,
                           "failures": self.failures, "data": self.data},
                          separators=(",", ":"), allow_nan=False).encode()

    def page(self) -> bytes:
        """The page, this snapshot embedded, polling for the next one."""
        live = {"version": self.version, "data": "data.json", "every_ms": POLL_MS}
        return page.render(self.title, self.summary, self.failures, self.data,
                           live).encode()


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


def watched(out_dir: Path, active: tuple[Path, ...]) -> list[Path]:
    """What changes when the report would: the journal (a hypnettorch search has none: the
    directory, where its run folders appear), and the runs that were active: their
    directories (``exit_code`` appears there, the summary in ``out/``; also when the driver
    died) and their curves. Not the search directory of a search with a journal: the
    driver's lock changes it every few seconds."""
    journal = out_dir / JOURNAL_FILE
    runs = [run_dir / name for run_dir in active
            for name in ("", SIM_OUT_DIR, f"{SIM_OUT_DIR}/{REPORT_FILE}", DRIVER_CURVE_FILE)]
    return [journal if journal.exists() else out_dir, *runs]


def signature(paths: list[Path]) -> tuple[Any, ...]:
    return tuple(_stat(p) for p in paths)


class LiveReport:
    """The report of one search directory, read again when it changed (thread-safe)."""

    def __init__(self, out_dir: Path, grid_module: str | None,
                 say: Callable[[str], None]) -> None:
        self.out_dir = out_dir
        self.grid_module = grid_module
        self.say = say
        self._lock = threading.Lock()
        self._prefix = secrets.token_hex(4)  # a restarted server's versions are new ones
        self._count = 0
        self._seen: tuple[Any, ...] | None = None
        self._next_read = 0.0
        self._failed: str | None = None
        self._snapshot = self._read(())  # a directory without a search: UsageError, here

    def _read(self, was_active: tuple[Path, ...]) -> Snapshot:
        """Read the search; what it watches is stat'ed before (a change while it reads is
        seen at the next check), the curves of runs that became active just after."""
        started = time.monotonic()
        before = dict.fromkeys(watched(self.out_dir, was_active))
        before.update(zip(before, signature(list(before)), strict=True))
        view = load_view(self.out_dir, self.grid_module)
        active = tuple(r.run_dir for r in view.runs if r.state.status in ACTIVE)
        paths = watched(self.out_dir, active)
        self._seen = tuple(before[p] if p in before else _stat(p) for p in paths)
        snapshot = Snapshot(f"{self._prefix}-{self._count}",
                            f"hpsearch report: {self.out_dir.name}", sections.summary(view),
                            sections.failures(view), data.build(view), active)
        self._count += 1
        took = time.monotonic() - started
        self._next_read = time.monotonic() + took / BUILD_SHARE - took
        return snapshot

    def current(self) -> Snapshot:
        """The latest read of the search, read again first when it changed."""
        with self._lock:
            if (time.monotonic() >= self._next_read
                    and signature(watched(self.out_dir, self._snapshot.active)) != self._seen):
                try:
                    self._snapshot = self._read(self._snapshot.active)
                    self._failed = None
                except Exception as exc:  # noqa: BLE001 -- a viewer outlives a bad read
                    self._next_read = time.monotonic() + RETRY_S
                    text = f"{type(exc).__name__}: {exc}"
                    if text != self._failed:
                        self.say(f"warning: cannot read {self.out_dir} again ({text}); the "
                                 f"page shows what was read before; trying again in "
                                 f"{RETRY_S:g} s")
                    self._failed = text
            return self._snapshot


def _token_of(handler: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> str | None:
    header = handler.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer "):].strip()
    return (query.get("token") or [None])[0]


def make_handler(live: LiveReport) -> type[BaseHTTPRequestHandler]:
    """The request handler: GET ``/`` and ``/data.json`` with the server's token, nothing
    else."""

    class Handler(BaseHTTPRequestHandler):
        server: ReportServer
        server_version = "hpsearch-report"
        sys_version = ""

        def do_GET(self) -> None:  # noqa: N802 -- http.server's name
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            token, given = self.server.token, _token_of(self, query)
            if token is not None and (given is None or not secrets.compare_digest(
                    given.encode(), token.encode())):
                self._answer(HTTPStatus.FORBIDDEN, b"403: this report needs its token: open "
                             b"the URL hpsearch report --serve printed\n", "text/plain")
                return
            if url.path == "/":
                self._answer(HTTPStatus.OK, live.current().page(), "text/html")
            elif url.path == "/data.json":
                snapshot = live.current()
                if query.get("since") == [snapshot.version]:
                    self._answer(HTTPStatus.NO_CONTENT, b"", None)
                else:
                    self._answer(HTTPStatus.OK, snapshot.payload, "application/json")
            else:
                self._answer(HTTPStatus.NOT_FOUND, b"404: the report has / and /data.json\n",
                             "text/plain")

        def _answer(self, status: HTTPStatus, body: bytes, kind: str | None) -> None:
            self.send_response(status)
            for name, value in HEADERS.items():
                self.send_header(name, value)
            if kind is not None:
                self.send_header("Content-Type", f"{kind}; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Quiet: a page polling every 2 s would fill the terminal."""

    return Handler


class ReportServer(ThreadingHTTPServer):
    """The listening socket and its threads; ``token`` is set before it serves (None:
    ``--no_token``)."""

    daemon_threads = True
    token: str | None = None

    def server_bind(self) -> None:
        """Bind, without http.server's reverse DNS lookup of the address (slow where the
        name service is)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser that went away mid-answer is nothing to say; any other failure of a
        request is said in one line (socketserver would print a traceback)."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError):
            say(f"warning: a request from {client_address[0]} failed "
                f"({type(exc).__name__}: {exc})")


class ReportServer6(ReportServer):
    address_family = socket.AF_INET6


def bind(host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> ReportServer:
    """The listening server (one-line UsageError when the address cannot be taken)."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port={port} is out of range; give 0..65535 (0: any free one)")
    try:
        return (ReportServer6 if ":" in host else ReportServer)((host, port), handler)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick "
                         "another --port (0: any free one) or --host") from None


def url_of(server: ReportServer) -> str:
    """The URL that opens the page, the token in it."""
    host, port = server.server_address[:2]
    base = f"http://{f'[{host}]' if ':' in str(host) else host}:{port}/"
    token = server.token
    return base if token is None else f"{base}?token={urllib.parse.quote(token, safe='')}"


def say(text: str) -> None:
    print(f"hpsearch: {text}", file=sys.stderr, flush=True)


def _take_token(given: str | None, no_token: bool, out_dir: Path) -> str | None:
    """The token in force (None: ``--no_token``), said on stderr."""
    if given is not None:
        return given
    if no_token:
        say("WARNING: --no_token: ANY user of this machine can read this report; serve "
            "without --no_token unless the machine is yours alone")
        return None
    token, new = kept_token(out_dir / REPORT_TOKEN_FILE)
    say(f"{'a new' if new else 'the'} token is in {out_dir / REPORT_TOKEN_FILE} (mode 0600, "
        "kept across restarts); the URL below carries it")
    return token


def serve_report(out_dir: Path, grid_module: str | None, listen: Listen) -> int:
    """Serve the live report until SIGINT/SIGTERM; returns the exit status. Bad flags, a
    directory without a search or an address in use: UsageError before anything is
    written."""
    given = given_token(listen.host, listen.token_file, listen.no_token,
                        "read this search's report")
    live = LiveReport(out_dir, grid_module, say)
    server = bind(listen.host, listen.port, make_handler(live))
    try:
        server.token = _take_token(given, listen.no_token, out_dir)
        return _run(server, out_dir)
    finally:
        server.server_close()


def _run(server: ReportServer, out_dir: Path) -> int:
    """Serve until a signal; its exit status."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="report-server", daemon=True)
    with stop_signals() as stop:
        thread.start()
        print(url_of(server), flush=True)
        say(f"serving the report of {out_dir}, updated while the search runs (the page asks "
            f"every {POLL_MS / 1000:g} s); Ctrl-C ends it")
        signum = stop.wait()
        server.shutdown()
        thread.join(5)
        say(f"{signal.Signals(signum).name}: stopped serving the report")
        return 128 + signum
