"""Where a :class:`~samkit.labels.LabelImage`'s history comes from: a new array, a saved folder, or a copy.

A new label image is an empty zarr array (in memory, or a :class:`~samkit._labelstore.DurableStore`
in a new folder) and a log whose line 0 describes it; reopening checks the folder
against its log and replays the log into a :class:`~samkit._history.History`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr
from zarr.storage import MemoryStore

from . import _durable
from ._history import History
from ._journal import FORMAT, DiskJournal, MemoryJournal, autosave_error, is_saved, now, prepare
from ._labelstore import COMPRESSORS, DurableStore, open_array, open_checked, rebased
from .errors import AutosaveError, InvalidImageError


def create(shape, path, dtype, chunks, initial) -> History:
    """The history of a new label image (in memory when ``path`` is None), filled from ``initial`` if given."""
    if not np.issubdtype(dtype, np.integer):
        raise InvalidImageError(f"label dtype must be an integer type, not {dtype}")
    if len(chunks) != 2 or min(chunks) < 1:
        raise InvalidImageError(f"chunks must be two positive ints, not {chunks}")
    root = None if path is None else Path(path)
    try:
        store = MemoryStore() if root is None else DurableStore(prepare(root) / "labels.zarr")
        journal = MemoryJournal() if root is None else DiskJournal(root)
        array = zarr.create_array(
            store, shape=shape, chunks=chunks, dtype=dtype, fill_value=0, compressors=COMPRESSORS,
            attributes={"samkit": {"kind": "labels", "format": FORMAT}},
        )
        history = History(array, journal)
        if initial is not None:
            _fill(history, initial)
        entry = {"seq": 0, "op": "create", "format": FORMAT, "shape": list(shape), "dtype": dtype.name,
                 "chunks": list(chunks), "time": now(), "next_label": history.next,
                 "objects": {str(k): list(v) for k, v in history.objects.items()}}
        if root is None:
            journal.append(entry)
        else:
            journal.create({**entry, "checksums": store.take()})
    except OSError as e:
        raise autosave_error(e, f"cannot create a label image at {root}") from e
    return history


def _fill(history: History, initial) -> None:
    shape = tuple(history.array.shape)
    if tuple(initial.shape) != shape:
        raise InvalidImageError(f"initial labels have shape {tuple(initial.shape)}, expected {shape}")
    if not np.issubdtype(initial.dtype, np.integer):
        raise InvalidImageError(f"initial labels must be integers, not {initial.dtype}")
    history.fill(initial)


def reopen(root: Path, shape, dtype, chunks) -> History:
    """The history of the label image saved at ``root``, checked against its log; ``shape`` etc. must match if given."""
    try:
        journal = DiskJournal(root)
        entries = journal.load()
        history = History(open_checked(root, journal, entries), journal)
    except AutosaveError:
        raise
    except OSError as e:
        raise autosave_error(e, f"cannot reopen the label image at {root}") from e
    array = history.array
    found = {"shape": tuple(array.shape), "chunks": tuple(array.chunks), "dtype": array.dtype}
    wanted = {"shape": shape, "chunks": chunks and tuple(chunks), "dtype": None if dtype is None else np.dtype(dtype)}
    for name, want in wanted.items():
        if want is not None and want != found[name]:
            raise InvalidImageError(f"{root} holds a label image with {name} {found[name]}, not {want}")
    for entry in entries:
        history.account(entry)
    try:
        history.recover()
    except OSError as e:
        raise autosave_error(e, f"cannot finish recovering {root}") from e
    return history





def write_copy(history: History, root: Path) -> tuple[zarr.Array, DiskJournal]:
    """Write the array and journal of ``history`` to the new folder ``root``; return the copy's array and journal."""
    journal = DiskJournal(prepare(root))
    store = DurableStore(root / "labels.zarr")
    source = history.array
    array = zarr.create_array(
        store, shape=source.shape, chunks=source.chunks, dtype=source.dtype, fill_value=0,
        compressors=COMPRESSORS, attributes=source.attrs.asdict(),
    )
    (cy, cx), (h, w) = source.chunks, source.shape
    cells = {(i, j) for y0, x0, y1, x1 in history.objects.values()  # the chunks under objects
             for i in range(y0 // cy, (y1 - 1) // cy + 1) for j in range(x0 // cx, (x1 - 1) // cx + 1)}
    for i, j in cells:
        cell = slice(i * cy, min(h, i * cy + cy)), slice(j * cx, min(w, j * cx + cx))
        array[cell] = source[cell]
    journal.copy(rebased(history.journal.entries, store.take()), history.journal.parts)


def replace_copy(history: History, root: Path) -> None:
    """Write a copy of ``history`` to ``root`` in place of the label image saved there.

    The new copy is written beside it first; the old one is removed only once the new one is in place.
    """
    if not is_saved(root) or history.journal.path is not None and root.resolve() == history.journal.path.resolve():
        raise FileExistsError(f"{root} is not a copy samkit saved (or is this label image's own autosave folder); "
                              "choose a new folder")  # fmt: skip
    new, old = root.with_name(root.name + ".saving"), root.with_name(root.name + ".replaced")
    _durable.remove(new)
    write_copy(history, new)
    _durable.remove(old)
    _durable.rename(root, old)
    _durable.rename(new, root)
    _durable.remove(old)


def autosave_at(history: History, root: Path) -> None:
    """Make ``history`` save its changes to the copy at ``root`` from now on."""
    journal = DiskJournal(root)
    history.array, history.journal = open_array(root, journal.load()[0]), journal
