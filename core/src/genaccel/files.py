"""Files genaccel writes and caches it keeps: atomic writes, locked output directories, the cache.

- :func:`write_text` / :func:`write_json` write to a uniquely named temporary file in the same folder
  and rename it over the target, so a reader never sees half a file and two writers never share
  a temporary name.
- :class:`OutputDir` is validated, created and locked before any work starts; an existing report
  in it is kept unless the run resumes it or is told to overwrite it.
- :func:`cache_dir` is the cache folder, or a one-line error when it cannot be used;
  :func:`read_json_cache` reads a cache entry and treats a corrupt one as absent, with a warning
  naming the file.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import GenaccelError, OutputError

LOCK_NAME = ".genaccel.lock"
OPEN: list = []  # this process's output directories, for the interrupted-run message


def warn(message: str) -> None:
    """A one-line warning on stderr (the run goes on)."""
    print(f"genaccel: warning: {message}", file=sys.stderr, flush=True)


@contextmanager
def writing(path):
    """Around the writing of the file ``path`` in place (a figure, generated media): an ``OSError`` (a full
    disk, a read-only or unwritable place) becomes an :class:`OutputError` naming the file, and what was
    written of it is removed (no truncated image is left looking whole)."""
    path = Path(path)
    try:
        yield
    except OSError as e:
        if path.is_file():
            path.unlink(missing_ok=True)
        raise OutputError(path, e) from None


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (unique temporary name in the same folder, then rename);
    a file system that refuses it is an :class:`OutputError` naming ``path`` (the old file kept whole)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise OutputError(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OutputError(path, e) from None
        raise


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, doc) -> None:
    """Write ``doc`` as indented JSON atomically, so an interrupted run never leaves a half-written file."""
    write_text(path, json.dumps(doc, indent=1, default=str))


def read_text(path: Path, what: str) -> str:
    """A UTF-8 text file, or a one-line error naming it, the line and what would be right."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise GenaccelError(f"{what} {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise GenaccelError(f"{what} {str(path)!r} is a directory; give the file itself") from None
    except OSError as e:
        raise GenaccelError(f"{what} {str(path)!r} cannot be read: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise GenaccelError(f"{what} {str(path)!r} is not UTF-8 text: byte {data[e.start]:#04x} on line {line}; "
                            "save it as UTF-8") from None


def read_json_object(path: Path, what: str) -> dict:
    """A JSON file whose top level is an object, or a one-line error naming the file."""
    text = read_text(path, what)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise GenaccelError(f"{what} {str(path)!r} is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise GenaccelError(f"{what} {str(path)!r} holds a JSON {_json_kind(doc)}; it must be a JSON object {{...}}")
    return doc


def _json_kind(value) -> str:
    return {list: "list", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(value), "null")


# --- the cache ---------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where genaccel keeps what it builds (tokenizers, machine figures): $GENACCEL_CACHE, else
    ~/.cache/genaccel; created if needed, or a one-line error when it cannot be used."""
    env = os.environ.get("GENACCEL_CACHE")
    path = Path(env) if env else Path.home() / ".cache" / "genaccel"
    where = "$GENACCEL_CACHE" if env else "the cache directory"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise GenaccelError(f"{where} {str(path)!r} is a file, not a directory; point $GENACCEL_CACHE at a "
                            "directory genaccel may write") from None
    except OSError as e:
        raise GenaccelError(f"{where} {str(path)!r} cannot be created ({e.strerror or e}); point $GENACCEL_CACHE "
                            "at a directory genaccel may write") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise GenaccelError(f"{where} {str(path)!r} is not writable; point $GENACCEL_CACHE at a directory "
                            "genaccel may write")
    return path


def read_json_cache(path: Path, what: str) -> dict:
    """A cache entry (a JSON object) or ``{}`` when absent; a corrupt entry is reported, removed and
    rebuilt by the caller (``{}``)."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
        if not isinstance(doc, dict):
            raise ValueError(f"a JSON {_json_kind(doc)}, not an object")
        return doc
    except (OSError, UnicodeDecodeError, ValueError) as e:
        warn(f"the cached {what} {str(path)!r} is corrupt ({e}); rebuilding it")
        path.unlink(missing_ok=True)
        return {}


# --- output directories ------------------------------------------------------------------------


class OutputDir:
    """An output directory validated, created and locked before any work starts.

    A second run into a locked directory fails at once.  An existing ``report`` (file name) is kept:
    ``resume`` continues it (:attr:`existing` holds it), ``overwrite`` replaces it, otherwise it is
    an error.  The lock is held until :meth:`close` or the process ends.
    """

    def __init__(self, path, *, resume: bool = False, overwrite: bool = False, report: str = "report.json",
                 flag: str = "--out", resumable: bool = False):
        self.path = Path(path)
        self.report = self.path / report
        self.existing: dict | None = None
        self._lock = None
        self.created = not self.path.exists()
        self.resumable = resumable or resume  # whether the command takes --resume (bench)
        self._create(flag)
        self._acquire()
        OPEN.append(self)
        try:
            self._check_report(resume, overwrite)
        except BaseException:
            self.close()
            raise

    def _create(self, flag: str) -> None:
        path = self.path
        for parent in [path, *path.parents]:
            if parent.exists() and not parent.is_dir():
                what = "is a file" if parent == path else f"lies under {str(parent)!r}, which is a file"
                raise GenaccelError(f"{flag} {str(path)!r} {what}; give a directory path")
            if parent.exists():
                break
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise GenaccelError(f"{flag} {str(path)!r} cannot be created ({e.strerror or e}); give a writable "
                                "directory path") from None
        if not os.access(path, os.W_OK | os.X_OK):
            raise GenaccelError(f"{flag} {str(path)!r} is not writable; give a writable directory path")

    def _acquire(self) -> None:
        lock = open(self.path / LOCK_NAME, "a+")  # noqa: SIM115 - held open for the run's lifetime
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = ""
            for _ in range(50):  # the holder writes its pid just after it takes the lock
                lock.seek(0)
                holder = lock.read().strip()
                if holder:
                    break
                time.sleep(0.01)
            lock.close()
            raise GenaccelError(f"output directory {str(self.path)!r} is in use by another genaccel run"
                                f"{f' (pid {holder})' if holder else ''}; wait for it to finish or give another --out") from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        self._lock = lock

    def _check_report(self, resume: bool, overwrite: bool) -> None:
        if not self.report.exists():
            if resume:
                warn(f"--resume: {str(self.report)!r} does not exist yet; starting a new report")
            return
        if overwrite:
            return
        if not resume:
            resume_hint = "--resume to continue it, " if self.resumable else ""
            raise GenaccelError(f"{str(self.report)!r} already exists; pass {resume_hint}--overwrite to replace it, "
                                "or give another --out")
        self.existing = read_json_object(self.report, "report")
        if not isinstance(self.existing.get("cases"), list):
            raise GenaccelError(f"report {str(self.report)!r} has no list of cases to resume; pass --overwrite "
                                "to start it again")

    def close(self) -> None:
        """Release the lock; a directory this run created and left empty is removed again."""
        if self._lock is not None:
            self._lock.close()  # closing the descriptor releases the lock
            self._lock = None
            if self.created and [p.name for p in self.path.iterdir()] == [LOCK_NAME]:
                (self.path / LOCK_NAME).unlink(missing_ok=True)
                self.path.rmdir()
        if self in OPEN:
            OPEN.remove(self)

    def __enter__(self) -> OutputDir:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def close_all() -> None:
    """Release every output directory this process holds (the end of a command)."""
    for out in list(OPEN):
        out.close()


__all__ = ["OPEN", "OutputDir", "cache_dir", "close_all", "read_json_cache", "read_json_object", "read_text", "warn",
           "write_bytes", "write_json", "write_text", "writing"]
