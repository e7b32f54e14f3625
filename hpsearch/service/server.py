"""``hpsearch serve``: a search's brain over HTTP, on its own journal.

The main thread validates everything (nothing is written before), binds the port, takes the
search directories (request 1's lock, then those of the requests it created before), starts
one driver thread per request and waits until each has restored what its journal holds,
takes the token (:mod:`.tokens`), starts uvicorn in a thread of its own, prints the URL as
its first line of output (then ``token: <token>``), and then only waits for SIGINT/SIGTERM.
A request that reaches the port before the URL is printed waits in the listen backlog: none
is answered before every search is restored. On a signal it stops uvicorn, interrupts every
driver (as a signal would stop ``hpsearch``), waits for them and gives the locks back; the
exit status is 128 + the signal's number, as for a search.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import signal
import socket
import sys
import threading
from pathlib import Path

from hpsearch.engine.launch import HeldLines, SearchSource, load_search, source_name
from hpsearch.engine.options import SearchOptions
from hpsearch.engine.placement import checked_backend
from hpsearch.engine.stopsignal import stop_signals
from hpsearch.engine.tokens import TOKEN_FILE, TOKEN_VARIABLE, given_token, kept_token
from hpsearch.errors import UsageError
from hpsearch.service.requests import SERVED_DEFAULTS, Budget, Registry, Request, apply_budget

#: seconds a stopping service waits for each driver to record its runs
STOP_WAIT_S = 30.0


@dataclasses.dataclass(frozen=True)
class Access:
    """Who may use a service and what a request may ask of it: ``--host``, ``--port``,
    ``--token-file``, ``--no_token``, ``--allow_commands``, ``--max_requests``."""

    host: str
    port: int
    token_file: Path | None
    no_token: bool
    allow_commands: bool
    max_requests: int


def check_serve_dependencies() -> None:
    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"hpsearch serve needs {' and '.join(missing)}: "
                         "pip install 'hpsearch[serve]'")


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio then sets TCP_NODELAY on every connection it accepts (a
    # kept-alive client would otherwise wait for delayed ACKs)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another "
                         "--port (0: any free one) or --host") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def say(text: str) -> None:
    print(f"hpsearch: {text}", file=sys.stderr, flush=True)


def take_token(given: str | None, no_token: bool, out_dir: Path) -> str | None:
    """The token in force (None: ``--no_token``), said on stderr with how workers pass it;
    ``out_dir`` is request 1's directory, its lock held."""
    if given is not None:
        return given
    if no_token:
        say(f"WARNING: --no_token: ANY user of this machine can use this service as you (get "
            f"points, report losses, create searches in {out_dir}); serve without "
            "--no_token unless the machine is yours alone")
        return None
    path = out_dir / TOKEN_FILE
    token, new = kept_token(path)
    say(f"{'a new' if new else 'the'} token is in {path} (mode 0600, kept across restarts): "
        f"workers send 'Authorization: Bearer <token>' (sims/served/worker.py "
        f"--token-file={path}, Client(url, token_file=...) or {TOKEN_VARIABLE}=<token>)")
    return token


def serve(source: SearchSource, options: SearchOptions, budget: Budget, lease_s: float,
          access: Access, own_backend: bool, command: list[str]) -> int:
    """Run the service until SIGINT/SIGTERM; returns the exit status."""
    check_serve_dependencies()
    import uvicorn

    from hpsearch.service.app import make_app

    given = given_token(access.host, access.token_file, access.no_token)
    spec = load_search(source, options.run_cwd, check_script=own_backend,
                       defaults=None if own_backend else SERVED_DEFAULTS)
    for warning in spec.warnings:
        say(f"warning: {warning}")
    if spec.summary_parser is not None:
        raise UsageError("hpsearch serve writes reported results as a summary file; a grid "
                         "module's _SUMMARY_PARSER_HANDLE would not read them: remove it")
    spec, options = apply_budget(spec, options, budget, "--max_points")
    if not own_backend:  # the workers' failures are theirs: a service does not give up
        options = dataclasses.replace(options, fail_fast=0)
    held = HeldLines(say)  # what choosing the backend says waits for its checks
    first = Request(1, spec, options, budget, lease_s, source_name(source, spec), command,
                    checked_backend(spec, options, held) if own_backend else None)
    held.release()
    if first.warm_line:
        say(first.warm_line)
    sock = bind(access.host, access.port)
    registry = Registry(options.out_dir, options, lease_s, say, access.max_requests,
                        access.allow_commands)
    with contextlib.ExitStack() as stack:
        stop = stack.enter_context(stop_signals())
        stack.callback(sock.close)
        stack.callback(registry.stop_all, signal.SIGTERM, STOP_WAIT_S)
        registry.add(first)
        registry.restore()
        token = take_token(given, access.no_token, options.out_dir)
        server = uvicorn.Server(uvicorn.Config(make_app(registry, token), log_level="warning",
                                               access_log=False, lifespan="off",
                                               proxy_headers=False))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                  name="uvicorn", daemon=True)
        thread.start()
        # one write: whoever reads the URL finds the token line with it
        print(url_of(sock) + ("" if token is None else f"\ntoken: {token}"), flush=True)
        say(f"serving {len(registry.requests)} request(s); request 1: {spec.algorithm} search "
            f"in {options.out_dir} ({first.backend.name} backend); docs: {url_of(sock)}/docs")
        signum = stop.wait(alive=thread.is_alive)
        server.should_exit = True
        registry.stop_all(signum, STOP_WAIT_S)
        thread.join(5)
        say(f"{signal.Signals(signum).name}: stopped; the same command serves the search "
            "again where it stopped")
        return 128 + signum
