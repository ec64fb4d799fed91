"""Segment everything: SAM's automatic mask generation over tiled images, stitched, optionally on Dask.

:func:`segment_all` (one image) and :func:`segment_all_many` (several) run
the point-grid generator of :mod:`~samkit.automatic.generate` in every
window of a :class:`samkit.Session`'s tile grid, and put the windows
together with the rules of :mod:`~samkit.automatic.stitch`. The pipeline
(:mod:`~samkit.automatic.pipeline`) runs in the calling process or, given a
``dask.distributed.Client``, on a cluster (:mod:`~samkit.automatic.distributed`).
"""

from .generate import Settings
from .pipeline import embed, segment_all, segment_all_many

__all__ = ["Settings", "embed", "segment_all", "segment_all_many"]
