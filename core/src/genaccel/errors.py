"""User-facing errors: one line that says what was wrong and what would be right."""

from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable


class GenaccelError(Exception):
    """An error caused by the user's input; the CLI prints it as one line and exits non-zero."""


class OutputError(GenaccelError):
    """A file genaccel writes (a report part, a figure, generated media, a cache entry) could not be
    written: a full disk, a read-only or unwritable place.  Not the input's fault: the CLI prints it
    as one line naming the file and what was finished, and exits 3."""

    def __init__(self, path, error: OSError):
        self.path = str(path)
        reason = error.strerror or first_line(error) or type(error).__name__
        super().__init__(f"cannot write {self.path!r}: {reason}")


#: the errors of a full or unwritable file system (as opposed to a bug): no space, over quota, read-only, a
#: file too large, no permission
DISK_ERRNOS = frozenset(getattr(errno, name, None) for name in ("ENOSPC", "EDQUOT", "EROFS", "EFBIG", "EACCES", "EPERM")
                        ) - {None}  # the names this platform has


def disk_fault(e: BaseException) -> bool:
    """Whether ``e`` is the file system refusing a write (full, over quota, read-only, not permitted)."""
    return isinstance(e, OSError) and e.errno in DISK_ERRNOS


def unknown_name(kind: str, name: str, known: Iterable[str]) -> GenaccelError:
    """Build the error for an unknown name, listing what exists and the nearest match."""
    known = sorted(known)
    lower = {k.lower(): k for k in known}  # names that differ only in case are the nearest
    near = [lower[name.lower()]] if name.lower() in lower else difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    listing = ", ".join(known) if known else "none installed"
    return GenaccelError(f"unknown {kind} {name!r}{hint} (known: {listing})")


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, at most ``limit`` characters ('' when it has none)."""
    lines = str(e).splitlines()
    return lines[0][:limit] if lines else ""


def cannot_load(path, what: str, e: BaseException) -> GenaccelError:
    """The one-line error for a checkpoint part that would not load: the folder, the part, the cause."""
    return GenaccelError(f"checkpoint {str(path)!r}: cannot load {what} ({type(e).__name__}: {first_line(e)})")


def out_of_memory(e: BaseException) -> bool:
    """Whether an exception is running out of memory: CUDA's OutOfMemoryError, MemoryError, or the CPU
    allocator's RuntimeError."""
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower())
