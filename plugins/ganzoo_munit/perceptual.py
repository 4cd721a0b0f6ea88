"""MUNIT's optional domain-invariant perceptual loss (official ``vgg_w``, 0 in the released configs).

The official loss compares instance-normalised relu5_3 features of VGG16 (the Lua/Caffe weights behind the
official ``vgg16.weight``: BGR input in [0, 255] minus the Caffe means) between a translation and its source:
``mean((IN(vgg(x_ab)) - IN(vgg(x_a)))^2)``. ganzoo downloads nothing: the weights come from the file named by
``losses.vgg_weights`` (the official ``vgg16.weight`` state dict, keys ``conv1_1.weight`` ... ``conv5_3.bias``,
read with ``weights_only=True``, or the same tensors as safetensors); without it the loss is unavailable and a
recipe with ``vgg_w > 0`` stops before training with one sentence.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.api import CheckpointError, RecipeError, layout_mismatch, load_official_checkpoint

#: (name, in, out) of the 13 convolutions, with a 2x2 max-pool after the blocks ending in 1_2, 2_2, 3_3
LAYERS = [("conv1_1", 3, 64), ("conv1_2", 64, 64), ("conv2_1", 64, 128), ("conv2_2", 128, 128),
          ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256),
          ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512),
          ("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512)]
POOL_AFTER = {"conv1_2", "conv2_2", "conv3_3"}
#: Caffe's BGR means, on the [0, 255] scale
BGR_MEAN = (103.939, 116.779, 123.680)


class Vgg16(nn.Module):
    """The official ``Vgg16`` up to relu5_3 (same parameter names)."""

    def __init__(self):
        super().__init__()
        for name, cin, cout in LAYERS:
            setattr(self, name, nn.Conv2d(cin, cout, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name, _, _ in LAYERS:
            x = F.relu(getattr(self, name)(x))
            if name in POOL_AFTER:
                x = F.max_pool2d(x, 2, 2)
        return x


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] RGB -> Caffe input: BGR, [0, 255], minus the channel means (official ``vgg_preprocess``)."""
    bgr = images.flip(1)
    mean = torch.tensor(BGR_MEAN, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return (bgr + 1) * 127.5 - mean


def load_vgg(path: str | Path, where: str) -> Vgg16:
    path = Path(path).expanduser()
    if not path.is_file():
        raise RecipeError(f"{where}: losses.vgg_weights: {path} does not exist; give the official vgg16.weight file "
                          "(ganzoo downloads no VGG weights), or set losses.vgg_w=0.")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = load_official_checkpoint(path)
    net = Vgg16()
    if not isinstance(state, dict) or layout_mismatch(net.state_dict(), state) is not None:
        detail = layout_mismatch(net.state_dict(), state) if isinstance(state, dict) else "is not a state dict"
        raise CheckpointError(f"{path} is not the official VGG16 (conv1_1 ... conv5_3) state dict: it {detail}.")
    net.load_state_dict(state)
    return net.eval().requires_grad_(False)


def perceptual_distance(vgg: Vgg16, image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Official ``compute_vgg_loss``: mean squared distance of instance-normalised relu5_3 features."""
    a = F.instance_norm(vgg(preprocess(image.float())))
    b = F.instance_norm(vgg(preprocess(target.float())))
    return ((a - b) ** 2).mean()
