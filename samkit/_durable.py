"""Durable file operations: each change is on disk, whole, before the call returns.

:func:`write_file` writes to a hidden temporary file in the target's folder, fsyncs it,
renames it onto the target with ``os.replace`` (atomic on POSIX and Windows) and fsyncs the
folder, so after a crash or a power cut the target holds its old bytes or all the new ones.
A writer killed midway leaves at most its temporary file, which callers recognise by its
suffix. Creating folders, removing entries, appending a line and truncating are fsynced the
same way. Windows cannot open folders: there renames are durable by themselves and folder
fsyncs are skipped.

Every function raises ``OSError``; callers translate it into their own errors. Callers reach
these functions through the module (``_durable.write_file``), so tests can replace them to
simulate a full disk or a crash.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from pathlib import Path

_BINARY = getattr(os, "O_BINARY", 0)


def fsync_dir(folder: str | os.PathLike | int) -> None:
    """Make the entries of ``folder`` (a path, or an open descriptor of it) durable."""
    if os.name == "nt":  # Windows cannot open folders; its renames are durable by themselves
        return
    if isinstance(folder, int):
        os.fsync(folder)
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def makedirs(folder: str | os.PathLike) -> None:
    """Create ``folder`` and its missing parents, each made durable in its own parent."""
    folder = Path(folder)
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    if not missing and not folder.is_dir():
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(folder))  # as mkdir would
    for new in reversed(missing):
        new.mkdir(exist_ok=True)
        fsync_dir(new.parent)


def write_file(
    path: str | os.PathLike,
    data,
    *,
    dir_fd: int | None = None,
    suffix: str = ".tmp",
    keep_existing: bool = False,
) -> None:
    """Replace the file ``path`` by ``data`` (bytes-like) atomically and durably.

    Parameters
    ----------
    path : str or PathLike
        The file to write; its folder must exist. With ``dir_fd``, a name relative to it.
    data : bytes-like
    dir_fd : int, optional
        Open descriptor of the folder: the write stays in that folder even if it is
        renamed or deleted meanwhile (then it fails instead of landing elsewhere).
    suffix : str
        Suffix of the hidden temporary file ``.<name>.<uuid><suffix>``.
    keep_existing : bool
        For writers that all write the same bytes: a rename that fails while ``path``
        exists (another writer stored it; Windows refuses to replace a file being read)
        keeps that file and is no error.
    """
    folder, name = os.path.split(os.fspath(path))
    tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex}{suffix}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o666, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.replace(tmp, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError:
            if not (keep_existing and _exists(path, dir_fd)):
                raise
            _unlink(tmp, dir_fd)
            return
    except BaseException:
        _unlink(tmp, dir_fd)
        raise
    fsync_dir(dir_fd if dir_fd is not None else folder or ".")


def append_line(path: str | os.PathLike, line: bytes) -> None:
    """Append ``line`` to the file ``path`` and fsync it."""
    with open(path, "ab") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def truncate(path: str | os.PathLike, size: int) -> None:
    """Cut the file ``path`` to ``size`` bytes and fsync it."""
    with open(path, "r+b") as f:
        f.truncate(size)
        os.fsync(f.fileno())


def rename(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Move ``source`` (a finished file or folder) onto ``target`` atomically and durably."""
    os.replace(source, target)
    fsync_dir(os.path.dirname(os.fspath(target)) or ".")


def remove(path: str | os.PathLike) -> None:
    """Delete the file or folder ``path`` (if present; a link, not what it points to) and make that durable."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    else:
        return
    fsync_dir(path.parent)


def _exists(path, dir_fd: int | None) -> bool:
    try:
        os.stat(path, dir_fd=dir_fd)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


def _unlink(path, dir_fd: int | None) -> None:
    try:
        os.unlink(path, dir_fd=dir_fd)
    except OSError:
        pass
