"""Reading the YAML and JSON a user hands hpsearch (search files, config templates) strictly.

* A key given twice in one mapping is refused: YAML and JSON readers would silently keep the
  last one, so a search would run with a value the user did not mean (ruamel, which reads
  config templates as YAML, refuses them on its own).
* Lists and mappings nested deeper than :data:`MAX_DEPTH`, or holding themselves (a YAML
  anchor used inside itself), are refused: the recursive code that handles values
  afterwards (hashing a configuration, writing it out) would overflow the stack mid-search.

Every problem is one :class:`~hpsearch.errors.UsageError` line naming the file (``what``)
and the fix.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import TYPE_CHECKING, Any

from hpsearch.errors import UsageError

if TYPE_CHECKING:
    import yaml

#: the deepest nesting of lists and mappings a file may have (a search file needs about 6)
MAX_DEPTH = 100


@functools.cache
def _loader() -> type[yaml.SafeLoader]:
    """``yaml.SafeLoader`` that also reads ``1e-5`` (JSON, YAML 1.2) as a float and refuses
    a key given twice in one mapping (a ``<<`` merge key may still be overridden). Built on
    first use: a search with no YAML to read (a grid module) never imports PyYAML."""
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode,
                              deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _value in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    duplicate = key in seen
                except TypeError:  # an unhashable key: the base class says so
                    break
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} appears twice in one mapping (keep one of "
                        "them)", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep)

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))
    return Loader


def load_yaml(text: str, what: str) -> Any:
    """``text`` read as YAML (safe: no arbitrary objects); a bad file is a UsageError."""
    import yaml

    try:
        data = yaml.load(text, Loader=_loader())
    except yaml.YAMLError as exc:
        raise yaml_error(exc, what) from None
    except RecursionError:
        raise too_deep(what) from None
    check_nesting(data, what)
    return data


def yaml_error(exc: Exception, what: str) -> UsageError:
    """A YAML parser's error (PyYAML's or ruamel's: both have ``problem`` and
    ``problem_mark``) as one line: ``<what> is not valid YAML: <problem> at line L column
    C; fix it there``."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
    return UsageError(f"{what} is not valid YAML: {' '.join(str(problem).split())}{where}; "
                      "fix it there")


def load_json(text: str, what: str) -> Any:
    """``text`` read as JSON; a bad file is a UsageError."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for key, value in pairs:
            if key in data:
                raise UsageError(f"{what} gives the key {key!r} twice in one mapping; keep "
                                 "one of them (the last would silently win)")
            data[key] = value
        return data

    try:
        data = json.loads(text, object_pairs_hook=unique)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column "
                         f"{exc.colno}; fix it there") from None
    except RecursionError:
        raise too_deep(what) from None
    check_nesting(data, what)
    return data


def check_nesting(data: Any, what: str) -> None:
    """Refuse ``data`` nested deeper than :data:`MAX_DEPTH` or holding itself."""
    depth = nesting_depth(data)
    if depth == math.inf:
        raise UsageError(f"{what} holds a list or mapping that contains itself (a YAML anchor "
                         "used inside itself); write the value out")
    if depth > MAX_DEPTH:
        raise too_deep(what)


def too_deep(what: str) -> UsageError:
    """The error for a file nested deeper than :data:`MAX_DEPTH` (a parser's RecursionError)."""
    return UsageError(f"{what} nests lists or mappings more than {MAX_DEPTH} levels deep; "
                      "flatten it")


def nesting_depth(data: Any) -> float:
    """Levels of lists and mappings in ``data`` (a scalar: 0); ``inf`` when one holds itself.

    Iterative, and each container is measured once however often it is shared (YAML
    aliases), so neither deep nor self-similar data costs more than one pass.
    """
    depth: dict[int, float] = {}
    open_ids: set[int] = set()
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, closing = stack.pop()
        if not isinstance(node, (list, dict)):
            continue
        children = [c for c in (node.values() if isinstance(node, dict) else node)
                    if isinstance(c, (list, dict))]
        if closing:
            open_ids.discard(id(node))
            depth[id(node)] = 1 + max((depth[id(c)] for c in children), default=0)
            continue
        if id(node) in depth:
            continue
        if id(node) in open_ids:
            return math.inf
        open_ids.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in children)
    return depth.get(id(data), 0)
