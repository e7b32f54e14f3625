"""The token of whatever listens: ``hpsearch serve`` and ``hpsearch report --serve``.

A login node is shared, so loopback is no boundary: a listener always has a token unless its
owner says ``--no_token`` (loopback only). The token comes from ``--token-file`` or, by
default, from a file in the search directory (:func:`kept_token`; the service's is
:data:`TOKEN_FILE`, the live report has its own, so reading a report does not let anyone
report losses): written at the first start (``secrets.token_urlsafe``, mode 0600,
atomically) and kept across restarts, so whoever reads it keeps working when the listener
comes back. A token file that others may read is not trusted: a new token replaces it.

It sits in the engine layer, below both listeners (``service`` and ``inspect``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import stat
from pathlib import Path

from hpsearch.errors import UsageError

#: the generated token's file, in the search directory
TOKEN_FILE = "service.token"
#: the live report's token file in a search directory (``hpsearch report --serve``): not the
#: service's, so that reading a report never lets anyone report losses
REPORT_TOKEN_FILE = "report.token"
#: the environment variable a client (:mod:`hpsearch.client`) reads a token from
TOKEN_VARIABLE = "HPSEARCH_TOKEN"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_word(token: str) -> bool:
    """Whether ``token`` can be a token: one word of printable characters."""
    return bool(token) and token.isprintable() and not any(c.isspace() for c in token)


def given_token(host: str, token_file: Path | None, no_token: bool,
                what: str = "use the service") -> str | None:
    """The token of ``--token-file`` (None without it), after checking the flags together
    (one-line UsageError; before anything is written); ``what`` says what anyone could do
    without a token."""
    if no_token:
        if token_file is not None:
            raise UsageError("--no_token and --token-file contradict each other: give one "
                             "of them")
        if not is_loopback(host):
            raise UsageError(f"--no_token with --host={host} would let anyone who reaches "
                             f"this machine {what}: drop --no_token (a token is "
                             "generated) or serve on --host=127.0.0.1")
        return None
    if token_file is None:
        return None
    try:
        token = token_file.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read --token-file={token_file} ({exc}); pass a readable "
                         "file holding the token") from None
    if not is_word(token):
        raise UsageError(f"--token-file={token_file} must hold one word of printable "
                         "characters (e.g. from: python -c 'import secrets; "
                         "print(secrets.token_urlsafe())')")
    return token


def _private_token(path: Path) -> str | None:
    """The token in ``path`` when only its owner (this user) can read it, else None."""
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            text = f.read(1024).decode().strip()
    except (OSError, UnicodeDecodeError):
        return None
    private = stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() and not (
        info.st_mode & 0o077)
    return text if private and is_word(text) else None


def _write_private(path: Path, text: str) -> None:
    """``text`` as ``path``, mode 0600 from its creation on, replacing it atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def kept_token(path: Path) -> tuple[str, bool]:
    """The token kept in ``path`` (a file of a search directory), written now when there is
    none or others could read it; and whether it was written now."""
    token = _private_token(path)
    if token is not None:
        return token, False
    token = secrets.token_urlsafe(32)
    try:
        _write_private(path, token + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write the token file {path} ({exc.strerror}); pass "
                         "--token-file=FILE holding a token") from None
    return token, True
