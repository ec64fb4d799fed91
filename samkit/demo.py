"""``samkit demo``: click once inside each nucleus of the shipped sample image,
commit each mask into a label image, save it with an overlay, and report how
well the masks match the ground truth; measure the objects into ``objects.csv``. Runs through a :class:`samkit.Session`,
like the front ends."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from . import data
from .engine import Mask, Session
from .labels import LabelImage
from .measurement import export_table, measure
from .interaction import CLASSICAL, default_model
from .models.classical import ClassicalModel
from .models.loading import load_model


def click_points(labels: np.ndarray) -> np.ndarray:
    """One (y, x) click per object: its innermost pixel (farthest from the border)."""
    ids = np.unique(labels[labels > 0])
    clicks = []
    for i in ids:
        depth = ndimage.distance_transform_edt(labels == i)
        clicks.append(np.unravel_index(np.argmax(depth), labels.shape))
    return np.array(clicks, dtype=int).reshape(-1, 2)


def choose_model(model: str | None, device: str = "auto", echo=print):
    """SAM for ``model``, or the default model (:func:`samkit.interaction.default_model`) when None."""
    if model is None:
        model, note = default_model()
        if note:
            echo(f"samkit demo: {note}.")
    return ClassicalModel() if model == CLASSICAL else load_model(model, device=device)


def overlay(image: np.ndarray, labels: np.ndarray, clicks: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """RGB uint8 picture: objects tinted in distinct colours and outlined, clicks marked,
    background pixels left exactly as in ``image``."""
    from skimage.color import label2rgb
    from skimage.segmentation import find_boundaries

    picture = image.astype(np.float32) / 255
    colours = label2rgb(labels, bg_label=0)  # (H, W, 3) floats, a distinct colour per label
    inside = labels > 0
    picture[inside] = (1 - alpha) * picture[inside] + alpha * colours[inside]
    picture[find_boundaries(labels, mode="inner")] = (1.0, 1.0, 0.0)
    for y, x in clicks:
        picture[max(y - 2, 0) : y + 3, x] = picture[y, max(x - 2, 0) : x + 3] = (1.0, 0.0, 0.0)
    return (picture * 255).round().astype(np.uint8)


def run_demo(out_dir: str | Path = "samkit-demo", *, model: str | None = None, device: str = "auto", echo=print) -> dict:
    """Run the demo; write ``labels.tif`` and ``overlay.png`` into ``out_dir``; return a summary."""
    from PIL import Image

    image, truth = data.nuclei()
    session = Session(image, choose_model(model, device, echo))
    start = time.perf_counter()
    session.embed_all().result()
    embed_s = time.perf_counter() - start

    clicks = click_points(truth)
    labels = LabelImage(truth.shape, dtype=np.uint16)
    ious, click_ms = [], []
    for y, x in clicks:
        start = time.perf_counter()
        mask = session.segment(points=[[y, x]], labels=[1])
        click_ms.append(1000 * (time.perf_counter() - start))
        if mask.area and labels.read(mask.bbox)[mask.crop].min() == 0:  # something left to add
            labels.commit(mask)
        ious.append(mask.iou(Mask.from_array(truth == truth[y, x])))

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels.to_tiff(out / "labels.tif")
    Image.fromarray(overlay(image, np.asarray(labels), clicks)).save(out / "overlay.png")
    table = measure(labels, image[..., 0], properties=("basic", "shape"))
    export_table(table, out / "objects.csv", overwrite=True)
    summary = {
        "model": session.model.name,
        "image": "DSB2018 ade080c6618c, 520 x 696 fluorescence nuclei (CC0)",
        "clicks": len(clicks),
        "objects": len(labels.objects),
        "mean_iou_vs_ground_truth": round(float(np.mean(ious)), 3),
        "embed_s": round(embed_s, 2),
        "median_click_ms": round(float(np.median(click_ms)), 1),
        "median_area_px": float(table["area_px2"].median()) if len(table) else 0.0,
        "mean_solidity": round(float(table["solidity"].mean()), 3) if len(table) else 0.0,
        "labels": str(out / "labels.tif"),
        "table": str(out / "objects.csv"),
        "overlay": str(out / "overlay.png"),
    }
    for key, value in summary.items():
        echo(f"{key:>25}: {value}")
    return summary
