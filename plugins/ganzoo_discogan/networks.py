"""DiscoGAN's networks, with the official parameter layout (SKTBrain/DiscoGAN ``discogan/model.py``).

Both networks are DCGAN-style stacks of 4x4 convolutions with batch norm and no biases:

- :class:`Generator`: four stride-2 convolutions down (64 -> 128 -> 256 -> 512 channels, LeakyReLU 0.2, batch
  norm after all but the first), four stride-2 transposed convolutions up (batch norm + ReLU, the last one to 3
  channels) and a sigmoid. With ``extra_layers`` (the official angle-pairing experiments) a 100-channel bottleneck
  convolution down to 1x1 and a transposed convolution back sit in the middle.
- :class:`Discriminator`: the same four convolutions down, then one convolution to a single score per image. It
  returns that score *and* the activations after its 2nd, 3rd and 4th blocks, which the generator's feature
  matching loss compares.

Every ``state_dict`` key and shape equals that of the official modules (``main.{i}.*`` for the generator's
``nn.Sequential``, ``conv1`` .. ``conv5`` / ``bn2`` .. ``bn4`` for the discriminator; tests/test_discogan.py holds
them as data). Two things are ours:

- **Images in [0, 1].** The generator ends in a sigmoid, as officially, so it reads and writes images in [0, 1]
  (the official loader divides by 255). The model converts at its boundary (``DiscoGAN.network_range``).
- **The discriminator returns its logit**, not ``sigmoid(logit)``: the model scores it with ganzoo's shared
  ``vanilla`` loss (binary cross-entropy on logits), which is the official ``BCELoss`` on the sigmoid computed
  without its saturation.

The official code is written for 64 px (its last discriminator kernel is 4, the size of the 4x4 map left after
four halvings). Here that kernel, and the extra bottleneck's, is ``image_size // 16``: 4 at 64 px, and still one
score per image at other multiples of 16.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: channels of the optional bottleneck of ``Generator(extra_layers=True)`` (official: 100)
BOTTLENECK_CHANNELS = 100


def _check_image_size(image_size: int) -> int:
    image_size = int(image_size)
    if image_size < 16 or image_size % 16:
        raise ValueError(f"DiscoGAN halves images four times: image_size must be a multiple of 16, got {image_size}")
    return image_size


def _down(c_in: int, c_out: int, norm: bool, kernel: int = 4, stride: int = 2, padding: int = 1) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False)]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return layers


def _up(c_in: int, c_out: int, kernel: int = 4, stride: int = 2, padding: int = 1) -> list[nn.Module]:
    return [nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]


class Generator(nn.Module):
    """Encoder-decoder from images in [0, 1] to images in [0, 1] of the same size (official ``Generator``).

    ``conv_dim`` is the first layer's width (official 64); ``image_size`` is derived by the model from
    ``data.image_size``.
    """

    def __init__(self, conv_dim: int = 64, extra_layers: bool = False, image_size: int = 64):
        super().__init__()
        image_size = _check_image_size(image_size)
        d = int(conv_dim)
        layers = [*_down(3, d, norm=False), *_down(d, 2 * d, True), *_down(2 * d, 4 * d, True), *_down(4 * d, 8 * d, True)]
        if extra_layers:
            # 4x4 map -> 1x1 code of 100 channels and back (kernel = the map's size).
            k = image_size // 16
            layers += [*_down(8 * d, BOTTLENECK_CHANNELS, True, kernel=k, stride=1, padding=0),
                       *_up(BOTTLENECK_CHANNELS, 8 * d, kernel=k, stride=1, padding=0)]
        layers += [*_up(8 * d, 4 * d), *_up(4 * d, 2 * d), *_up(2 * d, d),
                   nn.ConvTranspose2d(d, 3, 4, 2, 1, bias=False), nn.Sigmoid()]
        self.main = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.main(images)


class Discriminator(nn.Module):
    """Real/fake logit per image plus three intermediate feature maps (official ``Discriminator``)."""

    def __init__(self, conv_dim: int = 64, image_size: int = 64):
        super().__init__()
        image_size = _check_image_size(image_size)
        d = int(conv_dim)
        self.conv1 = nn.Conv2d(3, d, 4, 2, 1, bias=False)
        self.relu1 = nn.LeakyReLU(0.2, inplace=True)
        self.conv2 = nn.Conv2d(d, 2 * d, 4, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * d)
        self.relu2 = nn.LeakyReLU(0.2, inplace=True)
        self.conv3 = nn.Conv2d(2 * d, 4 * d, 4, 2, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * d)
        self.relu3 = nn.LeakyReLU(0.2, inplace=True)
        self.conv4 = nn.Conv2d(4 * d, 8 * d, 4, 2, 1, bias=False)
        self.bn4 = nn.BatchNorm2d(8 * d)
        self.relu4 = nn.LeakyReLU(0.2, inplace=True)
        self.conv5 = nn.Conv2d(8 * d, 1, image_size // 16, 1, 0, bias=False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(logits (N,), [block-2, block-3, block-4 activations])``."""
        h = self.relu1(self.conv1(images))
        f2 = self.relu2(self.bn2(self.conv2(h)))
        f3 = self.relu3(self.bn3(self.conv3(f2)))
        f4 = self.relu4(self.bn4(self.conv4(f3)))
        return self.conv5(f4).flatten(), [f2, f3, f4]


@torch.no_grad()
def init_as_official(module: nn.Module) -> None:
    """The initialisation the official code got: PyTorch's defaults of its day (0.1.x, 2017), which differ from today's.

    The official ``model.py`` sets no initialisation of its own. PyTorch then drew convolution weights (transposed
    ones too) from U(-1/sqrt(n), 1/sqrt(n)) with n = in_channels x kernel area, and batch-norm scales from U(0, 1)
    with zero shifts. (Today's defaults use the other channel count for transposed convolutions and start the scales at 1.)
    No layer has a bias.
    """
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        bound = 1.0 / math.sqrt(module.in_channels * math.prod(module.kernel_size))
        module.weight.uniform_(-bound, bound)
    elif isinstance(module, nn.BatchNorm2d):
        module.weight.uniform_(0.0, 1.0)
        module.bias.zero_()
