"""One exception type for every problem a user can cause.

The CLI turns a :class:`GenlabError` into a single line on stderr and a non-zero exit code, so that bad input
(a missing file, a corrupt checkpoint, a wrong option) never shows a traceback. Library code raises it with a
message that names the thing at fault and what is wrong with it.
"""


class GenlabError(Exception):
    """A user-facing error: its message is the whole story, printed as one line."""
