"""The exceptions samkit raises, in one place.

Each derives from :class:`SamkitError` (catch-all for front ends) and from the
built-in exception a Python user would expect (``ValueError`` for bad values,
``TypeError`` for an object of the wrong kind, ``OSError`` for files and
downloads, ``RuntimeError`` for calls in the wrong order), so ``except
ValueError`` keeps working.
"""

from __future__ import annotations


class SamkitError(Exception):
    """Base class of every error samkit raises on purpose."""


class InvalidImageError(SamkitError, ValueError):
    """An image has the wrong shape, dtype or values (NaN, inf, empty)."""


class InvalidPromptError(SamkitError, ValueError):
    """A point, label, box or mask prompt is malformed or outside the image."""


class InvalidSettingError(SamkitError, ValueError):
    """A setting is out of range: tile size, halo, pyramid level, thresholds, device, precision, a registry entry."""


class UnknownModelError(SamkitError, ValueError):
    """A model name is not in the registry."""


class UnsupportedModelError(SamkitError, TypeError):
    """An object is not a model samkit can use, or the model cannot do what was asked (e.g. segment automatically)."""


class CheckpointError(SamkitError, ValueError):
    """A checkpoint file is corrupt, truncated or made for another model."""


class DownloadError(SamkitError, OSError):
    """A checkpoint could not be downloaded or failed verification."""


class NotReadyError(SamkitError, RuntimeError):
    """A method was called before the state it needs exists (e.g. no image set)."""


class CacheError(SamkitError, OSError):
    """An embedding cache cannot be created, read or written (read-only or full disk)."""


class AutosaveError(SamkitError, OSError):
    """A commit could not be saved to disk; the label image on disk is unchanged."""


class Cancelled(SamkitError, RuntimeError):
    """A run was stopped on request (e.g. ``segment_all(..., cancel=event)``); it left no output behind."""


class EmbeddingCancelled(SamkitError, RuntimeError):
    """A tile a prompt needs was not embedded because embedding was cancelled."""


class InvalidLabelError(SamkitError, ValueError):
    """A label id is out of range or absent, or a mask leaves nothing to commit."""


class InvalidTableError(SamkitError, ValueError):
    """A measurement table lacks a column asked for, has one of the wrong type, or has no such file format."""


class InvalidPropertyError(SamkitError, ValueError):
    """A measurement property is unknown, needs an intensity image, or does not apply to the labels (2D only)."""


class WorkerLostError(SamkitError, RuntimeError):
    """Dask workers kept dying on a window (e.g. out of memory); nothing was written as done."""


class OutputExistsError(SamkitError, FileExistsError):
    """An export would replace an existing file; pass ``overwrite=True`` to allow it."""


class CRSError(SamkitError, ValueError):
    """Coordinates in one CRS meet an image in another (or in none) and cannot be reprojected."""


class MissingExtraError(SamkitError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""
