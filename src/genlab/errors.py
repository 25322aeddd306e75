"""One exception type for every problem a user can cause.

The CLI turns a :class:`GenlabError` into a single line on stderr and a non-zero exit code, so that bad input
(a missing file, a corrupt checkpoint, a wrong option) never shows a traceback. Library code raises it with a
message that names the thing at fault and what is wrong with it.
"""


class GenlabError(Exception):
    """A user-facing error: its message is the whole story, printed as one line."""


class Interrupted(Exception):
    """Work stopped by a signal after saving what it had (training writes a checkpoint first). The CLI prints the
    message and exits with ``128 + signal number``, as a shell reports a job the signal ended: 130 for Ctrl-C
    (SIGINT), 143 for SIGTERM — so a script or scheduler never takes a stopped run for a finished one."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


def check_writable(path, directory: bool = False):
    """Refuse, in one line and before any work starts, an output ``path`` that cannot be written: a file (or with
    ``directory``, a directory) at ``path``, whose missing parents would be created. Creates nothing."""
    import os
    import tempfile
    from pathlib import Path

    path = Path(path)
    if path.exists():
        if path.is_dir() != directory:
            raise GenlabError(f"cannot write {path}: it is {'not ' if directory else ''}a directory")
        if not os.access(path, os.W_OK | (os.X_OK if directory else 0)):
            raise GenlabError(f"cannot write {path}: permission denied")
        return path
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise GenlabError(f"cannot write {path}: {parent} is not a directory")
    try:  # a probe file, removed at once: os.access says yes to root even where nothing can be made (/proc)
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".genlab-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise GenlabError(f"cannot write {path}: {parent} is not writable ({e.strerror})") from None
    return path
