"""What requests may cost a service: searches live, body size and depth, message length.

At most :data:`DEFAULT_MAX_REQUESTS` searches live (``--max_requests``); a body of at most
:data:`MAX_BODY_BYTES`, JSON nested at most :data:`MAX_DEPTH` deep (both held by
:class:`~hpsearch.service.guards.BodyLimits` before anything parses the body); a failure
message of at most :data:`MAX_FAILURE_CHARS` characters (a longer one is cut, with a marker
saying so: the report is kept); at most :data:`MAX_POINTS_AHEAD` points kept ready per
request. Stdlib only: the command line and the reports' module read it too.
"""

from __future__ import annotations

import re

#: how many requests (searches) a service serves at once by default, request 1 included
#: (``--max_requests``): each may hold a sampler process and its memory
DEFAULT_MAX_REQUESTS = 8
#: the largest request body taken (a search, a report)
MAX_BODY_BYTES = 1024 * 1024
#: the deepest nesting of arrays and objects a body may have
MAX_DEPTH = 32
#: the longest failure message kept from a report
MAX_FAILURE_CHARS = 4096
#: the most ``new`` points a request keeps ready (``num_points_per_generation``): each is a
#: trial the strategy proposes at once, held in memory and on disk
MAX_POINTS_AHEAD = 1000

#: a JSON string, or an unclosed one to the end of the body: the closing quote is optional,
#: so one pass over the body (a string that never closes must not be searched for from
#: every quote in it: that was quadratic, minutes for a 1 MiB body on the event loop)
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether ``body`` (JSON, valid or not) opens more than ``limit`` arrays or objects
    inside each other; brackets inside strings do not count."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for bracket in _STRING.sub(b"", body).translate(None, _NOT_BRACKET):
        depth += 1 if bracket in b"[{" else -1
        if depth > limit:
            return True
    return False


def cut_failure(message: str) -> str:
    """``message`` cut to :data:`MAX_FAILURE_CHARS`, saying how much was left out."""
    if len(message) <= MAX_FAILURE_CHARS:
        return message
    return (f"{message[:MAX_FAILURE_CHARS]} ... [{len(message) - MAX_FAILURE_CHARS} more "
            "characters cut]")
