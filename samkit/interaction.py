"""The one interaction policy of samkit's front ends: keys, default model, prompt bounds, commit while decoding.

The Jupyter widget, the napari plugin, the CLI and the demo all follow these rules,
written here once (no widget or Qt imports):

* **Keys** (:data:`ACTIONS`, :data:`KEYS`): the same key for an action in both front ends
  wherever the host allows. napari's own keys win where they clash: samkit binds no key
  napari already uses on the layers it works with (points, shapes, labels) or on the
  viewer; for brush, eraser, fill, pan and layer visibility the Jupyter widget uses
  napari's own labels-layer keys, so one set of keys works in both. :func:`key_help`
  gives the rows of the always-visible key help.
* **Default model** (:func:`default_model`): a cached registry model, by a preference
  list; never a download the user did not ask for; else ``"classical"`` with a note saying so.
* **Prompt bounds** (:func:`check_point`, :func:`clip_box`): a point must lie on a pixel
  of the image; a dragged box is clipped to the image, and ignored when less than a pixel
  of it is inside.
* **Commit while decoding** (:func:`commit`): the commit waits for the decode under way
  (at most :data:`COMMIT_WAIT_S`), then commits the object it shows.

Keys are written as napari writes them: ``"C"``, ``"Shift-C"``, ``"ArrowUp"``, ``"["``.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from .errors import InvalidPromptError

log = logging.getLogger(__name__)

BIND, OWN, NONE = "bind", "own", "none"  # in napari: samkit binds the key / napari's own key does it / not there


class Action(NamedTuple):
    """One thing a user does with a key.

    ``napari``: ``"bind"`` (the plugin binds ``key``), ``"own"`` (napari's own key does the
    same on the labels layer, so the plugin binds nothing) or ``"none"`` (napari does it its
    own way: mouse wheel, Ctrl-R, its dims slider). ``also``: more keys for it in Jupyter.
    """

    key: str
    text: str
    napari: str = BIND
    also: tuple[str, ...] = ()


ACTIONS: dict[str, Action] = {
    "commit": Action("C", "commit the current object as a new label"),
    "clear": Action("Shift-C", "clear the prompts and the preview"),
    "undo": Action("U", "undo the last prompt, else the last change of the labels"),
    "redo": Action("Shift-U", "redo"),
    "next_label": Action("N", "start a new object (the next commit gets a new id)"),
    "toggle_sign": Action("G", "switch new points between object (+) and background (−)"),
    "erase_object": Action("Shift-E", "erase the object under the mouse"),
    "point_mode": Action("O", "prompt mode: click adds a point (Jupyter: a drag draws a box)"),
    "box_mode": Action("Shift-B", "box mode: a drag draws the box"),
    "brush": Action("P", "brush: paint the selected object", OWN),
    "eraser": Action("E", "eraser: set pixels to background", OWN),
    "fill": Action("F", "fill: flood a region with the selected object", OWN),
    "pan_mode": Action("Z", "pan mode: a drag moves the view", OWN),
    "brush_smaller": Action("[", "smaller brush", OWN),
    "brush_larger": Action("]", "larger brush", OWN),
    "toggle_labels": Action("V", "show / hide the labels", OWN),
    "zoom_in": Action("=", "zoom in", NONE, also=("+",)),
    "zoom_out": Action("-", "zoom out", NONE),
    "fit": Action("0", "whole image", NONE),
    "pan_up": Action("ArrowUp", "move the view up", NONE),
    "pan_down": Action("ArrowDown", "move the view down", NONE),
    "pan_left": Action("ArrowLeft", "move the view left", NONE),
    "pan_right": Action("ArrowRight", "move the view right", NONE),
}

KEYS: dict[str, str] = {name: action.key for name, action in ACTIONS.items()}  # action name -> key


def key_name(key: str, *, shift: bool = False, ctrl: bool = False, alt: bool = False, meta: bool = False) -> str | None:
    """A browser key event (``KeyboardEvent.key`` + modifiers) as samkit writes keys, or None when samkit leaves it alone.

    Letters become upper case with ``"Shift-"`` when Shift is held; other characters are
    taken as typed (``"+"`` already says Shift); named keys get ``"Shift-"`` too. Any key
    with Ctrl, Alt or Meta belongs to the browser and the host.
    """
    if ctrl or alt or meta or not key:
        return None
    if len(key) == 1:
        return f"Shift-{key.upper()}" if shift and key.isalpha() else key.upper()
    return f"Shift-{key}" if shift and key != "Shift" else key


def action_for(key: str | None, host: str = "jupyter") -> str | None:
    """The action of ``key`` (as :func:`key_name` writes it) in ``host`` (``"jupyter"`` or ``"napari"``), or None."""
    for name, action in ACTIONS.items():
        if host == "napari" and action.napari != BIND:
            continue
        if key == action.key or host == "jupyter" and key in action.also:
            return name
    return None


def key_help(host: str = "jupyter") -> list[tuple[str, str]]:
    """(key, what it does) for the key help of ``host``; in napari, napari's own keys say so."""
    rows = []
    for action in ACTIONS.values():
        if host == "jupyter":
            rows.append((" / ".join((action.key, *action.also)), action.text))
        elif action.napari != NONE:
            own = " (napari's own key, on the labels layer; V: the selected layer)" if action.key == "V" else \
                " (napari's own key, on the labels layer)"
            rows.append((action.key, action.text + (own if action.napari == OWN else "")))
    return rows


# -- default model --

# registry models tried, in this order, when one is already in the cache (then any other cached one)
PREFERRED = ("vit_b_lm", "vit_b", "vit_t_lm", "vit_t", "sam2.1_hiera_tiny", "sam2.1_hiera_small",
             "sam2.1_hiera_base_plus", "vit_l_lm", "vit_l", "sam2.1_hiera_large", "vit_h")  # fmt: skip
CLASSICAL = "classical"


class ModelChoice(NamedTuple):
    """The model to use when none was given: a registry name or ``"classical"``; ``note`` says why not SAM ("" when SAM)."""

    model: str
    note: str


def default_model() -> ModelChoice:
    """The model a front end, the CLI or the demo uses when the user names none.

    The first cached registry model in :data:`PREFERRED` order (then any other cached
    one), so that nothing is downloaded without the user asking; else the classical model
    (Otsu + watershed, not SAM), with a note saying so and how to get SAM.
    """
    from .models.registry import list_models
    from .models.weights import cache_dir

    names = list(dict.fromkeys([*PREFERRED, *list_models()]))
    for name in names:
        if name in list_models() and _cached(name):
            return ModelChoice(name, "")
    note = (f"no SAM checkpoint in the cache ({cache_dir()}): using the classical fallback (not SAM); "
            "for SAM: `samkit models download vit_b_lm`, or pass a checkpoint path as the model")  # fmt: skip
    return ModelChoice(CLASSICAL, note)


def model_choices() -> list[tuple[str, str]]:
    """(value, label) of the models a model picker offers: the classical fallback, then the registry, cached first."""
    from .models.registry import list_models

    names = sorted(list_models(), key=lambda name: not _cached(name))
    return [(CLASSICAL, "classical (no weights; not SAM)")] + [
        (name, f"{name} ({'downloaded' if _cached(name) else 'downloads when loaded'})") for name in names
    ]


def describe(model) -> str:
    """A model as a front end shows it: its name, device and precision (``"SAM vit_b · cuda · bf16"``)."""
    sam = getattr(model, "sam", model)
    device = getattr(getattr(sam, "device", None), "type", None) or "cpu"
    precision = getattr(sam, "precision", None)
    return " · ".join(str(part) for part in (getattr(model, "name", model), device, precision) if part)


def _cached(name: str) -> bool:
    from .models.weights import is_cached

    try:
        return is_cached(name)
    except Exception:  # a broken cache folder must not break a front end
        log.debug("cannot tell whether %s is cached", name, exc_info=True)
        return False


# -- prompt bounds --


def check_point(y: float, x: float, shape) -> tuple[float, float]:
    """(y, x) when it lies on a pixel of an image of ``shape`` (H, W); else InvalidPromptError saying where."""
    h, w = int(shape[0]), int(shape[1])
    if not (0 <= y < h and 0 <= x < w):
        raise InvalidPromptError(f"the point (y {y:.0f}, x {x:.0f}) is outside the image ({h} × {w} pixels)")
    return float(y), float(x)


def clip_box(box, shape) -> tuple[float, float, float, float] | None:
    """A dragged box (two corners in any order, (y0, x0, y1, x1)) clipped to the image; None when under a pixel is left."""
    h, w = float(shape[0]), float(shape[1])
    y0, y1 = sorted((float(box[0]), float(box[2])))
    x0, x1 = sorted((float(box[1]), float(box[3])))
    y0, x0, y1, x1 = max(y0, 0.0), max(x0, 0.0), min(y1, h), min(x1, w)
    return (y0, x0, y1, x1) if y1 - y0 >= 1 and x1 - x0 >= 1 else None


# -- commit while decoding --

COMMIT_WAIT_S = 60.0  # the longest a commit waits for the decode under way (which may wait for its tile's embedding)


def commit(annotation, label: int | None = None) -> int:
    """Commit ``annotation``'s object once the decode under way has finished (at most :data:`COMMIT_WAIT_S`).

    Front ends call this off their UI thread. Raises :class:`~samkit.errors.NotReadyError`
    when the decode is still running after that time, :class:`~samkit.errors.InvalidLabelError`
    when there is no object to commit.
    """
    return annotation.commit(label, timeout=COMMIT_WAIT_S)
