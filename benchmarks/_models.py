"""Models the benchmarks time: SAM's real cost, with masks that are real objects."""

from __future__ import annotations

import numpy as np

from samkit.engine.models import window_model
from samkit.testing import OracleModel


class SamDecoderOracle:
    """SAM's embedding and decoder are run (and timed); the answer is the ground-truth object."""

    is_sam = True

    def __init__(self, sam, labels) -> None:
        self.sam, self.oracle = window_model(sam), OracleModel(labels)
        self.name = f"{self.sam.name}, masks from ground truth"

    def embedding_spec(self, window_shape):
        return self.sam.embedding_spec(window_shape)

    def signature(self):
        return self.sam.signature()

    def embed(self, pixels, windows):
        return self.sam.embed(pixels, windows)

    def decoder(self, embedding, window):
        sam_decode = self.sam.decoder(embedding, window)
        truth = self.oracle.label_window(np.zeros((window[2] - window[0], window[3] - window[1], 3), np.uint8), window)
        oracle_decode = self.oracle.decoder(truth, window)

        def decode(**prompts):
            sam_decode(**prompts)
            return oracle_decode(**prompts)

        return decode
