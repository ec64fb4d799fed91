"""Reader for samkit annotation folders (a ``LabelImage`` saved or autosaved to disk).

Such a folder holds ``log.jsonl`` (the journal) and ``labels.zarr``. Open the
folder itself or its ``log.jsonl``. The labels are shown lazily from the zarr
array (not copied), read-only: to continue annotating, give the folder as the
annotator's autosave folder. Small label images are copied into memory;
larger ones stay a read-only zarr array.
"""

from __future__ import annotations

from pathlib import Path

SMALL = 2**26  # pixels: smaller label images are copied into memory, larger ones stay lazy (read-only zarr)


def _folder(path) -> Path | None:
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    try:
        path = Path(path)
        folder = path.parent if path.name == "log.jsonl" else path
        if (folder / "log.jsonl").is_file() and (folder / "labels.zarr").is_dir():
            return folder
    except (TypeError, ValueError, OSError):
        return None
    return None


def get_reader(path):
    """The reader function for a samkit annotation folder, or None for anything else (never raises).

    Parameters
    ----------
    path : str, Path or list of one of them
        The folder, or its ``log.jsonl``.

    Returns
    -------
    callable or None
    """
    folder = _folder(path)
    return None if folder is None else read_annotation


def read_annotation(path):
    """The saved label image as a napari labels layer (lazy, read-only).

    Unfinished operations left by a crash are completed or rolled back first
    (samkit's journal recovery), exactly as when samkit reopens the folder.

    Returns
    -------
    list of (data, metadata, layer type)
    """
    import zarr
    from samkit import LabelImage

    folder = _folder(path)
    if folder is None:
        return []
    try:
        labels = LabelImage.open(folder)  # recovers an interrupted operation, if any
        objects = len(labels.objects)
        del labels
        array = zarr.open_array(folder / "labels.zarr", mode="r")
    except Exception as error:  # a damaged folder: say why, don't raise into napari
        from napari.utils.notifications import show_error

        show_error(f"samkit: cannot read the annotation folder {folder}: {error}")
        return []
    if array.size <= SMALL:  # a copy: painting in napari cannot touch the saved folder
        array = array[...]
    metadata = {"samkit_path": str(folder), "objects": objects}
    return [(array, {"name": folder.name, "metadata": metadata}, "labels")]
