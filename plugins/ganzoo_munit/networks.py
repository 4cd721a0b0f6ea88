"""The MUNIT networks (Huang et al., ECCV 2018), with the official parameter layout.

Facts from NVlabs/MUNIT ``networks.py`` (CC BY-NC-SA 4.0): every ``state_dict``
key, shape and parameter count matches the official ``AdaINGen`` and
``MsImageDis``, so the official ``gen_*.pt`` / ``dis_*.pt`` entries (``{'a': ...,
'b': ...}``) load without renaming (see ``convert.py``). The attribute names are
the official ones because they are the state-dict keys: ``enc_style`` (style
encoder), ``enc_content`` (content encoder), ``dec`` (the AdaIN decoder) and
``mlp`` (style code -> AdaIN parameters).

One difference in mechanics, not in maths: the official decoder writes the AdaIN
parameters into the layers as attributes before each call; here they are passed
to the decoder's forward, so a network holds no per-call state.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("none", "bn", "in", "ln", "adain")
ACTIVATIONS = ("relu", "lrelu", "prelu", "selu", "tanh", "none")
PAD_TYPES = ("reflect", "replicate", "zero")

#: the official AdaINGen's fixed choices: 4 downsamplings in the style encoder, a 3-layer MLP
STYLE_DOWNSAMPLES = 4
MLP_BLOCKS = 3


def _check(name: str, value, allowed=None, *, minimum: int | None = None) -> None:
    if allowed is not None and value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    if minimum is not None and (not isinstance(value, int) or isinstance(value, bool) or value < minimum):
        raise ValueError(f"{name} must be an integer >= {minimum}, not {value!r}")


def _activation(name: str) -> nn.Module | None:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "lrelu":
        return nn.LeakyReLU(0.2, inplace=True)
    if name == "prelu":
        return nn.PReLU()
    if name == "selu":
        return nn.SELU(inplace=True)
    if name == "tanh":
        return nn.Tanh()
    return None


def _padding(pad_type: str, padding: int) -> nn.Module:
    if pad_type == "reflect":
        return nn.ReflectionPad2d(padding)
    if pad_type == "replicate":
        return nn.ReplicationPad2d(padding)
    return nn.ZeroPad2d(padding)


# --------------------------------------------------------------------------- normalisation


class AdaptiveInstanceNorm2d(nn.Module):
    """AdaIN (Huang & Belongie 2017): instance-normalise, then scale and shift by parameters from the style.

    The official layer keeps ``running_mean`` / ``running_var`` buffers that it never uses (it normalises
    repeated copies of them); they stay here, unused, because they are in every official state dict.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        # weight, bias: (B, C). Batch norm over a (1, B*C, H, W) view is instance norm per image and channel.
        b, c = x.shape[:2]
        out = F.batch_norm(x.reshape(1, b * c, *x.shape[2:]), None, None, weight.reshape(-1), bias.reshape(-1),
                           True, 0.0, self.eps)
        return out.view_as(x)

    def extra_repr(self) -> str:
        return str(self.num_features)


class LayerNorm(nn.Module):
    """The official layer norm: per image over (C, H, W), dividing by the (unbiased) std + eps, then per-channel affine."""

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True):
        super().__init__()
        self.num_features, self.eps, self.affine = num_features, eps, affine
        if affine:
            self.gamma = nn.Parameter(torch.empty(num_features).uniform_())  # official: uniform [0, 1)
            self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = [-1] + [1] * (x.dim() - 1)
        flat = x.reshape(x.shape[0], -1)
        x = (x - flat.mean(1).view(*shape)) / (flat.std(1).view(*shape) + self.eps)
        if self.affine:
            shape = [1, -1] + [1] * (x.dim() - 2)
            x = x * self.gamma.view(*shape) + self.beta.view(*shape)
        return x


def _norm(norm: str, channels: int) -> nn.Module | None:
    if norm == "bn":
        return nn.BatchNorm2d(channels)
    if norm == "in":
        # Official: instance norm *with* running statistics, so eval mode (the official test.py) uses them.
        return nn.InstanceNorm2d(channels, track_running_stats=True)
    if norm == "ln":
        return LayerNorm(channels)
    if norm == "adain":
        return AdaptiveInstanceNorm2d(channels)
    return None


# --------------------------------------------------------------------------- blocks


class ConvBlock(nn.Module):
    """pad -> conv (with bias) -> norm -> activation: the official ``Conv2dBlock``."""

    def __init__(self, in_dim: int, out_dim: int, kernel_size: int, stride: int, padding: int = 0, *,
                 norm: str = "none", activation: str = "relu", pad_type: str = "zero"):
        super().__init__()
        self.pad = _padding(pad_type, padding)
        self.norm = _norm(norm, out_dim)
        self.activation = _activation(activation)
        self.conv = nn.Conv2d(in_dim, out_dim, kernel_size, stride, bias=True)

    def forward(self, x: torch.Tensor, adain: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        x = self.conv(self.pad(x))
        if self.norm is not None:
            x = self.norm(x, *adain) if isinstance(self.norm, AdaptiveInstanceNorm2d) else self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


class ResBlock(nn.Module):
    """x + [conv3x3, norm, activation, conv3x3, norm](x)."""

    def __init__(self, dim: int, *, norm: str, activation: str, pad_type: str):
        super().__init__()
        self.model = nn.Sequential(
            ConvBlock(dim, dim, 3, 1, 1, norm=norm, activation=activation, pad_type=pad_type),
            ConvBlock(dim, dim, 3, 1, 1, norm=norm, activation="none", pad_type=pad_type),
        )

    def forward(self, x: torch.Tensor, adain=None) -> torch.Tensor:
        out = x
        for k, block in enumerate(self.model):
            out = block(out, adain[k] if adain is not None else None)
        return out + x


class ResBlocks(nn.Module):
    def __init__(self, num_blocks: int, dim: int, *, norm: str, activation: str, pad_type: str):
        super().__init__()
        self.model = nn.Sequential(*(ResBlock(dim, norm=norm, activation=activation, pad_type=pad_type)
                                     for _ in range(num_blocks)))

    def forward(self, x: torch.Tensor, adain=None) -> torch.Tensor:
        for k, block in enumerate(self.model):
            x = block(x, adain[2 * k:2 * k + 2] if adain is not None else None)
        return x


class LinearBlock(nn.Module):
    """fc -> activation (the official ``LinearBlock``, without a norm as MUNIT uses it)."""

    def __init__(self, in_dim: int, out_dim: int, *, activation: str):
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim, bias=True)
        self.activation = _activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(x)
        return self.activation(x) if self.activation is not None else x


class MLP(nn.Module):
    """Style code -> every AdaIN layer's (mean, std): ``n_blk`` linear layers, no activation on the last."""

    def __init__(self, in_dim: int, out_dim: int, dim: int, n_blk: int, *, activation: str):
        super().__init__()
        layers = [LinearBlock(in_dim, dim, activation=activation)]
        layers += [LinearBlock(dim, dim, activation=activation) for _ in range(n_blk - 2)]
        layers += [LinearBlock(dim, out_dim, activation="none")]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.reshape(x.shape[0], -1))


# --------------------------------------------------------------------------- encoders and decoder


class StyleEncoder(nn.Module):
    """Image -> style code: conv7x7, 2 downsamplings doubling the width, n_downsample - 2 more, global pool, 1x1 conv."""

    def __init__(self, n_downsample: int, input_dim: int, dim: int, style_dim: int, *, activation: str, pad_type: str):
        super().__init__()
        layers: list[nn.Module] = [ConvBlock(input_dim, dim, 7, 1, 3, activation=activation, pad_type=pad_type)]
        for _ in range(2):
            layers.append(ConvBlock(dim, 2 * dim, 4, 2, 1, activation=activation, pad_type=pad_type))
            dim *= 2
        for _ in range(n_downsample - 2):
            layers.append(ConvBlock(dim, dim, 4, 2, 1, activation=activation, pad_type=pad_type))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, style_dim, 1, 1, 0)]
        self.model = nn.Sequential(*layers)
        self.output_dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).flatten(1)  # (B, style_dim); the official code keeps (B, style_dim, 1, 1)


class ContentEncoder(nn.Module):
    """Image -> content code: conv7x7, n_downsample stride-2 convs doubling the width, n_res residual blocks; all IN."""

    def __init__(self, n_downsample: int, n_res: int, input_dim: int, dim: int, *, activation: str, pad_type: str):
        super().__init__()
        layers: list[nn.Module] = [ConvBlock(input_dim, dim, 7, 1, 3, norm="in", activation=activation, pad_type=pad_type)]
        for _ in range(n_downsample):
            layers.append(ConvBlock(dim, 2 * dim, 4, 2, 1, norm="in", activation=activation, pad_type=pad_type))
            dim *= 2
        layers.append(ResBlocks(n_res, dim, norm="in", activation=activation, pad_type=pad_type))
        self.model = nn.Sequential(*layers)
        self.output_dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Decoder(nn.Module):
    """Content code + AdaIN parameters -> image: AdaIN residual blocks, (upsample x2, conv5x5, LN) per level, conv7x7, tanh."""

    def __init__(self, n_upsample: int, n_res: int, dim: int, output_dim: int, *, activation: str, pad_type: str):
        super().__init__()
        layers: list[nn.Module] = [ResBlocks(n_res, dim, norm="adain", activation=activation, pad_type=pad_type)]
        for _ in range(n_upsample):
            layers += [nn.Upsample(scale_factor=2),
                       ConvBlock(dim, dim // 2, 5, 1, 2, norm="ln", activation=activation, pad_type=pad_type)]
            dim //= 2
        layers.append(ConvBlock(dim, output_dim, 7, 1, 3, activation="tanh", pad_type=pad_type))
        self.model = nn.Sequential(*layers)

    def adain_layers(self) -> list[AdaptiveInstanceNorm2d]:
        return [m for m in self.modules() if isinstance(m, AdaptiveInstanceNorm2d)]

    def forward(self, content: torch.Tensor, adain_params: torch.Tensor) -> torch.Tensor:
        # The official assignment order: layer by layer, each taking (mean -> bias, std -> weight) from the front.
        pairs, offset = [], 0
        for layer in self.adain_layers():
            n = layer.num_features
            bias, weight = adain_params[:, offset:offset + n], adain_params[:, offset + n:offset + 2 * n]
            pairs.append((weight, bias))
            offset += 2 * n
        x = self.model[0](content, pairs)
        for layer in self.model[1:]:
            x = layer(x)
        return x


# --------------------------------------------------------------------------- the generator


class AdaINGenerator(nn.Module):
    """One domain's auto-encoder (official ``AdaINGen``): style encoder, content encoder, AdaIN decoder and its MLP.

    Translation a -> b is ``generator_b.decode(generator_a.encode(x_a)[0], style_b)``: content from the source
    domain's encoder, style (random or a reference's) through the target domain's decoder.
    """

    def __init__(self, input_dim: int = 3, dim: int = 64, style_dim: int = 8, n_downsample: int = 2, n_res: int = 4,
                 activ: str = "relu", pad_type: str = "reflect", mlp_dim: int = 256):
        super().__init__()
        for name, value in (("input_dim", input_dim), ("dim", dim), ("style_dim", style_dim), ("mlp_dim", mlp_dim)):
            _check(name, value, minimum=1)
        _check("n_downsample", n_downsample, minimum=0)
        _check("n_res", n_res, minimum=0)
        _check("activ", activ, ACTIVATIONS)
        _check("pad_type", pad_type, PAD_TYPES)
        self.style_dim = style_dim
        self.enc_style = StyleEncoder(STYLE_DOWNSAMPLES, input_dim, dim, style_dim, activation=activ, pad_type=pad_type)
        self.enc_content = ContentEncoder(n_downsample, n_res, input_dim, dim, activation=activ, pad_type=pad_type)
        self.dec = Decoder(n_downsample, n_res, self.enc_content.output_dim, input_dim, activation=activ, pad_type=pad_type)
        num_adain = sum(2 * m.num_features for m in self.dec.adain_layers())
        if num_adain == 0:
            raise ValueError("n_res must be at least 1: the style reaches the decoder only through its AdaIN residual blocks")
        self.mlp = MLP(style_dim, num_adain, mlp_dim, MLP_BLOCKS, activation=activ)

    @property
    def style_encoder(self) -> StyleEncoder:
        return self.enc_style

    @property
    def content_encoder(self) -> ContentEncoder:
        return self.enc_content

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(content code, style code (B, style_dim)) of ``images``."""
        return self.enc_content(images), self.enc_style(images)

    def decode(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.dec(content, self.mlp(style))

    def forward(self, images: torch.Tensor | None = None, style: torch.Tensor | None = None, *, content=None,
                mode: str = "reconstruct"):
        """``mode`` reconstruct (the official ``forward``): images -> images; encode: images -> (content, style);
        decode: ``content`` and ``style`` -> images.

        The model calls encode and decode through here rather than as methods, so that under DDP every use goes
        through the wrapper's forward and the generators' gradients are all-reduced.
        """
        if mode == "encode":
            return self.encode(images)
        if mode == "decode":
            return self.decode(content, style)
        content, own_style = self.encode(images)
        return self.decode(content, own_style)


# --------------------------------------------------------------------------- the discriminator


class MsImageDis(nn.Module):
    """Multi-scale PatchGAN (official ``MsImageDis``): ``num_scales`` copies of one CNN on the image, halved each time.

    Each CNN: a stride-2 4x4 conv without norm, ``n_layer - 1`` stride-2 4x4 convs doubling the width, a 1x1 conv to
    one channel. Between scales the image is average-pooled (3x3, stride 2, padding 1, padding not counted).
    ``forward`` returns the list of per-scale score maps; the loss (LSGAN officially) is the model's.
    """

    def __init__(self, input_dim: int = 3, dim: int = 64, n_layer: int = 4, norm: str = "none", activ: str = "lrelu",
                 num_scales: int = 3, pad_type: str = "reflect"):
        super().__init__()
        _check("input_dim", input_dim, minimum=1)
        _check("dim", dim, minimum=1)
        _check("n_layer", n_layer, minimum=1)
        _check("num_scales", num_scales, minimum=1)
        _check("norm", norm, ("none", "bn", "in", "ln"))
        _check("activ", activ, ACTIVATIONS)
        _check("pad_type", pad_type, PAD_TYPES)
        self.downsample = nn.AvgPool2d(3, stride=2, padding=[1, 1], count_include_pad=False)
        self.cnns = nn.ModuleList()
        for _ in range(num_scales):
            width = dim
            layers: list[nn.Module] = [ConvBlock(input_dim, width, 4, 2, 1, norm="none", activation=activ, pad_type=pad_type)]
            for _ in range(n_layer - 1):
                layers.append(ConvBlock(width, width * 2, 4, 2, 1, norm=norm, activation=activ, pad_type=pad_type))
                width *= 2
            layers.append(nn.Conv2d(width, 1, 1, 1, 0))
            self.cnns.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for k, cnn in enumerate(self.cnns):
            outputs.append(cnn(x))
            if k + 1 < len(self.cnns):
                x = self.downsample(x)
        return outputs


# --------------------------------------------------------------------------- initialisation


def init_weights(module: nn.Module, init_type: str = "kaiming") -> None:
    """The official ``weights_init``: conv and linear weights by ``init_type``, biases 0 (other layers untouched)."""
    if not isinstance(module, (nn.Conv2d, nn.Linear)):
        return
    if init_type == "gaussian":
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif init_type == "xavier":
        nn.init.xavier_normal_(module.weight, gain=2 ** 0.5)
    elif init_type == "kaiming":
        nn.init.kaiming_normal_(module.weight, a=0, mode="fan_in")
    elif init_type == "orthogonal":
        nn.init.orthogonal_(module.weight, gain=2 ** 0.5)
    elif init_type != "default":
        raise ValueError(f"unknown init {init_type!r}")
    if module.bias is not None:
        nn.init.zeros_(module.bias)
