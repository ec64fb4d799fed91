"""Segment everything: whole images of any size, window by window, stitched, optionally on Dask.

:func:`segment_all` (one image) and :func:`segment_all_many` (several) find
the objects of every window of a :class:`samkit.Session`'s tile grid in one
of the modes of :mod:`~samkit.automatic.modes` (micro-sam's instance decoder
and prompts from it, prompts placed at objects of the image's scale, or
SAM's point grid), and put the windows together with the rules of
:mod:`~samkit.automatic.stitch`. The pipeline
(:mod:`~samkit.automatic.pipeline`) runs in the calling process or, given a
``dask.distributed.Client``, on a cluster (:mod:`~samkit.automatic.distributed`).
"""

from .modes import MODES, Run, Settings, WindowReport
from .pipeline import embed, run, segment_all, segment_all_many

__all__ = ["MODES", "Run", "Settings", "WindowReport", "embed", "run", "segment_all", "segment_all_many"]
