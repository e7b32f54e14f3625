"""The one exception type for bad user input.

Raised anywhere before the search writes its first file; the CLI prints the message as a
single line (``hpsearch: error: <message>``) and exits with status 2, no traceback.
Messages name the problem and the fix.
"""


class UsageError(Exception):
    """A bad input: a flag value, a grid module, a search directory."""
