"""``hpsearch serve``: a search's brain over HTTP, on its own journal.

The main thread validates everything (nothing is written before), binds the port, takes the
search directories (request 1's lock, then those of the requests it created before), starts
one driver thread per request and uvicorn in a thread of its own, prints the URL as its
first line of output, and then only waits for SIGINT/SIGTERM. On a signal it stops
uvicorn, interrupts every driver (as a signal would stop ``hpsearch``), waits for them and
gives the locks back; the exit status is 128 + the signal's number, as for a search.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import ipaddress
import signal
import socket
import sys
import threading
from pathlib import Path

from hpsearch.backends import make_backend
from hpsearch.errors import UsageError
from hpsearch.launch import SearchSource, load_search, source_name
from hpsearch.options import SearchOptions
from hpsearch.service.requests import SERVED_DEFAULTS, Budget, Registry, Request, apply_budget

#: seconds a stopping service waits for each driver to record its runs
STOP_WAIT_S = 30.0


def check_serve_dependencies() -> None:
    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"hpsearch serve needs {' and '.join(missing)}: "
                         "pip install 'hpsearch[serve]'")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(host: str, token_file: Path | None) -> str | None:
    """The token every request must send; a bind beyond loopback must have one."""
    if token_file is None:
        if not is_loopback(host):
            raise UsageError(f"--host={host} serves beyond this machine: give --token-file="
                             "FILE (a secret that every request must send as "
                             "'Authorization: Bearer <token>')")
        return None
    try:
        token = token_file.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read --token-file={token_file} ({exc}); pass a readable "
                         "file holding the token") from None
    if not token or any(c.isspace() for c in token) or not token.isprintable():
        raise UsageError(f"--token-file={token_file} must hold one word of printable "
                         "characters (e.g. from: python -c 'import secrets; "
                         "print(secrets.token_urlsafe())')")
    return token


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


def serve(source: SearchSource, options: SearchOptions, budget: Budget, lease_s: float,
          host: str, port: int, token_file: Path | None, own_backend: bool,
          command: list[str]) -> int:
    """Run the service until SIGINT/SIGTERM; returns the exit status."""
    check_serve_dependencies()
    import uvicorn

    from hpsearch.service.app import make_app

    token = read_token(host, token_file)
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
    first = Request(1, spec, options, budget, lease_s, source_name(source, spec), command,
                    make_backend(options, say) if own_backend else None)
    sock = bind(host, port)
    registry = Registry(options.out_dir, options, lease_s, say)
    caught: list[int] = []
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        caught.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        registry.add(first)
        registry.restore()
        server = uvicorn.Server(uvicorn.Config(make_app(registry, token), log_level="warning",
                                               access_log=False, lifespan="off",
                                               proxy_headers=False))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                  name="uvicorn", daemon=True)
        thread.start()
        print(url_of(sock), flush=True)
        say(f"serving {len(registry.requests)} request(s); request 1: {spec.algorithm} search "
            f"in {options.out_dir} ({first.backend.name} backend); docs: {url_of(sock)}/docs")
        while not stop.wait(0.5) and thread.is_alive():
            pass
        server.should_exit = True
        signum = caught[0] if caught else signal.SIGTERM
        registry.stop_all(signum, STOP_WAIT_S)
        thread.join(5)
        say(f"{signal.Signals(signum).name}: stopped; the same command serves the search "
            "again where it stopped")
        return 128 + signum
    finally:
        registry.stop_all(signal.SIGTERM, STOP_WAIT_S)
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
