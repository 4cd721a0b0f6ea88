"""StarGAN v2 networks (Choi et al., CVPR 2020), parameter layout of clovaai/stargan-v2.

The four networks -- Generator, MappingNetwork, StyleEncoder, Discriminator -- have exactly the
state_dict keys, key order and shapes of the official ``core/model.py`` (commit 875b70a1), so the
released checkpoints load with ``load_state_dict(strict=True)``. Module names and the order in which
submodules are assigned are therefore part of the file format: do not rename or reorder them.

Beyond the official code, widths can be made narrower (``dim_in``, ``hidden_dim``) and images as
small as 16 px are accepted, so that tests and quick runs fit on a CPU. With the defaults every
network is the official one.

Every constructor argument is a plain int/float/None, because the arguments are written to a model
folder's config.json and the networks are rebuilt from it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .resampling import conv3x3_then_pool, upsample_nearest2x, upsample_then_conv3x3

__all__ = [
    "ResBlk",
    "AdaIN",
    "AdainResBlk",
    "HighPass",
    "Generator",
    "MappingNetwork",
    "StyleEncoder",
    "Discriminator",
    "he_init",
]

# Negative slope of every LeakyReLU in the convolutional networks (official value).
LRELU_SLOPE = 0.2

# Feature-map sizes at which the generator adds the masked high-pass skip (official: 32, 64, 128).
MASK_SKIP_SIZES = (32, 64, 128)

# Number of bottleneck blocks (no resampling) in the generator's encoder and decoder.
NUM_BOTTLENECK_BLOCKS = 2

# Smallest image size we build; below this the generator would have no room to downsample.
MIN_IMG_SIZE = 16


def _check_img_size(img_size: int) -> int:
    """The layer counts come from log2(img_size), so it must be a power of two >= 16."""
    if not isinstance(img_size, int) or img_size < MIN_IMG_SIZE or img_size & (img_size - 1):
        raise ValueError(f"img_size must be a power of two >= {MIN_IMG_SIZE}, got {img_size!r}")
    return int(math.log2(img_size))


def _base_width(img_size: int, max_conv_dim: int, dim_in: int | None) -> int:
    """Channels after the first conv: official 2**14 // img_size (64 at 256 px).

    The official formula explodes for small images (1024 at 16 px), so it is capped at
    max_conv_dim; for img_size >= 32 with max_conv_dim 512 the cap never bites.
    """
    if dim_in is None:
        return min(2**14 // img_size, max_conv_dim)
    if dim_in < 1:
        raise ValueError(f"dim_in must be a positive channel count, got {dim_in!r}")
    return dim_in


# --------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------

class ResBlk(nn.Module):
    """Pre-activation residual block used by the encoder, style encoder and discriminator.

    residual: [IN] -> LReLU -> conv3x3 (in->in) -> [avgpool] -> [IN] -> LReLU -> conv3x3 (in->out)
    shortcut: [conv1x1 without bias when in != out] -> [avgpool]
    output:   (shortcut + residual) / sqrt(2), which keeps unit variance (official comment).
    """

    def __init__(
        self, dim_in: int, dim_out: int, normalize: bool = False, downsample: bool = False
    ):
        super().__init__()
        self.normalize = normalize
        self.downsample = downsample
        self.learned_shortcut = dim_in != dim_out
        # Assignment order fixes the state_dict order: conv1, conv2, norm1, norm2, conv1x1.
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        if normalize:
            # Both norms see dim_in channels; affine, no running statistics (official).
            self.norm1 = nn.InstanceNorm2d(dim_in, affine=True)
            self.norm2 = nn.InstanceNorm2d(dim_in, affine=True)
        if self.learned_shortcut:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        # official order: conv1x1, then pool; a 1x1 convolution without bias commutes with average pooling, so it
        # runs on the 4x smaller input
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        if self.learned_shortcut:
            x = self.conv1x1(x)
        return x

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = self.norm1(x)
        x = F.leaky_relu(x, LRELU_SLOPE)
        x = conv3x3_then_pool(self.conv1, x) if self.downsample else self.conv1(x)
        if self.normalize:
            x = self.norm2(x)
        return self.conv2(F.leaky_relu(x, LRELU_SLOPE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.shortcut(x) + self.residual(x)) / math.sqrt(2)


class AdaIN(nn.Module):
    """Adaptive instance norm: (1 + gamma(s)) * IN(x) + beta(s); gamma, beta from one linear."""

    def __init__(self, style_dim: int, num_features: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(num_features, affine=False)
        self.fc = nn.Linear(style_dim, num_features * 2)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.fc(s)[:, :, None, None].chunk(2, dim=1)
        return (1 + gamma) * self.norm(x) + beta


class AdainResBlk(nn.Module):
    """Style-modulated residual block of the generator's decoder.

    residual: AdaIN -> LReLU -> [nearest x2] -> conv3x3 (in->out) -> AdaIN -> LReLU -> conv3x3
    shortcut: [nearest x2] -> [conv1x1 without bias when in != out]
    With w_hpf > 0 the official block returns the residual alone (no skip); the generator's masked
    high-pass path then carries the fine detail instead.
    """

    def __init__(
        self,
        dim_in: int,
        dim_out: int,
        style_dim: int = 64,
        w_hpf: float = 0,
        upsample: bool = False,
    ):
        super().__init__()
        self.w_hpf = w_hpf
        self.upsample = upsample
        self.learned_shortcut = dim_in != dim_out
        # Assignment order fixes the state_dict order: conv1, conv2, norm1, norm2, conv1x1.
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = AdaIN(style_dim, dim_in)
        self.norm2 = AdaIN(style_dim, dim_out)
        if self.learned_shortcut:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        # a 1x1 convolution without bias commutes with nearest upsampling: run it on the 4x smaller input
        if self.learned_shortcut:
            x = self.conv1x1(x)
        if self.upsample:
            x = upsample_nearest2x(x)
        return x

    def residual(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.norm1(x, s), LRELU_SLOPE)
        x = upsample_then_conv3x3(self.conv1, x) if self.upsample else self.conv1(x)
        x = F.leaky_relu(self.norm2(x, s), LRELU_SLOPE)
        return self.conv2(x)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        out = self.residual(x, s)
        if self.w_hpf == 0:
            out = (out + self.shortcut(x)) / math.sqrt(2)
        return out


class HighPass(nn.Module):
    """Fixed depthwise 3x3 Laplacian-like filter, scaled by 1 / w_hpf.

    The kernel is a persistent buffer named ``filter`` because the official generator's state_dict
    contains it (``hpf.filter``); official checkpoints would not load strictly without it.
    """

    def __init__(self, w_hpf: float):
        super().__init__()
        kernel = torch.tensor(
            [[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]], device="cpu"
        )
        # Divide on the CPU, then move to the device the network is being built on (a
        # `with torch.device(...)` block): dividing on "meta" costs seconds of one-off setup.
        build_device = torch.empty(0).device
        self.register_buffer("filter", (kernel / w_hpf).to(build_device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.size(1)
        weight = self.filter.to(x.dtype).repeat(channels, 1, 1, 1)  # (3, 3) -> (C, 1, 3, 3)
        return F.conv2d(x, weight, padding=1, groups=channels)


# --------------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------------


class Generator(nn.Module):
    """Encoder-decoder generator G(x, s): the image x is re-rendered in the style code s.

    Encoder: from_rgb conv, then log2(img_size) - 4 downsampling ResBlks (+1 when w_hpf > 0, so the
    bottleneck is 16x16 / 8x8 at 256 px), then 2 bottleneck ResBlks, all instance-normalised.
    Decoder: 2 bottleneck AdainResBlks, then the mirrored upsampling AdainResBlks; to_rgb is
    IN -> LReLU -> conv1x1 with no tanh (official). Small images get at least one downsampling
    block.
    """

    def __init__(
        self,
        img_size: int = 256,
        style_dim: int = 64,
        max_conv_dim: int = 512,
        w_hpf: float = 1,
        dim_in: int | None = None,
    ):
        super().__init__()
        log2_size = _check_img_size(img_size)
        if w_hpf < 0:
            raise ValueError(f"w_hpf must be >= 0, got {w_hpf!r}")
        self.img_size = img_size
        self.style_dim = style_dim
        self.w_hpf = w_hpf
        base_width = width = _base_width(img_size, max_conv_dim, dim_in)

        num_downsamples = max(1, log2_size - 4 + (1 if w_hpf > 0 else 0))
        down_blocks: list[nn.Module] = []
        up_blocks: list[nn.Module] = []  # built in encoder order, reversed below
        for _ in range(num_downsamples):
            wider = min(width * 2, max_conv_dim)
            down_blocks.append(ResBlk(width, wider, normalize=True, downsample=True))
            up_blocks.append(AdainResBlk(wider, width, style_dim, w_hpf, upsample=True))
            width = wider
        bottleneck_in = [ResBlk(width, width, normalize=True) for _ in range(NUM_BOTTLENECK_BLOCKS)]
        bottleneck_out = [
            AdainResBlk(width, width, style_dim, w_hpf) for _ in range(NUM_BOTTLENECK_BLOCKS)
        ]

        # Assignment order fixes the state_dict order: from_rgb, encode, decode, to_rgb, hpf.
        self.from_rgb = nn.Conv2d(3, base_width, 3, 1, 1)
        self.encode = nn.ModuleList(down_blocks + bottleneck_in)
        self.decode = nn.ModuleList(bottleneck_out + up_blocks[::-1])
        self.to_rgb = nn.Sequential(
            nn.InstanceNorm2d(base_width, affine=True),
            nn.LeakyReLU(LRELU_SLOPE),
            nn.Conv2d(base_width, 3, 1, 1, 0),
        )
        self.hpf = HighPass(w_hpf) if w_hpf > 0 else None

    def forward(
        self,
        x: torch.Tensor,
        s: torch.Tensor,
        masks: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Translate images x (N, 3, H, W) with style codes s (N, style_dim).

        masks: optional pair of (N, 1, h, w) face masks (official: FAN heatmaps, CelebA-HQ only).
        When given, encoder features at 32/64/128 px are cached and, after the decoder block that
        outputs that size, hpf(mask * cached) is added; masks[0] is used at 32 px, masks[1] at
        64/128 px, each bilinearly resized. Without masks that path is skipped (official).
        """
        if masks is not None and self.hpf is None:
            raise ValueError("masks are only used by a generator built with w_hpf > 0")
        x = self.from_rgb(x)
        cached: dict[int, torch.Tensor] = {}
        for block in self.encode:
            if masks is not None and x.size(2) in MASK_SKIP_SIZES:
                cached[x.size(2)] = x  # features *before* the block working at this size
            x = block(x)
        for block in self.decode:
            x = block(x, s)
            size = x.size(2)
            if masks is not None and size in MASK_SKIP_SIZES:
                mask = masks[0] if size == 32 else masks[1]
                mask = F.interpolate(mask, size=size, mode="bilinear", align_corners=False)
                x = x + self.hpf(mask * cached[size])
        return self.to_rgb(x)


def pick_domain(per_domain: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Row n of ``per_domain`` (N, D, style_dim) at head ``y[n]``: the official ``out[idx, y]``, written as a gather
    so that an exported graph (``ganzoo export``) keeps the domain as an input instead of tracing the indexing."""
    index = y.long().view(-1, 1, 1).expand(-1, 1, per_domain.shape[2])
    return per_domain.gather(1, index).squeeze(1)


class MappingNetwork(nn.Module):
    """F(z, y): latent code z -> style code for domain y.

    Shared trunk of 4 linear layers (latent -> hidden, then hidden -> hidden), each followed by
    ReLU; then one head per domain: 3 x (linear + ReLU) and a final linear to style_dim. All heads
    run and the one for y is picked, as in the official code. The official width is hard-coded 512.
    """

    def __init__(
        self,
        latent_dim: int = 16,
        style_dim: int = 64,
        num_domains: int = 2,
        hidden_dim: int = 512,
    ):
        super().__init__()
        self.latent_dim = latent_dim
        self.style_dim = style_dim
        self.num_domains = num_domains
        shared: list[nn.Module] = [nn.Linear(latent_dim, hidden_dim), nn.ReLU()]
        for _ in range(3):
            shared += [nn.Linear(hidden_dim, hidden_dim), nn.ReLU()]
        self.shared = nn.Sequential(*shared)
        self.unshared = nn.ModuleList(
            nn.Sequential(
                nn.Linear(hidden_dim, hidden_dim),
                nn.ReLU(),
                nn.Linear(hidden_dim, hidden_dim),
                nn.ReLU(),
                nn.Linear(hidden_dim, hidden_dim),
                nn.ReLU(),
                nn.Linear(hidden_dim, style_dim),
            )
            for _ in range(num_domains)
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """z: (N, latent_dim); y: (N,) domain indices. Returns (N, style_dim)."""
        h = self.shared(z)
        per_domain = torch.stack([head(h) for head in self.unshared], dim=1)  # (N, D, style_dim)
        return pick_domain(per_domain, y)


def _downsampling_trunk(
    img_size: int, max_conv_dim: int, dim_in: int | None
) -> tuple[list[nn.Module], int]:
    """Shared body of the style encoder and the discriminator, as a layer list plus its width.

    conv3x3 -> (log2(img_size) - 2) downsampling ResBlks without norm -> LReLU -> conv4x4 -> LReLU.
    The blocks always leave a 4x4 map, so the 4x4 valid conv reduces it to 1x1 at any img_size.
    """
    log2_size = _check_img_size(img_size)
    width = _base_width(img_size, max_conv_dim, dim_in)
    layers: list[nn.Module] = [nn.Conv2d(3, width, 3, 1, 1)]
    for _ in range(log2_size - 2):
        wider = min(width * 2, max_conv_dim)
        layers.append(ResBlk(width, wider, downsample=True))
        width = wider
    layers += [
        nn.LeakyReLU(LRELU_SLOPE),
        nn.Conv2d(width, width, 4, 1, 0),
        nn.LeakyReLU(LRELU_SLOPE),
    ]
    return layers, width


class StyleEncoder(nn.Module):
    """E(x, y): style code of image x for domain y; one linear head per domain on a shared trunk."""

    def __init__(
        self,
        img_size: int = 256,
        style_dim: int = 64,
        num_domains: int = 2,
        max_conv_dim: int = 512,
        dim_in: int | None = None,
    ):
        super().__init__()
        self.img_size = img_size
        self.style_dim = style_dim
        self.num_domains = num_domains
        layers, width = _downsampling_trunk(img_size, max_conv_dim, dim_in)
        self.shared = nn.Sequential(*layers)
        self.unshared = nn.ModuleList(nn.Linear(width, style_dim) for _ in range(num_domains))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x: (N, 3, img_size, img_size); y: (N,) domain indices. Returns (N, style_dim)."""
        h = self.shared(x).flatten(1)
        per_domain = torch.stack([head(h) for head in self.unshared], dim=1)  # (N, D, style_dim)
        return pick_domain(per_domain, y)


class Discriminator(nn.Module):
    """D(x, y): multi-task discriminator, one real/fake logit per domain; returns the one for y."""

    def __init__(
        self,
        img_size: int = 256,
        num_domains: int = 2,
        max_conv_dim: int = 512,
        dim_in: int | None = None,
    ):
        super().__init__()
        self.img_size = img_size
        self.num_domains = num_domains
        layers, width = _downsampling_trunk(img_size, max_conv_dim, dim_in)
        layers.append(nn.Conv2d(width, num_domains, 1, 1, 0))
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x: (N, 3, img_size, img_size); y: (N,) domain indices. Returns (N,) logits."""
        logits = self.main(x).flatten(1)  # (N, num_domains)
        return logits[torch.arange(y.size(0), device=y.device), y]


def he_init(module: nn.Module) -> None:
    """Official init for training nets: Kaiming normal (fan_in, ReLU gain) weights, zero biases.

    Use as ``net.apply(he_init)``. Note the official EMA copies are made *before* this runs, so
    they start from PyTorch's default init.
    """
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
