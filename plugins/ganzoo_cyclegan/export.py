"""What CycleGAN and pix2pix export (``ganzoo export``): each generator as the official test script runs it.

The official ``test.py`` (no ``--eval``) keeps the generator in train mode: batch norm normalises each test image
with its own statistics and dropout stays on. The exported graph does the first exactly, per image, at any batch
(:class:`PerImageBatchNorm`: train-mode batch norm of a batch of one is instance norm with the batch norm's scale and
shift), and leaves dropout out: an exported graph is deterministic (export.json says so where a U-Net has dropout).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class PerImageBatchNorm(nn.Module):
    """``bn`` in train mode on a batch of one image, for every image of the batch: the official test's batch norm."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm):
        super().__init__()
        self.weight = bn.weight
        self.bias = bn.bias
        self.eps = bn.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, weight=self.weight, bias=self.bias, use_input_stats=True, eps=self.eps)


def as_official_test(generator: nn.Module) -> tuple[nn.Module, bool]:
    """A copy of ``generator`` that computes the official test's output per image without dropout, and whether
    dropout was dropped (the original is untouched)."""
    copied = copy.deepcopy(generator).eval()
    dropped = False
    for parent in copied.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(parent, name, PerImageBatchNorm(child))
            elif isinstance(child, nn.Dropout):
                setattr(parent, name, nn.Identity())
                dropped = True
    return copied, dropped


class Clamped(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image).clamp(-1, 1)


def without_dropout(fn):
    """``fn`` run with every dropout probability of the model's networks at 0 (the exported graph's behaviour):
    the reference the tests compare the graph with."""

    def run(model, *args):
        dropouts = [m for net in model.inference_nets().values() for m in net.modules() if isinstance(m, nn.Dropout)]
        saved = [m.p for m in dropouts]
        try:
            for m in dropouts:
                m.p = 0.0
            return fn(*args)
        finally:
            for m, p in zip(dropouts, saved):
                m.p = p

    return run


def generator_graph(model, role: str, target: int, *, stride: int, min_size: int):
    """The export of ``model``'s generator ``role``, which translates into domain index ``target``."""
    from ganzoo.api import ExportGraph, TensorSpec

    net, dropped = as_official_test(model.inference_nets()[role])
    source = model.domains[1 - target]
    notes = ["dropout is left out (the official test keeps it on, which draws noise): the graph is deterministic"] if dropped else []

    def reference(image):
        chosen = torch.full((image.shape[0],), target, dtype=torch.long)
        return without_dropout(lambda: model.translate(image, chosen))(model)

    return ExportGraph(
        name=role, module=Clamped(net),
        inputs=(TensorSpec("image", ("batch", 3, "height", "width"), "image", f"images of {source}"),),
        output=TensorSpec("translated", ("batch", 3, "height", "width"), "image", f"the images translated into {model.domains[target]}"),
        description=f"{source} -> {model.domains[target]}",
        spatial="dynamic", multiple_of=stride, min_size=min_size, notes=notes, reference=reference)
