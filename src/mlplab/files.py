"""Every file mlplab writes goes through here: a unique temporary name beside the target, fsync, then rename, so a
reader sees the old file or the new one, never half of one. A run's files are published as a unit (its marker,
metrics.json, goes last and is removed first), and one process at a time writes an output directory (a lock
naming its holder)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import shlex
import socket
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mlplab.errors import MlplabError

if TYPE_CHECKING:
    import numpy as np

Writer = bytes | Callable[[IO[bytes]], None]
LOCK_NAME = ".mlplab.lock"
TEMP_SUFFIX = ".tmp"


def _os_problem(exc: OSError) -> str:
    if exc.errno == errno.EFBIG:
        return "file too large (a size limit or a full disk)"
    return exc.strerror or str(exc)


def _stage(path: Path, content: Writer) -> Path:
    """Write `content` to a fresh temporary file beside `path` and fsync it; returns the temporary path."""
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    except OSError as exc:
        raise MlplabError(f"cannot write {path}: {_os_problem(exc)}") from None
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(content, bytes):
                out.write(content)
            else:
                content(out)
            out.flush()
            os.fsync(out.fileno())
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise MlplabError(f"cannot write {path}: {_os_problem(exc)}") from None
        raise
    return tmp


def _sync_dir(directory: Path) -> None:
    """Make renames in `directory` durable (best effort: some filesystems refuse fsync on a directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _rename(tmp: Path, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise MlplabError(f"cannot write {path}: {_os_problem(exc)}") from None


def write_bytes(path: str | Path, content: Writer, before_rename: Callable[[], None] | None = None) -> Path:
    """Write bytes (or whatever `content(file)` writes) to `path` atomically; `before_rename` runs once the
    content is safe in its temporary file (a test's hook)."""
    path = Path(path)
    tmp = _stage(path, content)
    if before_rename is not None:
        before_rename()
    _rename(tmp, path)
    _sync_dir(path.parent)
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 text atomically."""
    return write_bytes(path, utf8(text))


def utf8(text: str) -> bytes:
    """Text as valid UTF-8: a path's bytes that are not UTF-8 (held by Python as surrogate escapes) become U+FFFD,
    as a browser or editor would show them, instead of failing the write."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace").encode("utf-8")


def json_bytes(content: Any) -> bytes:
    """Indented JSON with a final newline; NaN/inf become null, NumPy scalars plain numbers."""
    return (json.dumps(_finite(content), indent=2, allow_nan=False, default=_plain) + "\n").encode()


def write_json(path: str | Path, content: Any) -> Path:
    """Write JSON atomically; NaN/inf become null."""
    return write_bytes(path, json_bytes(content))


NPZ_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest a zip entry can carry: the same arrays give the same bytes


def npz_writer(arrays: Mapping[str, np.ndarray]) -> Callable[[IO[bytes]], None]:
    """A writer of an uncompressed .npz archive of `arrays` (no pickled objects), as `np.savez` writes it but with
    a fixed date on every member, so a file depends only on its arrays, never on when it was written."""

    import numpy as np  # not at import: the command line starts without numerics

    def write(out: IO[bytes]) -> None:
        with zipfile.ZipFile(out, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, value in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=NPZ_DATE)
                info.external_attr = 0o600 << 16  # what np.savez's entries get from zipfile
                with archive.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)

    return write


def publish(
    directory: str | Path,
    files: Mapping[str, Writer],
    marker: str,
    owned: Iterable[str] = (),
    before_marker: Callable[[], None] | None = None,
) -> None:
    """Put a run's files into `directory` as a unit: every file is written in full first, then the old marker is
    removed, the files renamed into place and the marker last. A directory with its marker holds one run's files;
    `owned` names files of an earlier run that this one does not replace (removed, so they cannot mix).
    `before_marker` runs just before the marker's rename (a test's hook)."""
    directory = Path(directory)
    make_dir(directory)
    staged: dict[str, Path] = {}
    try:
        for name, content in files.items():
            staged[name] = _stage(directory / name, content)
    except BaseException:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        raise
    (directory / marker).unlink(missing_ok=True)  # from here until the end the directory reads as unfinished
    for name in set(owned) - set(files) - {marker}:
        (directory / name).unlink(missing_ok=True)
    for name, tmp in staged.items():
        if name != marker:
            _rename(tmp, directory / name)
    if before_marker is not None:
        before_marker()
    if marker in staged:
        _rename(staged[marker], directory / marker)
    _sync_dir(directory)


def remove_stale_temporaries(directory: str | Path, max_age: float = 0.0) -> None:
    """Delete temporary files a killed writer left in `directory` (call only while holding its lock)."""
    now = time.time()
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX) and entry.is_file():
                with contextlib.suppress(OSError):
                    if now - entry.stat().st_mtime >= max_age:
                        os.unlink(entry.path)


def make_dir(directory: str | Path) -> Path:
    """Create `directory` (and parents); a path that cannot be one is a one-line error naming it."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MlplabError(f"cannot create the output directory {directory}: {_os_problem(exc)}") from None
    return directory


# --- one writer per output directory ------------------------------------------------------------------------

_held: dict[Path, tuple[int, int]] = {}  # resolved directory -> (lock file descriptor, nesting depth)


def holder_line() -> str:
    """Who this process is, as a second writer will be told: pid, host and command line."""
    command = shlex.join(["mlplab", *sys.argv[1:]]) if sys.argv else "python"
    return f"pid {os.getpid()} on {socket.gethostname()} ({quoted_text(command, 200)})"


@contextlib.contextmanager
def output_lock(directory: str | Path) -> Iterator[Path]:
    """Hold `directory` for this process: created and checked writable now, before any work, and refused with
    one line naming the holder when another process holds it. Released when the process ends, however it ends."""
    directory = Path(directory)
    created = [d for d in (directory, *directory.parents) if not d.exists()]
    make_dir(directory)
    key = directory.resolve()
    if key in _held:  # the same process nests (reproduce writes sweeps into its own directory)
        fd, depth = _held[key]
        _held[key] = (fd, depth + 1)
        try:
            yield directory
        finally:
            fd, depth = _held[key]
            _held[key] = (fd, depth - 1)
        return
    path = directory / LOCK_NAME
    try:
        fd = _acquire(path, directory)
        try:
            _probe_writable(directory, fd)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
    except BaseException:
        _remove_if_empty(created)
        raise
    _held[key] = (fd, 1)
    try:
        remove_stale_temporaries(directory)
        yield directory
    finally:
        del _held[key]
        with contextlib.suppress(OSError):
            path.unlink()  # while still locked: whoever opened this file before sees it gone and retries
        os.close(fd)
        _remove_if_empty(created)


def _remove_if_empty(created: list[Path]) -> None:
    """Remove directories this process created that nothing was written into (a command that failed early)."""
    for directory in created:  # deepest first
        try:
            directory.rmdir()
        except OSError:
            return


def _acquire(path: Path, directory: Path) -> int:
    """An open, exclusively locked descriptor of the lock file that is still the one at `path`."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise MlplabError(f"cannot write into the output directory {directory}: {_os_problem(exc)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise MlplabError(
                f"{directory} is in use by {holder}; wait for it to finish or choose another output directory"
            ) from None
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = -1
        if current == os.fstat(fd).st_ino:
            return fd
        os.close(fd)  # the holder removed it as we opened it: lock the new one


_claims = contextlib.ExitStack()


def claim_output(directory: str | Path) -> Path:
    """`output_lock(directory)` held until `release_outputs()` (the CLI calls it when a command ends)."""
    return _claims.enter_context(output_lock(directory))


def release_outputs() -> None:
    """Release every directory claimed with `claim_output`."""
    _claims.close()


def _probe_writable(directory: Path, fd: int) -> None:
    """Record the holder in the lock file: a directory that refuses it is reported before any training."""
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (holder_line() + "\n").encode("utf-8", "surrogateescape"), 0)  # a path's own bytes
        os.fsync(fd)
    except OSError as exc:
        raise MlplabError(f"cannot write into the output directory {directory}: {_os_problem(exc)}") from None


def _read_holder(fd: int) -> str:
    with contextlib.suppress(OSError):
        text = os.pread(fd, 1000, 0).decode("utf-8", "surrogateescape").strip()
        if text:
            return text
    return "another process"


# --- values quoted in messages ------------------------------------------------------------------------------


def quoted(value: Any, limit: int = 80) -> str:
    """repr(value), cut to `limit` characters: a message never grows with the input."""
    if isinstance(value, list | dict | tuple | set) and _too_big(value, limit):
        return f"<{type(value).__name__} of {len(value)} items>"
    return quoted_text(repr(value), limit)


def quoted_text(text: str, limit: int = 80) -> str:
    """Text cut to `limit` characters, marked when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _too_big(value: Any, limit: int) -> bool:
    """Whether a container holds more than `limit` items in all (without building its repr)."""
    stack, count = [value], 0
    while stack:
        item = stack.pop()
        count += 1
        if count > limit:
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set):
            stack.extend(item)
    return False


def _finite(value: Any) -> Any:
    """NaN and infinities become null: JSON has no spelling for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """NumPy scalars to Python numbers for JSON."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
