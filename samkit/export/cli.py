"""``samkit export`` and ``samkit segment IMAGE --prompts FILE``: the command-line side of samkit.export.

:mod:`samkit.cli` only declares the hooks; the work is here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..errors import InvalidImageError

EXPORT_SUFFIXES = (".json", ".geojson", ".gpkg", ".csv", ".parquet")


def add_export(commands) -> None:
    """The ``export`` sub-command."""
    export = commands.add_parser("export", help="export a label image as COCO JSON, GeoJSON, GeoPackage or a WKT table")
    export.add_argument("labels", metavar="LABELS", help="label image: TIFF, OME-Zarr or a samkit label folder")
    export.add_argument("-o", "--out", required=True, metavar="OUT",
                        help="out.json (COCO instances), out.geojson, out.gpkg, or out.csv / out.parquet (WKT table)")
    export.add_argument("--georef", metavar="GEOTIFF",
                        help="the georeferenced image: shapes in its CRS, areas in its units (GeoJSON, GPKG, table)")
    export.add_argument("--polygons", action="store_true", help="COCO: polygons instead of RLE (objects with holes stay RLE)")
    export.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    export.set_defaults(run=run_export)


def add_prompts_option(parser) -> None:
    """``--prompts`` for ``samkit segment``."""
    parser.add_argument("--prompts", metavar="FILE", help="segment one object per box / point of a prompt file "
                        "(.xml VOC, .json COCO, .csv, .geojson, .gpkg) instead of everything; "
                        "-o may then also be .json (COCO), .geojson or .gpkg")  # fmt: skip


def run_export(args: argparse.Namespace) -> int:
    from ..errors import OutputExistsError

    out = Path(args.out)
    labels = open_labels(args.labels)
    try:
        count = write_objects(labels, out, georef=args.georef, polygons=args.polygons, overwrite=args.overwrite)
    except OutputExistsError as e:
        raise OutputExistsError(f"{out} already exists; pass --overwrite to replace it") from e
    print(f"{count} objects -> {out}", file=sys.stderr)
    return 0


def segment_with_prompts(args: argparse.Namespace, model, cache) -> int:
    """``samkit segment IMAGE --prompts FILE -o OUT``."""
    from ..engine import Session
    from ..labels import LabelImage
    from .prompts import georef_or_none, read_prompts
    from .segment import segment_prompts

    for path, what in ((args.image, "image"), (args.prompts, "prompt file")):
        if not Path(path).exists():
            raise InvalidImageError(f"no such {what}: {path}")
    out = Path(args.out)
    folder = not out.suffix
    if out.suffix.lower() not in EXPORT_SUFFIXES + (".tif", ".tiff", ".zarr") and not folder:
        raise InvalidImageError(f"-o {out}: use .json, .geojson, .gpkg, .csv, .parquet, .tif, .zarr or a folder")
    if out.exists():
        raise InvalidImageError(f"{out} exists; choose another output or delete it first")
    prompts = read_prompts(args.prompts, args.image)
    note = f" ({prompts.outside} outside the image skipped)" if prompts.outside else ""
    print(f"{len(prompts.boxes)} boxes, {len(prompts.points)} points from {args.prompts}{note}", file=sys.stderr)
    session = Session(args.image, model, tile_size=args.tile_size, halo=args.halo, cache=cache)
    labels = LabelImage(session.shape, path=out) if folder else None
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=len(prompts), desc="segmenting", unit="prompt", file=sys.stderr)
    try:
        result = segment_prompts(session, prompts, labels=labels, progress=bar and (lambda done, total: bar.update(done - bar.n)))
    finally:
        if bar is not None:
            bar.close()
    if not folder:
        write_objects(result, out, georef=georef_or_none(args.image), polygons=False, overwrite=False)
    print(f"{len(result.labels.objects)} objects -> {out}", file=sys.stderr)
    return 0


def write_objects(objects, out: Path, *, georef, polygons: bool, overwrite: bool) -> int:
    """Write ``objects`` to ``out`` by its suffix; return how many objects were written."""
    from .coco import write_coco
    from .gis import write_vector
    from .objects import gather
    from .table import to_table

    objects = gather(objects)
    suffix = out.suffix.lower()
    if suffix == ".json":
        write_coco(objects, out, polygons=polygons, overwrite=overwrite)
    elif suffix in (".geojson", ".gpkg"):
        write_vector(objects, out, georef=georef, overwrite=overwrite)
    elif suffix in (".csv", ".parquet"):
        from ..measurement import export_table

        export_table(to_table(objects, georef=georef), out, overwrite=overwrite)
    elif suffix in (".tif", ".tiff", ".zarr"):
        from ..measurement import save_labels

        save_labels(objects.labels, out, overwrite=overwrite)
    else:
        raise InvalidImageError(f"-o {out}: export writes {', '.join(EXPORT_SUFFIXES)}")
    return len(objects.ids)


def open_labels(path: str):
    """A label image from a samkit label folder, an OME-Zarr written by samkit, or a TIFF / PNG."""
    from ..io import open_image
    from ..labels import LabelImage

    path = Path(path)
    if not path.exists():
        raise InvalidImageError(f"no such label image: {path}")
    if (path / "log.jsonl").is_file():
        return LabelImage.open(path)
    if path.suffix.lower() == ".zarr" and (path / "labels").is_dir():
        names = sorted(p.name for p in (path / "labels").iterdir() if p.is_dir())
        if names:
            path = path / "labels" / names[0]
    image = open_image(path)
    return np.asarray(image[...] if image.ndim == 2 else image.yxc()[..., 0])
