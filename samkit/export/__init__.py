"""From label images to the tools users already use, and prompt files back in.

Exports (each takes a :class:`samkit.LabelImage`, an integer array or :class:`Objects`,
with optional ``classes={id: name}`` and ``scores={id: float}``):

- :func:`to_coco` / :func:`write_coco` / :func:`read_coco`: COCO instances JSON, RLE
  masks or polygons (pycocotools; ``pip install 'samkit[coco]'``).
- :func:`polygons` / :func:`geometries` / :func:`to_labels`: outlines with holes along
  pixel edges, in (y, x) pixels or world coordinates, and back.
- :func:`to_geodataframe` / :func:`write_vector` / :func:`read_vector`: GeoJSON and
  GeoPackage in the CRS of a GeoTIFF (:class:`Georef`), areas in CRS units
  (``pip install 'samkit[gis]'``).
- :func:`napari_shapes`: a napari Shapes layer data tuple.
- :func:`to_table`: a table with a WKT geometry column.

Imports: :func:`read_prompts` reads boxes and points from VOC XML, COCO, CSV, GeoJSON
or GeoPackage; :func:`segment_prompts` turns them into objects through a
:class:`samkit.Session`.
"""

from .coco import read_coco, to_coco, write_coco
from .georef import Georef
from .gis import read_vector, to_geodataframe, write_vector
from .napari import napari_shapes
from .objects import Objects, gather
from .polygons import geometries, polygons, to_labels
from .prompts import Prompts, read_prompts
from .segment import segment_prompts
from .table import to_table

__all__ = [
    "Georef", "Objects", "Prompts", "gather", "geometries", "napari_shapes", "polygons", "read_coco",
    "read_prompts", "read_vector", "segment_prompts", "to_coco", "to_geodataframe", "to_labels", "to_table",
    "write_coco", "write_vector",
]  # fmt: skip
