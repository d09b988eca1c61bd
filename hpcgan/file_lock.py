"""An exclusive lock on a lock file (fcntl.flock), for writers that must not run twice at once on
one folder: shard jobs into one OUT, trainers taking one run dir's hold.

The lock file is removed on release. A process that opened the file just before it was removed
would then hold a lock on a file that no longer has a name, so after locking we check that the
path still names the file we locked, and start again if not.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class LockHeld(Exception):
    """Another process holds the lock (and did not let go within the timeout)."""


class LockUnsupported(OSError):
    """The file system refuses locks (NFS mounted with nolock, Lustre without flock)."""


@contextmanager
def exclusive_lock(path: str | Path, timeout: float = 0.0) -> Iterator[None]:
    """Hold an exclusive lock on `path` while inside; wait up to `timeout` seconds for it (0: fail at
    once), else raise LockHeld."""
    path = Path(path)
    deadline = time.monotonic() + timeout
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockUnsupported(exc.errno, f"cannot lock {path}: {exc.strerror}") from None
            if time.monotonic() >= deadline:
                raise LockHeld(str(path)) from None
            time.sleep(0.01)
            continue
        if _same_file(fd, path):
            break
        os.close(fd)  # removed (and maybe re-created) by the previous holder: lock the new one
    try:
        yield
    finally:
        # Unlink while still holding the lock, so no one can lock this file after we let go.
        try:
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        named = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)
