"""Files written whole or not at all: a temp file beside the target, fsync, then a rename.

A writer killed half-way leaves ``.NAME.tmpPID``, which the next write of NAME removes; a full
disk leaves the previous file as it was and says "no space left on device".
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace the text file ``path`` atomically (a temp file in the same folder, fsync,
    os.replace): a reader or a crash sees the old text or the new, never a torn file."""
    data = text.encode("utf-8")
    write_atomic(Path(path), lambda f: f.write(data))


def write_atomic(path: str | Path, write: Callable[[BinaryIO], object],
                 durable: bool = True) -> None:
    """``write(file)`` into ``.NAME.tmpPID`` beside ``path``, fsync, then rename over ``path``.
    ``durable=False`` skips the fsync: still never a torn file, but a crash of the machine may
    lose the newest one (for previews rewritten many times a second)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(path)
    tmp = _temp_name(path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        raise _write_error(path, e) from e
    finally:
        tmp.unlink(missing_ok=True)


def _temp_name(path: Path, pid: int) -> Path:
    return path.with_name(f".{path.name}.tmp{pid}")


def remove_stale_temp_files(path: str | Path) -> list[Path]:
    """Remove the temp files that killed writers of ``path`` left (``.NAME.tmpPID`` whose PID
    is not a running process); returns them."""
    path = Path(path)
    prefix = f".{path.name}.tmp"
    removed = []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    for name in names:
        pid = name[len(prefix):]
        if not (name.startswith(prefix) and pid.isdigit() and int(pid) > 0):
            continue
        if int(pid) != os.getpid() and not _running(int(pid)):
            stale = path.parent / name
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _write_error(path: Path, e: OSError | RuntimeError) -> Exception:
    """The error to raise for a failed write of ``path``: one line, saying "no space left on
    device" for a full disk (torch reports that as a RuntimeError without an errno)."""
    text = str(e)
    first = text.splitlines()[0][:200] if text else type(e).__name__
    full = (getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
            or "No space left" in text or "file write failed" in text)
    if full:
        kept = f" (the previous {path.name} is kept)" if path.exists() else ""
        err = OSError(f"could not write {path}: no space left on device{kept}")
        err.errno = errno.ENOSPC
        return err
    if isinstance(e, OSError):
        err = OSError(f"could not write {path}: {e.strerror or first}")
        err.errno = e.errno
        return err
    return ValueError(f"could not write {path}: {first}")
