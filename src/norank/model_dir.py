"""Replace a folder of files atomically: a kill at any instant leaves the old folder or the new one, whole.

The new folder is written complete beside the target under a unique name and fsynced, then swapped in
with two renames (old -> backup, new -> target) before the backup is deleted. Between the two renames
the target is absent, so readers use `locate`, which falls back to that backup. Every leftover of a
killed writer carries its process id in its name: readers ignore leftovers, and the next successful
write removes those whose process is gone (never another live writer's).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


def as_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path={path!r} must be a folder path (str or os.PathLike).")
    return Path(path)


def replace_folder(path, files: dict[str, bytes]) -> Path:
    """Make the folder `path` hold exactly `files` (name -> bytes). An existing folder is replaced only
    when it holds nothing but files of those names (an earlier write), so no other data is ever deleted."""
    target = _target(path, set(files))
    tmp = _sibling(target, "tmp")
    os.mkdir(tmp)
    try:
        for name, data in files.items():
            _write(tmp / name, data)
        _fsync_dir(tmp)
        _swap(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remove_leftovers(target)
    return target


def locate(path: Path) -> Path:
    """The folder to read for `path`: itself, or the backup a writer killed between its renames left."""
    if path.is_dir():
        return path
    if path.exists():
        raise ValueError(f"{path} is a file, not a model folder; pass the folder that save wrote.")
    backups = [folder for folder, _ in leftovers(Path(os.path.realpath(path)), "old")]
    if backups:
        return max(backups, key=lambda p: p.stat().st_mtime_ns)
    raise FileNotFoundError(f"No model at {path}: the folder does not exist.")


def _target(path, names: set) -> Path:
    target = Path(os.path.realpath(as_path(path)))
    if target.exists():
        if not target.is_dir():
            raise ValueError(f"{target} is a file; pass a folder path for the model (it is created or replaced).")
        extra = sorted(set(os.listdir(target)) - names)
        if extra:
            raise ValueError(
                f"{target} holds other files ({', '.join(extra[:3])}) and is not a norank model; save to a new "
                "or empty folder, or over a model folder written by save."
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _sibling(target: Path, kind: str) -> Path:
    return target.parent / f".{target.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        view = memoryview(data)
        while len(view):
            view = view[os.write(fd, view[: 1 << 24]) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # platforms that cannot open folders (Windows) order renames themselves
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _swap(tmp: Path, target: Path) -> None:
    backup = None
    if os.path.lexists(target):
        backup = _sibling(target, "old")
        os.rename(target, backup)
    try:
        os.rename(tmp, target)
    except BaseException:
        if backup is not None and not os.path.lexists(target):
            os.rename(backup, target)
        raise
    _fsync_dir(target.parent)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def leftovers(target: Path, kind: str) -> list[tuple[Path, int]]:
    """(folder, pid) of what writers of `target` left under `kind`: 'tmp' (unfinished) or 'old' (backups)."""
    prefix = f".{target.name}.{kind}-"
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []
    found = []
    for name in names:
        pid = name[len(prefix) :].split("-")[0]
        if name.startswith(prefix) and pid.isdigit() and (target.parent / name).is_dir():
            found.append((target.parent / name, int(pid)))
    return found


def _alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # on Windows, os.kill would end the process
        return True  # (and another thread of this process may be writing)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError, OverflowError):
        return True  # not ours to judge (another user's process, or no such check on this platform)
    return True


def _remove_leftovers(target: Path) -> None:
    for folder, pid in leftovers(target, "tmp") + leftovers(target, "old"):
        if not _alive(pid):
            shutil.rmtree(folder, ignore_errors=True)
