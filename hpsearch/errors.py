"""The errors every layer raises, each seen by a user as one line ``hpsearch: error: ...``.

* :class:`UsageError` -- a bad input (a flag value, a grid module, a search directory),
  raised before the search writes its first file: exit status 2, nothing written.
* :class:`SearchError` -- the search cannot go on (disk full, a run directory that cannot
  be written, a scheduler that stopped answering): exit status 1; everything recorded so far
  is kept and the same command resumes. :class:`BackendError` is the one a backend or a
  strategy's worker raises.

Messages name the problem and the fix.
"""


class UsageError(Exception):
    """A bad input: a flag value, a grid module, a search directory."""


class SearchError(RuntimeError):
    """The search stopped on a problem it cannot get past; it is resumable."""


class BackendError(SearchError):
    """A backend or a strategy's worker cannot go on (scheduler unreachable after retries,
    a template error, a sampler that failed)."""
