"""The face-alignment network (FAN) StarGAN v2 uses for its CelebA-HQ face masks.

The official release (clovaai/stargan-v2, ``core/wing.py``) takes a one-module hourglass from the Wing
loss / AdaptiveWingLoss line of work: 98 facial landmarks plus one boundary channel, predicted as 64 x 64
heatmaps from a 256 x 256 image in [0, 1]. It has BatchNorm, is always run in eval mode and is never
trained with the GAN. Our modules use the official state-dict keys, so ``wing.ckpt`` and the ``fan`` entry
of the CelebA-HQ ``100000_nets_ema.ckpt`` load strictly (6,333,603 parameters, BatchNorm buffers included).

:meth:`FAN.get_heatmap` turns the landmark heatmaps into the two face masks of the official generator:
``masks[0]`` (the whole face, used at 32 px) and ``masks[1]`` (without face line, mouth and eyebrows, used
at 64 and 128 px). The post-processing constants are the official ones; each is named below.

Official code and weights are CC BY-NC 4.0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NUM_LANDMARKS = 98
#: the FAN's input size (official ``get_heatmap`` resizes every image to it)
FAN_SIZE = 256


def coordinate_channels(n: int, height: int, width: int, *, with_radius: bool, device, dtype) -> torch.Tensor:
    """CoordConv's extra channels: row coordinate, column coordinate (both in [-1, 1]) and, optionally,
    the radius sqrt(row² + col²) divided by its maximum; (n, 2 or 3, height, width)."""
    rows = torch.linspace(-1, 1, height, device=device, dtype=torch.float32).view(height, 1).expand(height, width)
    cols = torch.linspace(-1, 1, width, device=device, dtype=torch.float32).view(1, width).expand(height, width)
    channels = [rows, cols]
    if with_radius:
        radius = torch.sqrt(rows**2 + cols**2)
        channels.append(radius / radius.max())
    return torch.stack(channels).unsqueeze(0).expand(n, -1, -1, -1).to(dtype)


class CoordConv(nn.Module):
    """A convolution whose input gets coordinate channels (row, column, radius) appended first.

    The official layer can also append two boundary channels from a previous hourglass's heatmap; with one
    hourglass there is never a previous heatmap, so that path never runs and is left out.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels + 3, out_channels, kernel_size, stride, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        coords = coordinate_channels(n, h, w, with_radius=True, device=x.device, dtype=x.dtype)
        return self.conv(torch.cat([x, coords], dim=1))


class ConvBlock(nn.Module):
    """Pre-activation block whose output concatenates three 3x3 conv stages (widths out/2, out/4, out/4),
    plus the input (through BN-ReLU-1x1 when the width changes)."""

    def __init__(self, in_planes: int, out_planes: int):
        super().__init__()
        half, quarter = out_planes // 2, out_planes // 4
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, half, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, quarter, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(quarter)
        self.conv3 = nn.Conv2d(quarter, quarter, 3, 1, 1, bias=False)
        self.downsample = None
        if in_planes != out_planes:
            self.downsample = nn.Sequential(
                nn.BatchNorm2d(in_planes), nn.ReLU(), nn.Conv2d(in_planes, out_planes, 1, 1, bias=False)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = self.conv1(F.relu(self.bn1(x)))
        out2 = self.conv2(F.relu(self.bn2(out1)))
        out3 = self.conv3(F.relu(self.bn3(out2)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.cat([out1, out2, out3], dim=1) + shortcut


class HourGlass(nn.Module):
    """A depth-``depth`` hourglass of 256-wide ConvBlocks, named as the official ``b1_<level>``,
    ``b2_<level>``, ``b2_plus_1`` and ``b3_<level>``; a CoordConv 1x1 layer first."""

    def __init__(self, depth: int = 4, features: int = 256):
        super().__init__()
        self.depth = depth
        self.coordconv = CoordConv(features, features, kernel_size=1)
        self._add_level(depth, features)

    def _add_level(self, level: int, features: int) -> None:
        # Registration order = official state-dict order: b1, b2, (deeper levels | b2_plus_1), b3.
        self.add_module(f"b1_{level}", ConvBlock(features, features))
        self.add_module(f"b2_{level}", ConvBlock(features, features))
        if level > 1:
            self._add_level(level - 1, features)
        else:
            self.add_module("b2_plus_1", ConvBlock(features, features))
        self.add_module(f"b3_{level}", ConvBlock(features, features))

    def _level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        upper = self._modules[f"b1_{level}"](x)
        lower = self._modules[f"b2_{level}"](F.avg_pool2d(x, 2, stride=2))
        lower = self._level(level - 1, lower) if level > 1 else self._modules["b2_plus_1"](lower)
        lower = self._modules[f"b3_{level}"](lower)
        return upper + F.interpolate(lower, scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._level(self.depth, self.coordconv(x))


class FAN(nn.Module):
    """One-hourglass face-alignment network: (N, 3, 256, 256) in [0, 1] -> (N, 99, 64, 64) heatmaps
    (98 landmarks + boundary). Frozen: always in eval mode, no parameter asks for a gradient."""

    def __init__(self, num_landmarks: int = NUM_LANDMARKS):
        super().__init__()
        self.conv1 = CoordConv(3, 64, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = ConvBlock(64, 128)
        self.conv3 = ConvBlock(128, 128)
        self.conv4 = ConvBlock(128, 256)
        self.m0 = HourGlass(depth=4, features=256)
        self.top_m_0 = ConvBlock(256, 256)
        self.conv_last0 = nn.Conv2d(256, 256, 1, 1, 0)
        self.bn_end0 = nn.BatchNorm2d(256)
        self.l0 = nn.Conv2d(256, num_landmarks + 1, 1, 1, 0)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "FAN":
        # The official solver calls .eval() once and never trains it; BatchNorm must keep its running
        # statistics whatever a caller does, so train() is a no-op.
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.avg_pool2d(self.conv2(x), 2, stride=2)
        x = self.conv4(self.conv3(x))
        x = self.top_m_0(self.m0(x))
        x = F.relu(self.bn_end0(self.conv_last0(x)))
        return self.l0(x)

    @torch.no_grad()
    def landmark_heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 98, 256, 256) raw landmark heatmaps of ``images`` (N, 3, H, W) in [-1, 1] (official
        ``get_heatmap(x, b_preprocess=False)`` then the same bilinear upsampling)."""
        x = F.interpolate(images.float(), size=FAN_SIZE, mode="bilinear")
        heatmaps = self(x * 0.5 + 0.5)[:, :-1]
        # official: scale factor = 256 // 64 from the *resized* input, so the masks are 256 x 256 for any image size
        return F.interpolate(heatmaps, scale_factor=FAN_SIZE // heatmaps.size(2), mode="bilinear", align_corners=True)

    @torch.no_grad()
    def get_heatmap(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The generator's two face masks of ``images`` (N, 3, H, W) in [-1, 1]: each (N, 1, 256, 256) in
        [0, 1], computed in fp32 (autocast off) as the official solver does."""
        device_type = images.device.type
        with torch.autocast(device_type=device_type, enabled=False):
            return face_masks(self.landmark_heatmaps(images))


# --------------------------------------------------------------------------- mask post-processing

# Landmark index ranges [start, end) of the 98-point (WFLW) layout, as the official index_map.
CHIN = (8, 25)  # face line without its 8 outermost points on each side
EYEBROWS = (33, 51)
EYEBROW_EDGES = (33, 46)
NOSE = (51, 55)
NOSTRILS = (55, 60)
EYES = (60, 76)
LIP_EDGES = (76, 82)
LIP_UPPER = (77, 82)
LIP_LOWER = (83, 88)
LIP_INNER = (88, 96)

#: per part: (rows to move up, negative = down, for 256 px heatmaps; power); official ``operations``
PART_RULES = {
    "chin": (CHIN, 0, 3),
    "eyebrows": (EYEBROWS, -7, 2),
    "nostrils": (NOSTRILS, 8, 4),
    "lip_upper": (LIP_UPPER, -8, 4),
    "lip_lower": (LIP_LOWER, 8, 4),
    "lip_inner": (LIP_INNER, -2, 3),
}
#: channels set to zero after the part rules: face-line ends, first/last eyebrow point, mouth corners
ZEROED = [*range(0, CHIN[0]), *range(CHIN[1], 33), EYEBROW_EDGES[0], EYEBROW_EDGES[1], LIP_EDGES[0], LIP_EDGES[1]]
NOSE_UP = 4  # nose points after the first move up by 4 * (H // 256) rows
EYES_DOWN = (8, 24)  # eyes: (moved down 8 rows) ** 3 + (moved down 24 rows); not scaled with H (official)


def move_up(x: torch.Tensor, rows: int) -> torch.Tensor:
    """Content of (N, C, H, W) moved up by ``rows`` (down when negative), wrapping around (official ``shift``)."""
    return torch.roll(x, shifts=-rows, dims=2)


def face_masks(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Official mask post-processing of (N, 98, H, W) landmark heatmaps -> two (N, 1, H, W) masks in [0, 1]."""
    x = heatmaps.float()
    n, c, h, w = x.shape
    x = torch.where(x < 0.1, torch.zeros_like(x), x)  # truncate weak responses
    flat = x.reshape(n * c, h * w)
    low, high = flat.min(dim=1, keepdim=True).values, flat.max(dim=1, keepdim=True).values
    x = ((flat - low) / (high - low + 1e-6)).reshape(n, c, h, w).clone()  # min-max per heatmap

    scale = h // 256
    for (start, end), rows, power in PART_RULES.values():
        x[:, start:end] = move_up(x[:, start:end], rows * scale) ** power
    x[:, ZEROED] = 0
    start, end = NOSE
    x[:, start + 1:end] = move_up(x[:, start + 1:end], NOSE_UP * scale)
    start, end = EYES
    eyes = x[:, start:end]
    x[:, start:end] = move_up(eyes, -EYES_DOWN[0]) ** 3 + move_up(eyes, -EYES_DOWN[1])

    # second-level mask: without face line, mouth (76..95) and eyebrows
    x2 = x.clone()
    x2[:, CHIN[0]:CHIN[1]] = 0
    x2[:, LIP_EDGES[0]:LIP_INNER[1]] = 0
    x2[:, EYEBROWS[0]:EYEBROWS[1]] = 0

    mask = x.sum(dim=1, keepdim=True)
    mask2 = x2.sum(dim=1, keepdim=True)
    # NaN to zero. (The official code tests the already-cleaned first mask for the second, so a NaN in
    # the second would survive there; NaN only arises from NaN input, where zero is the sensible answer.)
    mask = torch.nan_to_num(mask, nan=0.0)
    mask2 = torch.nan_to_num(mask2, nan=0.0)
    return mask.clamp(0, 1), mask2.clamp(0, 1)


# --------------------------------------------------------------------------- landmarks (face alignment)


@torch.no_grad()
def heatmap_peaks(heatmaps: torch.Tensor) -> torch.Tensor:
    """(N, C, 2) landmark positions (x, y) in pixels of (N, C, H, W) heatmaps: the arg-max, moved a quarter
    pixel towards the higher neighbour in each direction, minus half a pixel (official ``get_preds_fromhm``)."""
    n, c, h, w = heatmaps.shape
    idx = heatmaps.reshape(n, c, h * w).argmax(dim=2)
    py, px = idx // w, idx % w
    preds = torch.stack([px, py], dim=-1).float() + 1.0
    inside = (px > 0) & (px < w - 1) & (py > 0) & (py < h - 1)
    pxc, pyc = px.clamp(1, w - 2), py.clamp(1, h - 2)
    flat = heatmaps.reshape(n * c, h, w)
    rows = torch.arange(n * c, device=heatmaps.device)
    pxf, pyf = pxc.reshape(-1), pyc.reshape(-1)
    dx = flat[rows, pyf, pxf + 1] - flat[rows, pyf, pxf - 1]
    dy = flat[rows, pyf + 1, pxf] - flat[rows, pyf - 1, pxf]
    diff = torch.stack([dx, dy], dim=-1).reshape(n, c, 2).sign() * 0.25
    preds = preds + diff * inside.unsqueeze(-1)
    return preds - 0.5
