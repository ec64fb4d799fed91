"""The ways ``segment_all`` finds the objects of one window, their settings, and which one a model gets.

=========  ============================================================  =============================
mode       what happens in a window                                      needs
=========  ============================================================  =============================
'apg'      point prompts at the object centres an instance decoder       an instance decoder (micro-sam
           predicts, each drawn by SAM's mask decoder (micro-sam's APG)  ``*_lm``, ``*_em_organelles``)
'ais'      the instance decoder's maps, a seeded watershed (micro-sam's  an instance decoder
           AIS): no prompts
'prompts'  prompts where the image has objects of the object size        a point decoder (any SAM)
           (blob detection), a coarse grid for larger ones
'grid'     SAM's point grid (``points_per_side ** 2`` prompts)            a point decoder
=========  ============================================================  =============================

'auto' picks 'apg' when the model has an instance decoder, else 'prompts';
'grid' when ``points_per_side`` is given.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import NamedTuple

import numpy as np

from ..errors import InvalidSettingError, UnsupportedModelError
from . import generate

MODES = ("auto", "apg", "ais", "prompts", "grid")
GRID_POINTS = 32  # SAM's points_per_side
APG_MIN_AREA = 25  # micro-sam's APG min_size


@dataclass(frozen=True)
class Settings:
    """Every parameter of :func:`samkit.segment_all` that says how windows are segmented.

    See :func:`samkit.segment_all` for what each one does. ``object_size`` is
    in pixels here (physical units are converted before).
    """

    mode: str = "auto"
    object_size: float | None = None
    max_prompts: int = 1024
    points_per_side: int | None = None
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    min_area: int | None = None
    # micro-sam's post-processing of its instance decoder (InstanceSegmentationWithDecoder.generate defaults)
    center_distance_threshold: float = 0.5
    boundary_distance_threshold: float = 0.5
    foreground_threshold: float = 0.5
    foreground_smoothing: float = 1.0
    distance_smoothing: float = 1.6
    nms_threshold: float = 0.9  # APG's mask NMS (AutomaticPromptGenerator.generate)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidSettingError(f"mode={self.mode!r}: choose one of {MODES}")
        _positive_int(self, "points_per_batch")
        _positive_int(self, "max_prompts")
        if self.points_per_side is not None:
            _positive_int(self, "points_per_side")
        for name in ("pred_iou_thresh", "stability_score_thresh", "center_distance_threshold",
                     "boundary_distance_threshold", "foreground_threshold"):  # fmt: skip
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InvalidSettingError(f"{name}={getattr(self, name)!r}: must lie in [0, 1] (0 keeps every mask)")
        for name in ("box_nms_thresh", "nms_threshold"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise InvalidSettingError(f"{name}={getattr(self, name)!r}: must lie in (0, 1] (1 keeps all but exact duplicates)")
        if not self.stability_score_offset > 0:
            raise InvalidSettingError(f"stability_score_offset={self.stability_score_offset!r}: must be > 0 (SAM uses 1.0)")
        for name in ("foreground_smoothing", "distance_smoothing"):
            if not getattr(self, name) >= 0:
                raise InvalidSettingError(f"{name}={getattr(self, name)!r}: must be >= 0 (a Gaussian sigma in pixels; 0 = off)")
        if self.min_area is not None and (isinstance(self.min_area, bool) or not isinstance(self.min_area, (int, np.integer)) or self.min_area < 0):
            raise InvalidSettingError(f"min_area={self.min_area!r}: must be an int >= 0 (pixels; 0 keeps every size)")
        size = self.object_size
        if isinstance(size, (tuple, list)) and len(size) == 2 and isinstance(size[1], str):
            size = size[0]  # (value, unit): converted to pixels when the image is known
        if size is not None and not (isinstance(size, (int, float, np.number)) and not isinstance(size, bool) and 0 < size < 1e6):
            raise InvalidSettingError(f"object_size={self.object_size!r}: give the objects' diameter in pixels, or (value, unit)")
        if self.mode == "grid" and self.points_per_side is None:
            object.__setattr__(self, "points_per_side", GRID_POINTS)
        if self.mode == "auto" and self.points_per_side is not None:
            object.__setattr__(self, "mode", "grid")
        if self.min_area is None and self.mode != "auto":
            object.__setattr__(self, "min_area", APG_MIN_AREA if self.mode == "apg" else 0)


def _positive_int(settings: Settings, name: str) -> None:
    value = getattr(settings, name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidSettingError(f"{name}={value!r}: must be a positive int")


def settings(**options) -> Settings:
    """:class:`Settings` from :func:`samkit.segment_all`'s keyword arguments (a TypeError names unknown ones)."""
    unknown = set(options) - {f.name for f in fields(Settings)}
    if unknown:
        raise TypeError(f"segment_all() got unexpected keyword arguments {sorted(unknown)}")
    return Settings(**options)


# -- the mode a model gets ------------------------------------------------------


def has_instance_decoder(model) -> bool:
    return getattr(model, "instance_decoder", None) is not None


def choose(settings: Settings, model) -> Settings:
    """``settings`` with 'auto' resolved for ``model`` (a window model); an error when it lacks what the mode needs."""
    mode = settings.mode
    if mode == "auto":
        mode = "apg" if has_instance_decoder(model) else "prompts"
    if mode in ("apg", "ais") and not has_instance_decoder(model):
        raise UnsupportedModelError(
            f"mode={mode!r} needs an instance decoder, and {getattr(model, 'name', type(model).__name__)} has none; "
            "micro-sam's *_lm and *_em_organelles models have one (e.g. 'vit_b_lm'), or use mode='prompts'"
        )
    if mode != "ais" and getattr(model, "point_decoder", None) is None:
        raise UnsupportedModelError(
            f"{getattr(model, 'name', type(model).__name__)} cannot segment automatically: its window model has no "
            "point_decoder (see samkit.engine.models); use SAM, 'classical' or samkit.testing.OracleModel"
        )
    min_area = settings.min_area
    if min_area is None:
        min_area = APG_MIN_AREA if mode == "apg" else 0
    return replace(settings, mode=mode, min_area=min_area)


def decide(settings: Settings, session) -> Settings:
    """The settings of a run on ``session``: its mode, and for 'prompts' the object size of the whole image."""
    from .scale import estimate_object_size, in_pixels

    settings = choose(settings, session.model)
    size = in_pixels(settings.object_size, session.image)
    if size is not None and size < 1:
        raise InvalidSettingError(f"object_size={settings.object_size!r} is {size:.2f} pixels; objects need at least 1 pixel")
    if settings.mode == "prompts" and size is None:
        size = estimate_object_size(session, settings)
    return replace(settings, object_size=size)


def describe(settings: Settings, grid) -> str:
    """One line saying what a run does, before it starts."""
    ny, nx = grid.grid_shape
    what = {
        "apg": "prompts at the centres the instance decoder predicts (micro-sam's APG)",
        "ais": "the instance decoder's maps, seeded watershed (micro-sam's AIS)",
        "prompts": f"prompts at objects of about {settings.object_size:.1f} px and a coarse grid, at most "
        f"{settings.max_prompts} per window" if settings.object_size else "prompts at objects",
        "grid": f"SAM's point grid, {settings.points_per_side} x {settings.points_per_side} prompts per window",
        "auto": "the best mode the model offers",
    }[settings.mode]
    return f"mode {settings.mode!r}: {what}; {ny} x {nx} windows of {grid.tile_size} px"


# -- one window -------------------------------------------------------------------


class WindowReport(NamedTuple):
    """What one window's segmentation cost."""

    index: tuple[int, int]
    mode: str
    decoder_calls: int  # prompts run through SAM's mask decoder
    seconds: float  # embedding (or reading it from the store) included


class WindowResult(NamedTuple):
    """One window segmented: labels (h, w) int32 1..n, with each label's (n,) score and stability."""

    labels: np.ndarray
    score: np.ndarray
    stability: np.ndarray
    mode: str
    decoder_calls: int

    def report(self, index, seconds: float) -> WindowReport:
        return WindowReport(index, self.mode, self.decoder_calls, round(seconds, 4))


class _Counted:
    """A ``point_decoder`` that counts the prompts it was given."""

    def __init__(self, decode_points) -> None:
        self.decode_points, self.calls = decode_points, 0

    def __call__(self, points, **options):
        self.calls += len(points)
        return self.decode_points(points, **options)


def segment_window(session, index: tuple[int, int], settings: Settings) -> WindowResult:
    """Window ``index`` of ``session`` segmented in the mode of ``settings`` (see the module's table)."""
    from .stitch import inner_edges

    model, grid = session.model, session.grid
    settings = choose(settings, model) if settings.mode == "auto" else settings
    window = grid.window(index)
    embedding = session.compute([index])[0]
    edges = inner_edges(grid, index)
    if settings.mode == "ais":
        from .ais import instances

        labels = instances(model.instance_decoder(embedding, window), settings)
        ones = np.ones(int(labels.max(initial=0)), np.float32)
        return WindowResult(labels, ones, ones.copy(), "ais", 0)
    decode = _Counted(model.point_decoder(embedding, window))
    if settings.mode == "grid":
        objects = generate.window_objects(decode, grid.window_shape, settings, edges)
    elif settings.mode == "prompts":
        from .prompts import window_objects
        from .stitch import core

        pixels = session.intensity.apply(session.image.read(*window, level=session.level))
        y0, x0, y1, x1 = core(grid, index)
        margin = int(np.ceil(settings.object_size))  # objects reaching into the core from the halo
        area = (y0 - window[0] - margin, x0 - window[1] - margin, y1 - window[0] + margin, x1 - window[1] + margin)
        objects = window_objects(decode, pixels, settings, edges, area)
    else:
        from .apg import window_objects

        objects = window_objects(decode, model.instance_decoder(embedding, window), settings)
    if settings.mode == "apg":
        from .apg import paint

        labels, score, stability = paint(objects, grid.window_shape, settings.min_area)
    else:
        labels, score, stability = generate.paint(objects, grid.window_shape)
    return WindowResult(labels, score, stability, settings.mode, decode.calls)


# -- the run ------------------------------------------------------------------------


@dataclass
class Run:
    """A finished :func:`samkit.automatic.run`: the labels and what was done to get them."""

    labels: object
    mode: str
    object_size: float | None
    windows: list

    def decoder_calls(self) -> np.ndarray:
        """(windows,) prompts decoded per window."""
        return np.array([w.decoder_calls for w in self.windows], int)

    def summary(self) -> str:
        calls = self.decoder_calls()
        modes = sorted({w.mode for w in self.windows}) or [self.mode]
        size = f", object size {self.object_size:.1f} px" if self.object_size else ""
        calls_text = f"decoder calls per window: median {int(np.median(calls))}, max {int(calls.max())}" if len(calls) else ""
        return f"mode {'/'.join(modes)}{size}; {len(self.windows)} windows; {calls_text}; {len(self.labels.objects)} objects"


def keep_scores(labels, resolved, mode: str) -> None:
    """Each object's predicted IoU, stability and ``mode`` as attributes of ``labels`` (one journaled operation)."""
    if resolved.count == 0 or not hasattr(labels, "set_attributes"):
        return
    labels.set_attributes({
        int(i): {"score": float(s), "stability": float(t), "mode": mode}
        for i, s, t in zip(range(1, resolved.count + 1), resolved.score, resolved.stability)
    })  # fmt: skip
