"""StarGAN v1 networks (Choi et al., CVPR 2018), in the official parameter layout.

The state_dict keys, shapes and parameter counts equal those of the official
``Generator`` / ``Discriminator`` of yunjey/stargan (checked by the tests
against the official key dumps), so official ``G.ckpt`` / ``D.ckpt`` files
load with ``load_state_dict(strict=True)`` after only a safe ``torch.load``.

Official constructor signatures are kept: ``Generator(conv_dim, c_dim, repeat_num)``
and ``Discriminator(image_size, conv_dim, c_dim, repeat_num)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class InstanceNorm(nn.InstanceNorm2d):
    """Affine instance norm that always normalises with each image's own statistics.

    The official norms are ``InstanceNorm2d(affine=True, track_running_stats=True)``,
    so their files carry ``running_mean`` / ``running_var`` / ``num_batches_tracked``;
    we keep those buffers so the keys match. But the official test code never calls
    ``.eval()``: its generator always normalises per image, and the running averages
    are never used. Normalising with per-image statistics in every mode gives the
    official images whether or not a caller switches to eval mode; the buffers
    are carried along untouched.
    """

    def __init__(self, num_features: int):
        super().__init__(num_features, affine=True, track_running_stats=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, weight=self.weight, bias=self.bias, use_input_stats=True, eps=self.eps)


class ResidualBlock(nn.Module):
    """conv3x3 - IN - ReLU - conv3x3 - IN, plus the identity (no activation after the sum)."""

    def __init__(self, channels: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1, bias=False),
            InstanceNorm(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1, bias=False),
            InstanceNorm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class Generator(nn.Module):
    """G(x, c): the image with the target label vector tiled over it, encoded, transformed, decoded.

    7x7 conv, two stride-2 downsampling convs, ``repeat_num`` residual blocks, two
    stride-2 transposed convs, 7x7 conv + tanh. Convs carry no bias (the norms
    that follow have one). Padding is zeros: the official code notes that
    reflection padding breaks the tiled-label conditioning.
    """

    def __init__(self, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6):
        super().__init__()
        self.c_dim = c_dim
        #: two stride-2 levels, and the label map is tiled to the input's size: any multiple of 4 works
        #: (``ganzoo translate --keep-size``)
        self.size_multiple = 4
        layers: list[nn.Module] = [
            nn.Conv2d(3 + c_dim, conv_dim, kernel_size=7, stride=1, padding=3, bias=False),
            InstanceNorm(conv_dim),
            nn.ReLU(inplace=True),
        ]
        width = conv_dim
        for _ in range(2):  # downsampling
            layers += [
                nn.Conv2d(width, width * 2, kernel_size=4, stride=2, padding=1, bias=False),
                InstanceNorm(width * 2),
                nn.ReLU(inplace=True),
            ]
            width *= 2
        layers += [ResidualBlock(width) for _ in range(repeat_num)]  # bottleneck
        for _ in range(2):  # upsampling
            layers += [
                nn.ConvTranspose2d(width, width // 2, kernel_size=4, stride=2, padding=1, bias=False),
                InstanceNorm(width // 2),
                nn.ReLU(inplace=True),
            ]
            width //= 2
        layers += [nn.Conv2d(width, 3, kernel_size=7, stride=1, padding=3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``x``: (N, 3, H, W) in [-1, 1]; ``c``: (N, c_dim) target label vector (one-hot or multi-hot)."""
        label_map = c.to(x.dtype).view(c.shape[0], c.shape[1], 1, 1).expand(-1, -1, x.shape[2], x.shape[3])
        return self.main(torch.cat([x, label_map], dim=1))


class Discriminator(nn.Module):
    """PatchGAN critic with an auxiliary domain classifier; no normalisation, LeakyReLU 0.01.

    ``repeat_num`` stride-2 4x4 convs (width doubling from ``conv_dim``) shrink the
    image to ``image_size / 2**repeat_num``; then two bias-free heads: ``conv1``
    (3x3, the real/fake score map) and ``conv2`` (a conv as large as the remaining
    map, the ``c_dim`` domain logits).
    """

    def __init__(self, image_size: int = 128, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6):
        super().__init__()
        final_size = image_size // 2**repeat_num
        if final_size < 1 or image_size % 2**repeat_num:
            raise ValueError(
                f"image_size {image_size} is not divisible by 2**repeat_num = {2**repeat_num}; "
                f"use a smaller discriminator repeat_num"
            )
        layers: list[nn.Module] = [nn.Conv2d(3, conv_dim, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.01)]
        width = conv_dim
        for _ in range(1, repeat_num):
            layers += [nn.Conv2d(width, width * 2, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.01)]
            width *= 2
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(width, 1, kernel_size=3, stride=1, padding=1, bias=False)
        self.conv2 = nn.Conv2d(width, c_dim, kernel_size=final_size, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(scores (N, 1, h, w), domain logits (N, c_dim))``."""
        features = self.main(x)
        return self.conv1(features), self.conv2(features).flatten(1)
