"""What the annotator is given, turned into engine objects: a session, a label image, controls."""

from __future__ import annotations

import numpy as np

from ..engine.session import Session
from ..errors import InvalidLabelError
from ..interaction import default_model
from ..intensity import sample_pixels
from ..labels import LabelImage
from .controls import Controls


def session_for(image, model, options) -> tuple[Session, str]:
    """(session, note): ``note`` says why the model is not SAM when none was given (empty: it is)."""
    if isinstance(image, Session):
        return image, ""
    if model is not None:
        return Session(image, model, **options), ""
    model, note = default_model()  # never a download the user did not ask for
    return Session(image, model, **options), note


def label_image(labels, autosave, shape) -> LabelImage:
    """The label image to annotate into: given, reopened from a folder, or new (on disk with ``autosave``)."""
    if isinstance(labels, LabelImage) or (labels is not None and not hasattr(labels, "shape")):
        labels = labels if isinstance(labels, LabelImage) else LabelImage.open(labels)
        if tuple(labels.shape) != tuple(shape):
            raise InvalidLabelError(f"labels of shape {labels.shape} do not fit an image of shape {tuple(shape)}")
        if autosave is not None:
            labels.save(autosave, autosave=True)  # the folder the user named for autosave
        return labels
    return LabelImage(shape, path=autosave, initial=labels)


def controls_for(session: Session) -> Controls:
    """Controls whose channel choice and contrast start as the model sees the image."""
    image = session.image
    n = image.shape[2]
    names = image.channel_names or [f"channel {i}" for i in range(n)]
    if n == 1:
        options = [("grey", (0,))]
    else:
        composite = "RGB" if n == 3 and not image.channel_names else " + ".join(names[:3])
        options = [(composite, tuple(range(min(n, 3))))] + [(name, (i,)) for i, name in enumerate(names)]
    chosen = tuple(session.intensity.channels)
    if chosen not in [value for _, value in options]:
        options.insert(0, ("model input", chosen))
    integer = image.dtype.kind in "uib"
    if image.dtype in (np.uint8, bool):
        bounds = contrast = (0, 255)
    else:
        coarsest = len(image.levels) - 1
        sample = sample_pixels(lambda *box: image.read(*box, level=coarsest), image.level_shapes[-1][:2])
        finite = sample[np.isfinite(sample)] if sample.dtype.kind == "f" else sample
        bounds = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        low, high = session.intensity.low, session.intensity.high
        contrast = (min(low), max(high)) if low is not None else bounds
        if integer:
            bounds, contrast = tuple(int(v) for v in bounds), tuple(int(round(v)) for v in contrast)
        if bounds[1] <= bounds[0]:
            bounds = (bounds[0], bounds[0] + 1)
        contrast = (max(contrast[0], bounds[0]), min(contrast[1], bounds[1]))
    controls = Controls(options, bounds, contrast, integer)
    controls.channels.value = chosen
    return controls
