"""The CycleGAN / pix2pix networks, with the official parameter layout.

Facts from junyanz/pytorch-CycleGAN-and-pix2pix ``models/networks.py`` (BSD):
every ``state_dict`` key, shape and parameter count matches the official
classes, so official ``*_net_G*.pth`` / ``*_net_D*.pth`` files load without
renaming (see ``convert.py``). Constructor arguments are JSON values (``norm``
is a name, not a layer class) so they can be recorded in ``config.json``.

pix2pix imports these classes from here; nothing is duplicated.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

NORMS = ("instance", "batch", "none")

# ``--netG`` names of the official code -> (our class, its layout arguments).
GENERATOR_LAYOUTS: dict[str, tuple[str, dict[str, int]]] = {
    "resnet_9blocks": ("ResnetGenerator", {"n_blocks": 9}),
    "resnet_6blocks": ("ResnetGenerator", {"n_blocks": 6}),
    "unet_128": ("UnetGenerator", {"num_downs": 7}),
    "unet_256": ("UnetGenerator", {"num_downs": 8}),
}


def norm_layer(norm: str):
    """A constructor ``f(channels) -> nn.Module`` for the official norm choices.

    ``instance`` has no affine parameters and no running statistics, so it adds
    nothing to the state_dict; ``batch`` is affine and tracks statistics.
    """
    if norm == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f'norm must be one of {", ".join(NORMS)}, got "{norm}"')


def conv_bias(norm: str) -> bool:
    """The official bias rule: convolutions followed by a norm carry a bias only with instance norm.

    (Batch norm's shift makes a bias redundant; with ``none`` the official code
    also leaves the bias out, since its test is "is the norm InstanceNorm2d".)
    """
    return norm == "instance"


def init_normal(module: nn.Module, gain: float = 0.02) -> None:
    """The official ``init_type normal``: conv/linear weights N(0, gain), biases 0; batch norm weights N(1, gain)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, gain)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, gain)
        nn.init.zeros_(module.bias)


# --------------------------------------------------------------------------- ResNet generator (CycleGAN)


class ResnetBlock(nn.Module):
    """x + [pad, conv3x3, norm, ReLU, (dropout), pad, conv3x3, norm](x); no activation after the sum."""

    def __init__(self, dim: int, norm: str, use_dropout: bool, padding_type: str = "reflect"):
        super().__init__()
        Norm, bias = norm_layer(norm), conv_bias(norm)

        def padded_conv() -> list[nn.Module]:
            # Reflection/replication padding is a separate layer (a key index of its own); zero padding is the conv's.
            if padding_type == "reflect":
                return [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=bias)]
            if padding_type == "replicate":
                return [nn.ReplicationPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=bias)]
            if padding_type == "zero":
                return [nn.Conv2d(dim, dim, 3, padding=1, bias=bias)]
            raise ValueError(f'padding_type must be reflect, replicate or zero, got "{padding_type}"')

        layers = [*padded_conv(), Norm(dim), nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [*padded_conv(), Norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """Johnson et al.'s encoder / residual blocks / decoder; CycleGAN's generator (resnet_9blocks at 256 px).

    c7s1-ngf, two stride-2 downsamplings, ``n_blocks`` residual blocks at 4*ngf,
    two transposed-conv upsamplings, c7s1-output_nc, tanh. Output size = input size
    for inputs divisible by 4.
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        norm: str = "instance",
        use_dropout: bool = False,
        n_blocks: int = 9,
        padding_type: str = "reflect",
    ):
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        Norm, bias = norm_layer(norm), conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, padding=0, bias=bias), Norm(ngf), nn.ReLU(True),
        ]
        n_down = 2
        #: inputs of any size whose sides are multiples of this come out at their own size (``ganzoo translate --keep-size``)
        self.size_multiple = 2**n_down
        for i in range(n_down):
            width = ngf * 2**i
            layers += [nn.Conv2d(width, width * 2, 3, stride=2, padding=1, bias=bias), Norm(width * 2), nn.ReLU(True)]
        width = ngf * 2**n_down
        layers += [ResnetBlock(width, norm, use_dropout, padding_type) for _ in range(n_blocks)]
        for i in range(n_down):
            width = ngf * 2 ** (n_down - i)
            layers += [
                nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                Norm(width // 2),
                nn.ReLU(True),
            ]
        # The last conv always has a bias: no norm follows it.
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# --------------------------------------------------------------------------- U-Net generator (pix2pix)


class UnetSkipConnectionBlock(nn.Module):
    """One level of the U-Net: down, the inner levels, up, then concatenate with the level's input.

    The outermost level has no norm and ends in tanh without a skip; the
    innermost has no inner level and no norm after its down conv. Layer
    positions inside ``self.model`` follow the official code, because the
    official state_dict keys are those indices (``model.model.1.model.3...``).
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        use_dropout: bool = False,
    ):
        super().__init__()
        self.outermost = outermost
        Norm, bias = norm_layer(norm), conv_bias(norm)
        input_nc = outer_nc if input_nc is None else input_nc
        down_conv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=bias)
        if outermost:
            # Its input is the image, its output the final image: the up conv keeps its bias, no norm.
            up_conv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1)
            layers = [down_conv, submodule, nn.ReLU(True), up_conv, nn.Tanh()]
        elif innermost:
            # The bottleneck: nothing to concatenate from below, so the up conv takes inner_nc channels.
            up_conv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down_conv, nn.ReLU(True), up_conv, Norm(outer_nc)]
        else:
            up_conv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down_conv, Norm(inner_nc), submodule, nn.ReLU(True), up_conv, Norm(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """The pix2pix U-Net: ``num_downs`` stride-2 levels (7 = unet_128, 8 = unet_256) with skips.

    Widths ngf, 2ngf, 4ngf, then 8ngf for every deeper level; dropout (when on)
    in the ``num_downs - 5`` 8ngf levels above the bottleneck. Inputs must be
    divisible by ``2**num_downs`` (a 1x1 bottleneck at the official sizes).
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        use_dropout: bool = True,
    ):
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs must be >= 5 (the three fixed widths, outermost and innermost), got {num_downs}")
        #: every level halves the size, so sides must be multiples of this (``ganzoo translate --keep-size``)
        self.size_multiple = 2**num_downs
        # Built from the inside out, as each level wraps the one below it.
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout)
        for outer in (4, 2, 1):
            block = UnetSkipConnectionBlock(ngf * outer, ngf * outer * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# --------------------------------------------------------------------------- discriminators


class NLayerDiscriminator(nn.Module):
    """PatchGAN: ``n_layers`` stride-2 convs then two stride-1 convs; one logit per overlapping patch.

    n_layers 3 ("basic") gives 70x70 receptive fields and a 30x30 map at 256 px.
    No sigmoid: the losses take logits (vanilla) or raw scores (LSGAN, WGAN-GP).
    """

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance"):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        Norm, bias = norm_layer(norm), conv_bias(norm)
        # The first conv has no norm after it, so it keeps a bias whatever the norm.
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        width = ndf
        for n in range(1, n_layers + 1):
            next_width = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1  # the last widening conv keeps the resolution
            layers += [nn.Conv2d(width, next_width, 4, stride=stride, padding=1, bias=bias), Norm(next_width), nn.LeakyReLU(0.2, True)]
            width = next_width
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN: judges every pixel on its own (colour statistics only)."""

    def __init__(self, input_nc: int = 3, ndf: int = 64, norm: str = "instance"):
        super().__init__()
        Norm, bias = norm_layer(norm), conv_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias),
            Norm(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def generator_for_layout(net: str, **kwargs) -> nn.Module:
    """Build the generator the official ``--netG NAME`` builds (``kwargs``: input_nc, ngf, norm, ...)."""
    if net not in GENERATOR_LAYOUTS:
        raise ValueError(f'unknown generator layout "{net}"; use one of {", ".join(GENERATOR_LAYOUTS)}')
    class_name, layout = GENERATOR_LAYOUTS[net]
    return globals()[class_name](**layout, **kwargs)
