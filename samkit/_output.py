"""Where ``samkit segment`` writes: checked before any work, and cleared only of what samkit made.

``-o labels.tif`` (or ``.zarr``) builds the label image in a hidden folder
``.labels.tif.labels`` beside it, then exports it. A run that was stopped
leaves that folder behind; the next run replaces it only if it is a label
image samkit wrote (the array's ``samkit`` attribute says so, see
:class:`samkit.LabelImage`) or holds no files. Anything else there is the
user's, and stays.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import InvalidImageError, InvalidSettingError

#: What a label image folder holds (see samkit.labels); its array carries the marker.
LABEL_FOLDER = {"labels.zarr", "ops", "log.jsonl"}


def check_writable(out: Path) -> None:
    """Refuse ``-o out`` at once, not after hours of work, when its folder cannot be written."""
    folder = out.absolute().parent
    while not folder.exists() and folder != folder.parent:  # missing folders are created
        folder = folder.parent
    if not folder.is_dir():
        problem = "not a folder"
    else:
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".samkit-"):  # right for root and read-only disks too
                return
        except OSError as e:
            problem = e.strerror or str(e)
    raise InvalidSettingError(
        f"-o {out}: cannot write into {folder} ({problem}); choose an output in a folder you can write to"
    )


def remove_leftover(folder: Path, out: Path) -> None:
    """Remove ``folder``, the label image an earlier ``-o out`` run left, only if samkit made it."""
    if not os.path.lexists(folder):
        return
    if not _own_leftover(folder):
        raise InvalidImageError(
            f"{folder} is in the way: samkit keeps the label image there before writing {out}, and this is "
            "not a label image samkit left; move or delete it, or choose another -o"
        )
    shutil.rmtree(folder)


def _own_leftover(folder: Path) -> bool:
    """Whether ``folder`` is a label image samkit wrote (its array carries samkit's marker) or holds no files."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    try:
        meta = json.loads((folder / "labels.zarr" / "zarr.json").read_bytes())
        marked = meta["attributes"]["samkit"]["kind"] == "labels"
    except (OSError, ValueError, KeyError, TypeError):
        marked = False
    if marked:
        return {p.name for p in folder.iterdir() if not _scratch(p)} <= LABEL_FOLDER
    return all(p.is_dir() and not p.is_symlink() or _scratch(p) for p in folder.rglob("*"))  # stopped at creation


def _scratch(path: Path) -> bool:
    """A temporary file of samkit's durable writes (``.<name>.<uuid>.tmp``)."""
    return path.name.startswith(".") and path.name.endswith(".tmp") and path.is_file() and not path.is_symlink()
