"""UNIT's networks (Liu, Breuel, Kautz, NeurIPS 2017), as in the official PyTorch code (mingyuliutw/UNIT).

Each domain has one VAE (:class:`VAEGenerator`, the official ``VAEGen``): an encoder from images to the
latent code (the mean of a unit-variance Gaussian) and a decoder back. Translation a -> b is
``decoder_b(encoder_a(x))``. Each domain also has a multi-scale LSGAN discriminator
(:class:`MultiScaleDiscriminator`, the official ``MsImageDis``, after pix2pixHD).

Weight sharing. The paper ties the last encoder layers and the first decoder layers of the two VAEs
(its Caffe / early PyTorch code in ``src/`` does). The current official code, the one whose checkpoints
exist (``gen_*.pt`` with ``{'a': VAEGen, 'b': VAEGen}``), builds two fully separate ``VAEGen`` networks and
shares nothing: the shared latent space is enforced only by the losses (cross-domain reconstruction through
the other VAE, cycle consistency and the KL terms). We follow that code, so the two generators are
independent networks with the official keys.

Module attribute names follow the official ones (``enc.model.0.conv.weight``, ``cnns.0.1.conv.weight``,
``norm.gamma``), so an official state dict loads as it is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PADDINGS = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d, "zero": nn.ZeroPad2d}
NORMS = ("none", "bn", "in", "ln")
ACTIVATIONS = ("relu", "lrelu", "prelu", "selu", "tanh", "none")


class LayerNorm(nn.Module):
    """The official layer norm: per image over (C, H, W) with the unbiased std, ``(x - mean) / (std + eps)``, then a
    per-channel affine (``gamma`` drawn from U(0, 1) at construction, ``beta`` zero). Not ``nn.LayerNorm``: eps is
    added to the std, not the variance."""

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True):
        super().__init__()
        self.num_features, self.eps, self.affine = num_features, eps, affine
        if affine:
            self.gamma = nn.Parameter(torch.empty(num_features).uniform_())
            self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        shape = (-1,) + (1,) * (x.dim() - 1)
        x = (x - flat.mean(1).view(shape)) / (flat.std(1).view(shape) + self.eps)
        if self.affine:
            channel = (1, -1) + (1,) * (x.dim() - 2)
            x = x * self.gamma.view(channel) + self.beta.view(channel)
        return x


def _norm(kind: str, channels: int) -> nn.Module | None:
    if kind not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}, not {kind!r}")
    return {"bn": lambda: nn.BatchNorm2d(channels), "in": lambda: nn.InstanceNorm2d(channels),
            "ln": lambda: LayerNorm(channels), "none": lambda: None}[kind]()


def _activation(kind: str) -> nn.Module | None:
    if kind not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, not {kind!r}")
    return {"relu": lambda: nn.ReLU(inplace=True), "lrelu": lambda: nn.LeakyReLU(0.2, inplace=True),
            "prelu": nn.PReLU, "selu": lambda: nn.SELU(inplace=True), "tanh": nn.Tanh, "none": lambda: None}[kind]()


class ConvBlock(nn.Module):
    """Explicit padding, convolution (with bias), optional norm, optional activation: the official ``Conv2dBlock``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int = 0,
                 norm: str = "none", activation: str = "relu", pad_type: str = "zero"):
        super().__init__()
        if pad_type not in PADDINGS:
            raise ValueError(f"pad_type must be one of {', '.join(PADDINGS)}, not {pad_type!r}")
        self.pad = PADDINGS[pad_type](padding)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, bias=True)
        self.norm = _norm(norm, out_channels)
        self.activation = _activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.pad(x))
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


class ResidualBlock(nn.Module):
    """x + (conv3x3-norm-activation, conv3x3-norm)(x)."""

    def __init__(self, channels: int, norm: str, activation: str, pad_type: str):
        super().__init__()
        self.model = nn.Sequential(ConvBlock(channels, channels, 3, 1, 1, norm, activation, pad_type),
                                   ConvBlock(channels, channels, 3, 1, 1, norm, "none", pad_type))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.model(x)


class ResidualBlocks(nn.Module):
    def __init__(self, num_blocks: int, channels: int, norm: str, activation: str, pad_type: str):
        super().__init__()
        self.model = nn.Sequential(*(ResidualBlock(channels, norm, activation, pad_type) for _ in range(num_blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Encoder(nn.Module):
    """7x7 conv, ``n_downsample`` stride-2 4x4 convs doubling the width, ``n_res`` residual blocks; instance norm
    throughout (the official ``ContentEncoder`` with norm ``in``)."""

    def __init__(self, n_downsample: int, n_res: int, input_dim: int, dim: int, activ: str, pad_type: str):
        super().__init__()
        layers = [ConvBlock(input_dim, dim, 7, 1, 3, "in", activ, pad_type)]
        for _ in range(n_downsample):
            layers.append(ConvBlock(dim, 2 * dim, 4, 2, 1, "in", activ, pad_type))
            dim *= 2
        layers.append(ResidualBlocks(n_res, dim, "in", activ, pad_type))
        self.model = nn.Sequential(*layers)
        self.output_dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Decoder(nn.Module):
    """``n_res`` instance-norm residual blocks, ``n_upsample`` x (nearest x2, 5x5 conv halving the width, layer
    norm), a 7x7 conv to the image with tanh."""

    def __init__(self, n_upsample: int, n_res: int, dim: int, output_dim: int, activ: str, pad_type: str):
        super().__init__()
        layers: list[nn.Module] = [ResidualBlocks(n_res, dim, "in", activ, pad_type)]
        for _ in range(n_upsample):
            layers += [nn.Upsample(scale_factor=2), ConvBlock(dim, dim // 2, 5, 1, 2, "ln", activ, pad_type)]
            dim //= 2
        layers.append(ConvBlock(dim, output_dim, 7, 1, 3, "none", "tanh", pad_type))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class VAEGenerator(nn.Module):
    """One domain's VAE (official ``VAEGen(input_dim, gen)``): ``enc`` to the latent code, ``dec`` back to an image.

    The official model is a reduced VAE: the encoder outputs the mean, the standard deviation is fixed to one, so
    sampling adds standard normal noise (done by the model's train step, from torch's RNG) and the KL term reduces
    to the mean of the squared code. At test time the mean is decoded without noise.
    """

    def __init__(self, input_dim: int = 3, dim: int = 64, n_downsample: int = 2, n_res: int = 4,
                 activ: str = "relu", pad_type: str = "reflect"):
        super().__init__()
        if min(input_dim, dim, n_downsample + 1, n_res + 1) < 1:
            raise ValueError("input_dim and dim must be positive, n_downsample and n_res not negative")
        self.enc = Encoder(n_downsample, n_res, input_dim, dim, activ, pad_type)
        self.dec = Decoder(n_downsample, n_res, self.enc.output_dim, input_dim, activ, pad_type)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The latent code (the posterior mean) of ``images``."""
        return self.enc(images)

    def decode(self, hiddens: torch.Tensor) -> torch.Tensor:
        return self.dec(hiddens)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Reconstruction from the mean code (the official forward in eval mode)."""
        return self.decode(self.encode(images))


class MultiScaleDiscriminator(nn.Module):
    """``num_scales`` PatchGANs (official ``MsImageDis``), each on the image average-pooled once more than the last
    (3x3, stride 2, padding not counted). Each: a stride-2 4x4 conv without norm, ``n_layer - 1`` stride-2 4x4 convs
    doubling the width with ``norm``, then a 1x1 conv to one channel. ``forward`` returns one map per scale."""

    def __init__(self, input_dim: int = 3, dim: int = 64, n_layer: int = 4, num_scales: int = 3, norm: str = "none",
                 activ: str = "lrelu", pad_type: str = "reflect"):
        super().__init__()
        if min(input_dim, dim, n_layer, num_scales) < 1:
            raise ValueError("input_dim, dim, n_layer and num_scales must be positive")
        self.cnns = nn.ModuleList(self._patch_gan(input_dim, dim, n_layer, norm, activ, pad_type) for _ in range(num_scales))

    @staticmethod
    def _patch_gan(input_dim: int, dim: int, n_layer: int, norm: str, activ: str, pad_type: str) -> nn.Sequential:
        layers: list[nn.Module] = [ConvBlock(input_dim, dim, 4, 2, 1, "none", activ, pad_type)]
        for _ in range(n_layer - 1):
            layers.append(ConvBlock(dim, dim * 2, 4, 2, 1, norm, activ, pad_type))
            dim *= 2
        layers.append(nn.Conv2d(dim, 1, 1, 1, 0))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for index, cnn in enumerate(self.cnns):
            if index:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(cnn(x))
        return outputs


def init_generator(module: nn.Module) -> None:
    """The official ``init: kaiming`` (every config): He-normal (fan in) conv and linear weights, zero biases.
    Layer-norm gammas keep their U(0, 1) draw, as officially (its init matches ``Conv``/``Linear`` class names only)."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(module.weight, a=0, mode="fan_in")
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def init_discriminator(module: nn.Module) -> None:
    """The official discriminators are re-initialised ``gaussian``: N(0, 0.02) weights, zero biases."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
