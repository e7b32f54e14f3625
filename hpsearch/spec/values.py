"""Parameter values: their canonical identity, what the journal stores, what argv holds.

Three facts about a value, each with one source here:

* :func:`canonical` -- a text equal for values Python calls equal in a configuration
  (``1 == 1.0 == True``; a ``set`` whatever its iteration order; a numpy scalar like the
  Python number it holds), the same in every process. Run ids and duplicate detection hash it.
* :func:`render_value` / :func:`render_args` -- the argv text, as hypnettorch renders it
  minus its shell::

      {"lr": 1e-4, "use_bn": True, "dropout": False, "name": '"a b"'}
      -> ["--lr=0.0001", "--use_bn", "--name=a b"]

  ``--name=str(value)``; True is the bare flag, False omits it; a string wholly wrapped in one
  matching pair of ``"`` or ``'`` loses that pair.
* :func:`storable` -- the JSON value the journal keeps, chosen so that rendering it gives
  the same argv as the original: ``np.int64(2)`` -> ``2``, ``np.float32(0.1)`` -> ``0.1``,
  a tuple ``(1, 2)`` -> the text ``"(1, 2)"`` (JSON has no tuples), a set -> its text as
  first rendered. A restarted driver therefore runs exactly the argv the first one did.

:func:`check_argv_text` refuses what no argv can carry (NUL bytes, lone surrogates, a
word over the kernel's 128 KiB limit) with a one-line UsageError.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from typing import Any

from hpsearch.errors import UsageError

#: Linux's MAX_ARG_STRLEN: the longest single argv word (32 pages)
MAX_ARG_BYTES = 131072


def _plain_number(value: Any) -> Any:
    """A numpy (or other) scalar as the Python bool/int/float it holds; else ``value``."""
    if isinstance(value, (bool, int, float)):
        return value
    if type(value).__name__ in ("bool_", "bool") and hasattr(value, "item"):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def canonical(value: Any) -> str:
    """A text equal for equal values (``canonical(1) == canonical(1.0) == canonical(True)``)."""
    value = _plain_number(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ",".join(canonical(v) for v in value) + ")"
    if isinstance(value, (set, frozenset)):
        return "{" + ",".join(sorted(canonical(v) for v in value)) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(sorted(f"{canonical(k)}:{canonical(v)}"
                                     for k, v in value.items())) + "}"
    if hasattr(value, "tolist"):  # a numpy array
        return canonical(value.tolist())
    return f"<{type(value).__name__}>{value!r}"


def canonical_config(config: dict[str, Any]) -> str:
    return "{" + ",".join(f"{json.dumps(k)}:{canonical(v)}" for k, v in sorted(
        config.items())) + "}"


def config_hash(config: dict[str, Any]) -> str:
    """The hex SHA-1 of the configuration's canonical text (run ids are made from it)."""
    return hashlib.sha1(canonical_config(config).encode()).hexdigest()


def strip_wrapping_quotes(text: str) -> str:
    """``'"a b"'`` -> ``'a b'``: one matching pair of quotes around the whole text goes.

    hypnettorch users quote values so they survive its shell; we use none.
    """
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def render_value(value: Any) -> str:
    """The text after ``--name=`` for one non-boolean value."""
    return strip_wrapping_quotes(value) if isinstance(value, str) else str(value)


def render_args(config: dict[str, Any]) -> list[str]:
    args = []
    for name, value in config.items():
        if isinstance(_plain_number(value), bool):
            if value:
                args.append(f"--{name}")
        else:
            args.append(f"--{name}={render_value(value)}")
    return args


def _json_exact(value: Any) -> bool:
    """True when ``value`` is made of JSON's own types only (no tuple, set, object)."""
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_json_exact(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_exact(v) for k, v in value.items())
    return False


def storable(value: Any) -> Any:
    """The JSON value to keep for ``value``; rendering it gives ``value``'s argv text."""
    plain = _plain_number(value)
    if isinstance(plain, float) and not isinstance(value, float):
        as_text = float(str(value)) if _is_float_text(str(value)) else plain
        plain = as_text if str(as_text) == str(value) else str(value)
    if _json_exact(plain):
        return plain
    if isinstance(plain, float):  # nan, inf: JSON has no spelling, the text renders alike
        return str(plain)
    return str(value)


def _is_float_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def storable_config(config: dict[str, Any]) -> dict[str, Any]:
    return {k: storable(v) for k, v in config.items()}


def check_argv_text(where: str, text: str) -> None:
    """Refuse argv text that no process can receive: one-line UsageError naming ``where``."""
    if "\0" in text:
        raise UsageError(f"{where} holds a NUL byte, which no command line can carry; "
                         "remove it")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise UsageError(f"{where} holds a lone surrogate (text that is not valid "
                         "Unicode); fix the value") from None
    if size > MAX_ARG_BYTES:
        raise UsageError(f"{where} is {size} bytes long; one command-line word may hold "
                         f"at most {MAX_ARG_BYTES}: pass large values through a file")
