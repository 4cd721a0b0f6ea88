"""Image sizes in ``ganzoo translate``: the training size, the input's own size, and tiles.

A model translates at its training size (``image_size``) unless its family declares it fully convolutional (the
:class:`~ganzoo.model.AnySizeModel` capability, with the stride multiple its networks need). Then

- ``--keep-size`` translates at the input's own size: padded (reflection) up to that multiple, cropped back;
- ``--tile N`` (implies ``--keep-size``) runs the network on N x N tiles that overlap by ``--tile-overlap`` pixels,
  one tile at a time, so memory depends on N, not on the input. Tiles are blended with cosine ramps: inside each
  overlap a tile's weight is 0 for the outer quarter, rises over the middle half, and is 1 after it. A pixel
  therefore only takes values from tiles where it lies at least ``overlap // 4`` pixels inside the tile, and for
  a network whose receptive field reaches no further than that (and without image-wide statistics such as
  instance norm) the tiled output equals the untiled one up to float rounding. Tile corners sit on multiples of
  the stride multiple, so strided layers see the same pixel grid as for the whole image.

Any other model resizes its inputs to ``image_size`` (bilinear, antialiased) and says so once; with
``--keep-size`` its outputs are resized back to the input's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ganzoo.errors import GanzooError

Run = Callable[[torch.Tensor], torch.Tensor]


def resize_to(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N,3,h,w) -> (N,3,height,width), bilinear with antialiasing (as :func:`ganzoo.data.images.resize`)."""
    if images.shape[-2:] == (height, width):
        return images
    return F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False, antialias=True)


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def pad_to_multiple(images: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad (N,3,H,W) at the bottom and right up to multiples of ``multiple``: reflection where the image is large
    enough for it, else edge replication."""
    height, width = images.shape[-2:]
    pad_h, pad_w = round_up(height, multiple) - height, round_up(width, multiple) - width
    if not pad_h and not pad_w:
        return images
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(images, (0, pad_w, 0, pad_h), mode=mode)


def run_padded(run: Run, images: torch.Tensor, multiple: int) -> torch.Tensor:
    """``run`` on ``images`` padded to ``multiple``, cropped back to their size."""
    height, width = images.shape[-2:]
    return run(pad_to_multiple(images, multiple))[..., :height, :width]


def tile_starts(length: int, tile: int, step: int) -> list[int]:
    """Where tiles of ``tile`` pixels start along a side of ``length`` (the last one ends at the side's end)."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def blend_ramp(size: int, overlap: int, lead: bool, trail: bool) -> torch.Tensor:
    """A tile's 1-D weights: a cosine ramp over the middle half of ``overlap`` at each side that meets a
    neighbour (``lead``: the start, ``trail``: the end), 0 before it, 1 after it."""
    weight = torch.ones(size)
    if not (lead or trail):
        return weight
    margin = overlap // 4
    width = max(overlap - 2 * margin, 1)
    t = ((torch.arange(size, dtype=torch.float32) + 0.5 - margin) / width).clamp(0, 1)
    ramp = 0.5 - 0.5 * torch.cos(math.pi * t)
    if lead:
        weight = weight * ramp
    if trail:
        weight = weight * ramp.flip(0)
    return weight


def run_tiled(run: Run, image: torch.Tensor, multiple: int, tile: int, overlap: int) -> torch.Tensor:
    """``run`` on (1,3,H,W) ``image`` tile by tile (see the module docstring); the result has the image's size and
    lives on the CPU, as does the input: only one tile at a time is on the network's device."""
    height, width = image.shape[-2:]
    padded = pad_to_multiple(image, multiple)
    full_h, full_w = padded.shape[-2:]
    tile_h, tile_w = min(tile, full_h), min(tile, full_w)
    step = tile - overlap
    rows, cols = tile_starts(full_h, tile_h, step), tile_starts(full_w, tile_w, step)
    out = torch.zeros(1, 3, full_h, full_w)
    total = torch.zeros(1, 1, full_h, full_w)
    for top in rows:
        wy = blend_ramp(tile_h, overlap, top > 0, top + tile_h < full_h)
        for left in cols:
            wx = blend_ramp(tile_w, overlap, left > 0, left + tile_w < full_w)
            weight = wy[:, None] * wx[None, :]
            piece = run(padded[..., top:top + tile_h, left:left + tile_w]).float().cpu()
            out[..., top:top + tile_h, left:left + tile_w] += piece * weight
            total[..., top:top + tile_h, left:left + tile_w] += weight
    return (out / total)[..., :height, :width]


@dataclass(frozen=True)
class SizePlan:
    """How ``ganzoo translate`` sizes its inputs for one model (see :func:`size_plan`)."""

    image_size: int
    #: the stride multiple of a fully convolutional model, None for a fixed-size one
    multiple: int | None = None
    keep_size: bool = False
    tile: int | None = None
    overlap: int = 0

    @property
    def own_size(self) -> bool:
        """The network runs at the input's own size (padded), not at ``image_size``."""
        return self.multiple is not None and (self.keep_size or self.tile is not None)

    def prepare(self, image: torch.Tensor) -> torch.Tensor:
        """A (3,H,W) input as the batch needs it: unchanged when translated at its own size, else resized."""
        if self.own_size:
            return image
        return resize_to(image[None], self.image_size, self.image_size)[0]

    def apply(self, run: Run, images: torch.Tensor, sizes: list[tuple[int, int]] | None = None) -> torch.Tensor | list[torch.Tensor]:
        """``run`` on a batch of prepared images of one size; ``sizes`` are their original (H, W), to resize the
        outputs back to with ``--keep-size`` on a fixed-size model."""
        if not self.own_size:
            out = run(images)
            if self.keep_size and sizes is not None:
                return [resize_to(y[None].float(), h, w)[0] for y, (h, w) in zip(out, sizes)]
            return out
        height, width = images.shape[-2:]
        if self.tile is not None and (height > self.tile or width > self.tile):
            return torch.cat([run_tiled(run, image[None], self.multiple, self.tile, self.overlap) for image in images])
        return run_padded(run, images, self.multiple)

    def note(self, model_name: str) -> str | None:
        """The line to print when ``--keep-size`` was asked of a fixed-size model (without it, every model's inputs
        are resized to ``image_size``, as always)."""
        if self.own_size or not self.keep_size:
            return None
        return (f"{model_name} translates at its training size only: inputs are resized to {self.image_size}x"
                f"{self.image_size} (bilinear, antialiased) and the outputs back to each input's size.")


def size_plan(net, *, keep_size: bool = False, tile: int | None = None, overlap: int | None = None) -> SizePlan:
    """The :class:`SizePlan` for ``net`` and the ``--keep-size`` / ``--tile`` / ``--tile-overlap`` options."""
    from ganzoo.model import AnySizeModel

    multiple = int(net.size_multiple()) if isinstance(net, AnySizeModel) else None
    if multiple is None:
        if tile is not None:
            raise GanzooError(f"Model {net.name} translates at its training size ({net.image_size} px) only, so it cannot "
                              "be tiled; drop --tile (--keep-size resizes its outputs back to the input size).")
        return SizePlan(net.image_size, None, keep_size)
    if tile is None:
        return SizePlan(net.image_size, multiple, keep_size)
    tile_rounded = round_up(tile, multiple)
    overlap = tile_rounded // 4 if overlap is None else overlap
    overlap_rounded = round_up(max(overlap, 0), multiple)
    if overlap < 0 or overlap_rounded >= tile_rounded:
        raise GanzooError(f"--tile-overlap {overlap} must be at least 0 and smaller than the tile ({tile_rounded} px, a "
                          f"multiple of {multiple} for {net.name}); pick a smaller overlap, e.g. {tile_rounded // 4}.")
    return SizePlan(net.image_size, multiple, True, tile_rounded, overlap_rounded)


def one_draw(net, target: torch.Tensor, *, reference: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> Run:
    """A function that translates batches of any length and size into ``target`` with ONE random draw: the same
    style codes (style models: of ``reference``, or of latents drawn once from ``generator``) or the same noise seed
    (other models, e.g. pix2pix's test-time dropout) for every call. Tiles of one image and frames of one video go
    through it, so no tile or frame gets a style of its own.

    ``target`` holds one entry (domain index or label vector) for every image, or one for all. Models whose draws
    differ (``eval_modes``) run one image per call, so that each image sees the same noise.
    """
    from ganzoo.model import StyleModel

    def targets(n: int) -> torch.Tensor:
        return target.expand(n, *target.shape[1:]) if target.shape[0] == 1 else target

    if isinstance(net, StyleModel):
        styles = net.style_codes(target, reference=reference, generator=generator)

        def styled(images: torch.Tensor) -> torch.Tensor:
            n = images.shape[0]
            return net.translate_with_style(images, styles.expand(n, -1) if styles.shape[0] == 1 else styles)

        return styled
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    noisy = any(bool(differ) for differ in net.eval_modes.values())

    def plain(images: torch.Tensor) -> torch.Tensor:
        t = targets(images.shape[0])
        if not noisy:
            return net.translate(images, t, generator=torch.Generator().manual_seed(seed))
        return torch.cat([net.translate(images[i:i + 1], t[i:i + 1], generator=torch.Generator().manual_seed(seed))
                          for i in range(images.shape[0])])

    return plain
