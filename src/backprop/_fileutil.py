"""Small shared helper: crash-safe file writes.

Every file backprop writes (model files, checkpoints, the CLI's results and predictions)
goes through `atomic_path`: the bytes go to a temporary file in the same directory, are
flushed to disk, and the temporary file is renamed over the destination. A rename within
one directory is atomic on POSIX and Windows, so a reader (or a process restarted after a
crash, SIGKILL or power loss) sees the old file or the complete new one, never a mix; on
any failure, Ctrl-C included, the temporary file is removed.

Temporary files are named ``.<name>.<random>.tmp``: hidden, and never mistaken for the
real file by anything that opens the real name.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "fsync_dir", "temp_name"]


def temp_name(path: Path) -> str:
    """The glob pattern of `atomic_path`'s temporary files for ``path`` (``.<name>.*.tmp``)."""
    return f".{path.name}.*.tmp"


def _create_temp(path: Path) -> Path:
    # Not tempfile.mkstemp: that creates the file with mode 0600, and the rename would
    # carry it over to the final file. os.open with 0o666 honours the user's umask, as a
    # plain open() of the final name would.
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # pragma: no cover - 48 random bits colliding
            continue
        os.close(fd)
        return tmp


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename in ``directory`` durable (POSIX); a no-op where that is not possible."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # Windows cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path next to ``path``, renamed onto ``path`` if the block succeeds.

    Write the file's contents to the yielded path inside the ``with`` block. When the
    block ends normally the temporary file is flushed to disk (fsync), renamed over
    ``path`` and the directory entry is flushed too. If the block or any of these steps
    fails or is interrupted (``KeyboardInterrupt`` included), the temporary file is
    removed, the exception propagates, and ``path`` is exactly as it was.

    Parameters
    ----------
    path : path-like
        The destination; its directory must exist.

    Yields
    ------
    tmp : Path
        The temporary file (created empty) to write to.
    """
    path = Path(path)
    tmp = _create_temp(path)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDWR)  # Windows needs write access to fsync
        try:
            os.fsync(fd)  # the bytes are on disk before the name points at them
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see `atomic_path`); returns ``Path(path)``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
