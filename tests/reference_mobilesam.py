"""Import MobileSAM's reference code (tests only).

The ``mobile_sam`` package imports ``timm`` for four small helpers in its
TinyViT file (``DropPath``, ``to_2tuple``, ``trunc_normal_``,
``register_model``), and torchvision through its predictor. Neither installs
here (timm needs torchvision), so when timm is absent a stand-in module with
those helpers is put into ``sys.modules`` first, beside the torchvision
stand-in of :mod:`reference`. samkit itself never imports timm.
"""

from __future__ import annotations

import importlib.util
import sys
import types

import pytest
import torch
from torch import nn

from reference import install_torchvision_standin


class _DropPath(nn.Module):
    # stochastic depth; MobileSAM builds vit_t with drop_path_rate=0, so this is never active
    def __init__(self, drop_prob: float | None = None) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.drop_prob:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


def _to_2tuple(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _trunc_normal_(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0):
    return nn.init.trunc_normal_(tensor, mean=mean, std=std, a=a, b=b)


def _register_model(fn):
    return fn


def install_timm_standin() -> None:
    """Put a minimal ``timm`` into ``sys.modules`` unless a real one is installed."""
    if "timm" in sys.modules or importlib.util.find_spec("timm") is not None:
        return
    timm = types.ModuleType("timm")
    models = types.ModuleType("timm.models")
    layers = types.ModuleType("timm.models.layers")
    registry = types.ModuleType("timm.models.registry")
    layers.DropPath = _DropPath
    layers.to_2tuple = _to_2tuple
    layers.trunc_normal_ = _trunc_normal_
    registry.register_model = _register_model
    timm.models, models.layers, models.registry = models, layers, registry
    sys.modules.update(
        {"timm": timm, "timm.models": models, "timm.models.layers": layers, "timm.models.registry": registry}
    )


def import_mobile_sam():
    """MobileSAM's reference package, or skip the test when it is not installed."""
    install_torchvision_standin()
    install_timm_standin()
    return pytest.importorskip("mobile_sam", reason="the reference `mobilesam-mirror` (mobile_sam) is a test extra")


def randomize_tinyvit_(model: nn.Module, seed: int) -> nn.Module:
    """Random values for what :func:`reference.randomize_` leaves near their
    defaults in a TinyViT: BatchNorm running statistics and scales (so that
    eval-mode BatchNorm is no identity, and a wrong fold or order shows), and
    the per-offset attention biases (so that a wrong offset index shows).

    Ends with ``model.eval()``: MobileSAM's attention caches its bias table
    there, so the cache must be rebuilt after the biases change.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                module.running_var.copy_(0.5 + torch.rand(n, generator=gen))
                module.weight.copy_(0.5 + torch.rand(n, generator=gen))
                module.num_batches_tracked.fill_(1000)
        for name, p in model.named_parameters():
            if name.endswith("attention_biases"):
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
    return model.eval()
