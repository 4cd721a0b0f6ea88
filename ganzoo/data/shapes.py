"""The built-in procedural dataset: one coloured object on a grey background.

Each domain is a colour family ("red", "green", ...). An item is one object of
a random kind (circle, star, heart, ...), size, position and rotation, filled
with a texture made of shades of its family's hue, on a low-saturation grey
background. Nothing is stored on disk: item ``i`` is rendered on demand from
``(seed, split, i)``, so it is identical in every process and every run.

Because only the object is saturated and only its hue depends on the domain,
two helpers can judge a translated image without any trained network:
:func:`foreground_mask` (the object's silhouette, by saturation) and
:func:`colour_family_of` (the family of its dominant hue).
"""

from __future__ import annotations

import colorsys
import functools
import math
import random

import numpy as np
import torch
from PIL import Image, ImageDraw

from ganzoo.data.base import ImageDataset
from ganzoo.image_output import written_beside
from ganzoo.data.images import hflip
from ganzoo.errors import DataError, did_you_mean

# Hue of each colour family in degrees (HSV hue). Neighbours are >= 30 degrees
# apart and items jitter by at most HUE_JITTER, so the family is unmistakable.
FAMILY_HUES: dict[str, float] = {
    "red": 0.0,
    "orange": 30.0,
    "yellow": 60.0,
    "green": 120.0,
    "cyan": 180.0,
    "blue": 225.0,
    "purple": 270.0,
    "magenta": 310.0,
}
DEFAULT_DOMAINS = ["red", "green", "blue"]
HUE_JITTER = 5.0
NO_COLOUR = "none"  # what colour_family_of returns for an image with no saturated pixel

SPLITS = ("train", "val")
SUPERSAMPLE = 4  # draw at 4x and box-filter down: antialiased but crisp edges
MARGIN = 1.0  # pixels kept free between the object and the image border
AREA_RANGE = (0.15, 0.45)  # object area as a fraction of the image

# Shades: saturation and value (HSV) ranges of the texture colours. Yellow and
# orange turn olive/brown when dark, so their shades stay light.
SATURATION_RANGE = (0.65, 1.0)
MIN_VALUE = {"yellow": 0.72, "orange": 0.68}
DEFAULT_MIN_VALUE = 0.5

# Chroma cut between background (about 0) and object shades (>= 0.33); tuned on
# rendered items so foreground_mask matches the true silhouette (IoU about 0.98 at 32 px).
FOREGROUND_CHROMA = 0.24

TEXTURES = ("solid", "stripes", "checker", "spots", "radial", "linear")

# Rendered items are kept in memory up to this many bytes per dataset (per DataLoader worker): a training run
# draws each item many times (stargan_shapes: 64,000 loads of 4,000 items at about 0.7 ms per render, some 45 s of
# its 4 to 5 minutes on a 2-core CPU).
CACHE_BYTES = 256 * 2**20


def _regular_polygon(sides: int, start: float = -math.pi / 2) -> np.ndarray:
    angles = start + np.arange(sides) * (2 * math.pi / sides)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    angles = -math.pi / 2 + np.arange(2 * points) * (math.pi / points)
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _cross(half_width: float = 0.33) -> np.ndarray:
    a, w = 1.0, half_width
    return np.array([(-w, -a), (w, -a), (w, -w), (a, -w), (a, w), (w, w), (w, a), (-w, a), (-w, w), (-a, w), (-a, -w), (-w, -w)])


def _heart(samples: int = 64) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, samples, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return np.stack([x, y], axis=1) / 17.0


_CIRCLE = _regular_polygon(64)

# Unit-size outlines (within about the unit disc), drawn as polygons.
SHAPES: dict[str, np.ndarray] = {
    "circle": _CIRCLE,
    "ellipse": _CIRCLE * (1.0, 0.6),
    "square": _regular_polygon(4, math.pi / 4),
    "triangle": _regular_polygon(3),
    "star": _star(),
    "cross": _cross(),
    "hexagon": _regular_polygon(6),
    "diamond": _regular_polygon(4) * (0.62, 1.0),
    "heart": _heart(),
}


def _polygon_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


@functools.lru_cache(maxsize=8)
def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y coordinates of pixel centres, each ``(size, size)`` float32."""
    centres = np.arange(size, dtype=np.float32) + 0.5
    return np.meshgrid(centres, centres)


def _shade(hue: float, saturation: float, value: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb((hue % 360.0) / 360.0, saturation, value), dtype=np.float32)


class _Canvas:
    """A supersampled greyscale drawing whose box-filtered coverage is read at 1x."""

    def __init__(self, size: int):
        self.size = size
        self.image = Image.new("L", (size * SUPERSAMPLE, size * SUPERSAMPLE), 0)
        self.draw = ImageDraw.Draw(self.image)

    def polygon(self, points: np.ndarray) -> None:
        self.draw.polygon([tuple(p) for p in (points * SUPERSAMPLE).tolist()], fill=255)

    def disc(self, cx: float, cy: float, radius: float) -> None:
        s = SUPERSAMPLE
        self.draw.ellipse([(cx - radius) * s, (cy - radius) * s, (cx + radius) * s, (cy + radius) * s], fill=255)

    def coverage(self) -> np.ndarray:
        """Fraction of each output pixel covered, ``(size, size)`` uint8 (0..255)."""
        return np.asarray(self.image.resize((self.size, self.size), Image.Resampling.BOX))


def _draw_stripes(canvas: _Canvas, origin, along, across, period: float, reach: float) -> np.ndarray:
    """Bands half a period wide, perpendicular to ``along``, covering ``reach`` around ``origin``."""
    for i in range(-int(reach / period) - 1, int(reach / period) + 1):
        start = origin + along * (i * period)
        end = start + along * (period / 2)
        canvas.polygon(np.array([start - across * reach, end - across * reach, end + across * reach, start + across * reach]))
    return canvas.coverage().astype(np.float32) / 255.0


def _draw_checker(canvas: _Canvas, origin, along, across, period: float, reach: float) -> np.ndarray:
    """A checkerboard of ``period``-sized squares aligned with ``along``, covering ``reach`` around ``origin``."""
    count = int(reach / period) + 1
    for i in range(-count, count):
        for j in range(-count, count):
            if (i + j) % 2 == 0:
                corner = origin + along * (i * period) + across * (j * period)
                canvas.polygon(np.array([corner, corner + along * period, corner + (along + across) * period, corner + across * period]))
    return canvas.coverage().astype(np.float32) / 255.0


def _random_polygon(rng: random.Random) -> np.ndarray:
    """A star-shaped polygon of 5-9 vertices at random angles and radii: concave, with spikes and notches."""
    sides = rng.randint(5, 9)
    angles = sorted(rng.uniform(0.0, 2 * math.pi) for _ in range(sides))
    radii = [rng.uniform(0.3, 1.0) for _ in range(sides)]
    return np.array([(r * math.cos(a), r * math.sin(a)) for r, a in zip(radii, angles)])


def _outline(rng: random.Random, varied: bool) -> np.ndarray:
    """A unit-size outline: one of :data:`SHAPES`; with ``varied``, sometimes a random polygon, and stretched
    along one axis by up to 3x."""
    kinds = list(SHAPES) + (["polygon"] * 3 if varied else [])
    kind = rng.choice(kinds)
    outline = _random_polygon(rng) if kind == "polygon" else SHAPES[kind]
    if varied:
        outline = outline * (1.0, 1.0 / math.exp(rng.uniform(0.0, math.log(3.0))))
    return outline


def _uneven_luminance(rng: random.Random, xs: np.ndarray, ys: np.ndarray, size: int) -> np.ndarray:
    """Smooth light and shade: three plane waves of random direction, 0.5-2.5 cycles per image, summed."""
    total = np.zeros_like(xs)
    for _ in range(3):
        direction = rng.uniform(0.0, 2 * math.pi)
        cycles = rng.uniform(0.5, 2.5)
        phase = (xs * math.cos(direction) + ys * math.sin(direction)) * (2 * math.pi * cycles / size)
        total += rng.uniform(0.0, 0.06) * np.cos(phase + rng.uniform(0.0, 2 * math.pi))
    return total


def render_item(rng: random.Random, size: int, family: str, varied_outlines: bool = False,
                uneven_background: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Draw one item: ``(image (size, size, 3) uint8, coverage (size, size) uint8)``.

    ``coverage`` is the object's antialiased silhouette (255 = fully inside).
    All randomness comes from ``rng``. ``varied_outlines`` adds random polygons and stretched outlines;
    ``uneven_background`` smooth light and shade and stronger pixel noise in the background (both off: the
    classic items, unchanged).
    """
    # --- the object's outline: kind, rotation, area, position
    base = _outline(rng, varied_outlines)
    base_area = _polygon_area(base)
    angle = rng.uniform(0.0, 2 * math.pi)
    rotation = np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])
    outline = base @ rotation
    extent = outline.max(axis=0) - outline.min(axis=0)
    largest_scale = (size - 2 * MARGIN) / float(extent.max())  # so the object fits inside
    largest_area = min(AREA_RANGE[1], largest_scale**2 * base_area / size**2)
    area = rng.uniform(AREA_RANGE[0], largest_area) if largest_area > AREA_RANGE[0] else largest_area
    scale = math.sqrt(area * size**2 / base_area)
    outline = outline * scale
    low, high = outline.min(axis=0), outline.max(axis=0)
    offset = np.array([rng.uniform(MARGIN - low[i], size - MARGIN - high[i]) for i in range(2)])
    outline = outline + offset
    centre = offset + (low + high) / 2
    radius = scale * 1.1  # the outline lies within this distance of ``offset``

    silhouette = _Canvas(size)
    silhouette.polygon(outline)
    coverage = silhouette.coverage()

    # --- two shades of the family's hue, differing mostly in lightness
    hue = FAMILY_HUES[family] + rng.uniform(-HUE_JITTER, HUE_JITTER)
    min_value = MIN_VALUE.get(family, DEFAULT_MIN_VALUE)
    light = rng.uniform(min_value + 0.22, 1.0)
    dark = rng.uniform(min_value, light - 0.18)
    shades = [_shade(hue, rng.uniform(*SATURATION_RANGE), v) for v in (light, dark)]
    if rng.random() < 0.5:
        shades.reverse()

    # --- texture: per-pixel mix weight between the two shades
    texture = rng.choice(TEXTURES)
    xs, ys = _pixel_grid(size)
    direction = rng.uniform(0.0, 2 * math.pi)
    along = np.array([math.cos(direction), math.sin(direction)])
    across = np.array([-along[1], along[0]])
    if texture == "solid":
        mix = None
    elif texture in ("stripes", "checker"):
        period = size * rng.uniform(0.16, 0.3)
        origin = offset + along * rng.uniform(0.0, period)
        draw = _draw_stripes if texture == "stripes" else _draw_checker
        mix = draw(_Canvas(size), origin, along, across, period, reach=radius * 1.5)
    elif texture == "spots":
        pattern = _Canvas(size)
        for _ in range(rng.randint(4, 9)):
            r, theta = radius * math.sqrt(rng.random()), rng.uniform(0.0, 2 * math.pi)
            pattern.disc(centre[0] + r * math.cos(theta), centre[1] + r * math.sin(theta), size * rng.uniform(0.05, 0.1))
        mix = pattern.coverage().astype(np.float32) / 255.0
    elif texture == "radial":
        cx, cy = centre + rng.uniform(0.0, 0.4) * radius * along
        mix = np.clip(np.hypot(xs - cx, ys - cy) / (radius * rng.uniform(0.8, 1.2)), 0.0, 1.0)
    else:  # linear gradient across the object
        mix = np.clip(0.5 + ((xs - centre[0]) * along[0] + (ys - centre[1]) * along[1]) / (2 * radius), 0.0, 1.0)
    if mix is None:
        colour = np.broadcast_to(shades[0], (size, size, 3))
    else:
        colour = shades[0] + (shades[1] - shades[0]) * mix[..., None]

    # --- background: neutral grey, a faint gradient and luminance-only noise
    grey = rng.uniform(0.45, 0.85)
    tilt = rng.uniform(-0.08, 0.08)
    tint = np.array([rng.uniform(-0.01, 0.01) for _ in range(3)], dtype=np.float32)
    noise = np.random.default_rng(rng.getrandbits(32)).standard_normal((size, size), dtype=np.float32) * 0.012
    luminance = grey + tilt * ((xs / size - 0.5) * across[0] + (ys / size - 0.5) * across[1]) + noise
    if uneven_background:
        luminance = luminance + _uneven_luminance(rng, xs, ys, size) + noise * rng.uniform(0.0, 2.0)
    background = luminance[..., None] + tint

    alpha = (coverage.astype(np.float32) / 255.0)[..., None]
    image = background + (colour - background) * alpha
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), coverage


class ShapesDataset(ImageDataset):
    """Procedural objects whose domain is their colour family.

    ``domains`` picks the families (any of :data:`FAMILY_HUES`); item ``i`` has
    label ``i % len(domains)``. Train and val items are different images.
    ``varied_outlines`` (random polygons, outlines stretched up to 3:1) and
    ``uneven_background`` (smooth light and shade, stronger pixel noise) widen
    what a model sees, so it keeps silhouettes of objects it was not shown; the
    shapes recipes train with both. Off, the items are the classic ones.
    """

    def __init__(
        self,
        split: str = "train",
        image_size: int = 32,
        domains: list[str] | None = None,
        num_train: int = 4000,
        num_val: int = 200,
        seed: int = 0,
        flip: bool = True,
        varied_outlines: bool = False,
        uneven_background: bool = False,
    ):
        if split not in SPLITS:
            raise DataError(f'Unknown split "{split}" for the shapes dataset.{did_you_mean(split, SPLITS)} Splits: {", ".join(SPLITS)}.')
        if int(image_size) < 8:
            raise DataError(f"Shapes image_size must be at least 8, got {image_size}.")
        domains = list(DEFAULT_DOMAINS if domains is None else domains)
        for name in domains:
            if name not in FAMILY_HUES:
                raise DataError(
                    f'Unknown colour family "{name}" in data.domains.{did_you_mean(name, FAMILY_HUES)} '
                    f"Families: {', '.join(FAMILY_HUES)}."
                )
        if not domains or len(set(domains)) != len(domains):
            raise DataError(f"Shapes data.domains must be distinct colour families, got {domains}.")
        count = num_train if split == "train" else num_val
        if count < 1:
            raise DataError(f"Shapes num_{split} must be at least 1, got {count}.")
        self.split = split
        self.image_size = int(image_size)
        self.domains = domains
        self.seed = seed
        self.flip = flip
        self.varied_outlines, self.uneven_background = bool(varied_outlines), bool(uneven_background)
        self.labels = [i % len(domains) for i in range(count)]
        self._rendered: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._cache_room = CACHE_BYTES // (self.image_size**2 * 4)  # items: 3 image bytes + 1 coverage per pixel

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Item ``index`` as ``(image (H, W, 3) uint8, coverage (H, W) uint8)``; no augmentation. Read-only
        arrays: the first items' renders are kept and handed out again."""
        if not 0 <= index < len(self.labels):
            raise IndexError(f"shapes item {index} out of range (0..{len(self.labels) - 1})")
        item = self._rendered.get(index)
        if item is None:
            # String seeds are hashed with SHA-512: the same in every process, unlike hash().
            rng = random.Random(f"ganzoo-shapes/{self.seed}/{self.split}/{index}")
            item = render_item(rng, self.image_size, self.domains[self.labels[index]], self.varied_outlines,
                               self.uneven_background)
            for array in item:
                array.flags.writeable = False
            if len(self._rendered) < self._cache_room:
                self._rendered[index] = item
        return item

    def load(self, index: int, rng: random.Random | None = None) -> torch.Tensor:
        image, _ = self.render(index)
        tensor = torch.tensor(image).permute(2, 0, 1).float().div_(127.5).sub_(1.0)  # a copy: renders are shared
        if rng is not None and self.flip and rng.random() < 0.5:
            tensor = hflip(tensor)
        return tensor

    def mask(self, index: int) -> torch.Tensor:
        """The object's silhouette (pixels at least half covered) as an ``(H, W)`` bool tensor, unflipped."""
        _, coverage = self.render(index)
        return torch.from_numpy(coverage >= 128)


# ---------------------------------------------------------------- judging images


def _hue_and_chroma(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """HSV hue in degrees and chroma (max - min of RGB, in [0, 1]) of a ``(..., 3, H, W)`` image in [-1, 1]."""
    rgb = ((image.detach().float() + 1.0) / 2.0).clamp(0.0, 1.0)
    r, g, b = rgb.unbind(-3)
    high, low = rgb.amax(dim=-3), rgb.amin(dim=-3)
    chroma = high - low
    safe = chroma.clamp_min(1e-6)
    hue = torch.where(
        high == r,
        torch.remainder((g - b) / safe, 6.0),
        torch.where(high == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
    )
    return hue * 60.0, chroma


def foreground_mask(image: torch.Tensor, threshold: float = FOREGROUND_CHROMA) -> torch.Tensor:
    """Segment the object from the grey background by saturation: an ``(..., H, W)`` bool tensor.

    ``image`` is ``(..., 3, H, W)`` in [-1, 1]. A pixel is foreground when its
    chroma (max - min of RGB) is at least ``threshold``. The background's chroma
    is near 0 and object shades have chroma >= 0.33, so the default sits
    between them and cuts antialiased edges near half coverage.
    """
    _, chroma = _hue_and_chroma(image)
    return chroma >= threshold


def colour_family_of(image: torch.Tensor, mask: torch.Tensor | None = None, families: list[str] | None = None) -> str:
    """The colour family whose hue is nearest the dominant hue of ``image`` inside ``mask``.

    ``image`` is ``(3, H, W)`` in [-1, 1]; ``mask`` an ``(H, W)`` bool tensor
    (default: the whole image); ``families`` the candidates (default: all of
    :data:`FAMILY_HUES`). The dominant hue is the circular mean of the pixels'
    hues weighted by their saturation (chroma), so grey background pixels and
    dark noisy pixels hardly count. Returns :data:`NO_COLOUR` when no pixel in
    ``mask`` is saturated.
    """
    hue, chroma = _hue_and_chroma(image)
    weight = chroma if mask is None else chroma * mask.to(chroma.dtype)
    total = float(weight.sum())
    if total < 1e-3:
        return NO_COLOUR
    radians = torch.deg2rad(hue)
    mean = math.degrees(math.atan2(float((weight * torch.sin(radians)).sum()), float((weight * torch.cos(radians)).sum())))
    candidates = list(FAMILY_HUES) if families is None else list(families)

    def distance(name: str) -> float:
        gap = abs(mean - FAMILY_HUES[name]) % 360.0
        return min(gap, 360.0 - gap)

    return min(candidates, key=distance)


def export_folder(out, *, image_size: int = 32, domains: list[str] | None = None, num_train: int = 400,
                  num_val: int = 50, seed: int = 0) -> dict[str, int]:
    """Write the shapes set as PNGs in the image-folder layout ``OUT/{train,val}/<domain>/NNNNN.png``.

    ``num_train`` / ``num_val`` count images per domain. Returns the number of images per split.
    """
    from pathlib import Path

    out = Path(out)
    domains = list(DEFAULT_DOMAINS if domains is None else domains)
    counts = {}
    for split, per_domain in (("train", num_train), ("val", num_val)):
        data = ShapesDataset(split, image_size, domains, num_train=num_train * len(domains),
                             num_val=num_val * len(domains), seed=seed)
        for name in domains:
            (out / split / name).mkdir(parents=True, exist_ok=True)
        for index, label in enumerate(data.labels):
            image, _ = data.render(index)
            with written_beside(out / split / domains[label] / f"{index // len(domains):05d}.png") as tmp:  # whole or absent
                Image.fromarray(image).save(tmp)
        counts[split] = len(data.labels)
    return counts
