"""Small shared helper: is there memory for an allocation a file or a flag asks for?

A size declared by a file (an IDX header, the rows of a CSV file) or by a flag
(``--hidden 100000000``) is checked here before anything of that size is allocated, so
the user reads one line naming the size and what the machine has, instead of a
``MemoryError`` traceback minutes later (or the kernel's OOM killer).

What the machine has is the smallest of: the kernel's estimate of available memory
(``MemAvailable``), the room left under the process's address-space limit (``ulimit -v``)
and under a container's memory limit (cgroup v2). Where none of these can be read the
check passes: it never refuses on a guess.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["available_bytes", "check_fits", "format_bytes"]


def _read_int(path: str, key: str | None = None) -> int | None:
    """An integer from a /proc or /sys file (the value after ``key:`` when given)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    if key is None:
        text = text.strip()
        return int(text) if text.isdigit() else None
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name == key:
            fields = rest.split()
            return int(fields[0]) * (1024 if fields[1:] == ["kB"] else 1)
    return None


def available_bytes() -> int | None:
    """Bytes this process can still allocate, or None when the machine does not say."""
    limits: list[int] = []
    mem = _read_int("/proc/meminfo", "MemAvailable")
    if mem is None and hasattr(os, "sysconf"):
        try:
            mem = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            mem = None
    if mem is not None:
        limits.append(mem)
    try:
        import resource
    except ImportError:  # Windows
        resource = None  # type: ignore[assignment]
    if resource is not None:
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        statm = Path("/proc/self/statm")
        if soft != resource.RLIM_INFINITY and statm.exists():
            used = int(statm.read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            limits.append(max(soft - used, 0))
    cap = _read_int("/sys/fs/cgroup/memory.max")  # "max" (no limit) reads as None
    if cap is not None:
        limits.append(max(cap - (_read_int("/sys/fs/cgroup/memory.current") or 0), 0))
    return min(limits) if limits else None


def format_bytes(n: float) -> str:
    """``n`` bytes in the largest unit that keeps the number >= 1 (``1.5 GiB``)."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def check_fits(n_bytes: int, what: str, error: type[Exception] = ValueError) -> None:
    """Raise ``error`` if ``n_bytes`` more bytes do not fit in the memory available.

    Parameters
    ----------
    n_bytes : int
        The size about to be allocated (any Python int: a header may declare 2**100).
    what : str
        What needs it, for the message, e.g. ``"the IDX data (60000, 28, 28)"``.
    error : exception type, default ValueError
        The exception raised (a reader raises its own ``DataError``, the CLI its
        one-line error).

    Raises
    ------
    ValueError
        ``error("<what> needs <size> of memory; this machine has <size> available")``.
    """
    free = available_bytes()
    if free is not None and n_bytes > free:
        raise error(
            f"{what} needs {format_bytes(n_bytes)} of memory; this machine has "
            f"{format_bytes(free)} available"
        )
