"""Tools to validate a segmentation pipeline against ground truth.

Two window models built from a ground-truth label image stand in for SAM:

* :class:`OracleModel` answers every prompt with the exact object, clipped to
  the window it sees: through a correct pipeline the result equals the ground
  truth, pixel for pixel. Use it to test exactness (tiling, stitching, labels).
* :class:`SamLikeModel` answers from the same truth the way SAM does (window
  noise at edges, negative points, competing candidates with scores, blobs on
  background, refinement): use it to test robustness.

Run a :class:`samkit.Session` (or the widget, or the plugin) with them on your
own annotated images to check tile size, halo and stitching before trusting
them with SAM. :func:`mosaic` builds large scenes with exact ground truth from
small annotated images.
"""

from .oracle import OracleModel
from .samlike import SamLikeModel
from .scenes import mosaic

__all__ = ["OracleModel", "SamLikeModel", "mosaic"]
