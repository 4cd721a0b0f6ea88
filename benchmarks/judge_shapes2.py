"""A second judge of shapes translation: objects our generator never draws, at a size the model was not trained at.

The first judge (benchmarks/quickstart_quality.py) renders held-out items with the training generator
(ganzoo/data/shapes.py). A model can score well there and still fail on other objects, so this module draws its own
judge images, independently of that generator:

  * other shape kinds (ellipse, ring, crescent, arrow, L-shape, rounded rectangle, Fourier blob, thin bar), each an
    analytic inside test on a supersampled grid;
  * other textures (per-pixel noise, wavy bands, two-shade dots, smooth gradient) in two shades of the family's hue;
  * a noisier grey background (blurred value noise plus per-pixel noise, luminance only, so its chroma stays near 0);
  * 64 px by default (``--size``), translated the way ``ganzoo translate --keep-size`` translates an input of
    another size with a fixed-size model: resized to ``model.image_size`` (bilinear, antialiased, with
    :class:`ganzoo.tiling.SizePlan`), translated, resized back, and judged at the input's size (for a model
    trained at 64 px, pick another ``--size``; fully convolutional families, which ``--keep-size`` would run at 64
    px, are judged through the same resize here).

What is shared with the first judge is the judging: :data:`FAMILY_HUES`, :func:`foreground_mask` (silhouette by
chroma) and :func:`colour_family_of` (dominant hue) from ganzoo.data.shapes. The renderer checks itself:
:func:`ground_truth_iou` is the IoU of ``foreground_mask`` on the rendered images vs their true masks, which should
be >= 0.95 (0.984 at 64 px for red, green, blue; 0.970 at 32 px), or the judge would be measuring its own
segmentation error; ``resized_source_iou`` is the same for the sources resized to the model's size and back, the
most a translator can keep through that resize.

    python benchmarks/judge_shapes2.py RUN_DIR_OR_MODEL [--num 150] [--size 64] [--json out.json] [--grid grid.png]
"""

from __future__ import annotations

import argparse
import colorsys
import json
import math
import random
import sys

import numpy as np
import torch
import torch.nn.functional as F

from ganzoo.data.shapes import FAMILY_HUES, colour_family_of, foreground_mask
from ganzoo.errors import GanzooError
from ganzoo.tiling import SizePlan, resize_to

SUPERSAMPLE = 4  # inside tests at 4x4 points per pixel: the coverage is antialiased
TEXTURES = ("noise", "waves", "dots", "gradient")
HUE_JITTER = 6.0  # degrees; families are >= 30 degrees apart
# Shades have chroma (saturation * value) >= 0.7 * 0.55 = 0.385, well above foreground_mask's 0.24 cut.
SATURATION_RANGE = (0.7, 1.0)
MIN_VALUE = {"yellow": 0.75, "orange": 0.7}  # dark yellow and orange look olive and brown
DEFAULT_MIN_VALUE = 0.55


# ---------------------------------------------------------------- shapes: inside tests in unit coordinates
# Each takes local coordinates (u, v) of points (the object lies within the unit disc) and the item's rng, and
# returns a bool array: the point is inside the object.


def _box(u, v, half_u, half_v, corner=0.0):
    """Inside a box of half sizes (half_u, half_v) whose corners are rounded with radius ``corner``."""
    qu, qv = np.abs(u) - (half_u - corner), np.abs(v) - (half_v - corner)
    outside = np.hypot(np.maximum(qu, 0), np.maximum(qv, 0))
    return outside + np.minimum(np.maximum(qu, qv), 0) <= corner


def ellipse(u, v, rng):
    minor = rng.uniform(0.45, 0.7)
    return u**2 + (v / minor) ** 2 <= 1.0


def ring(u, v, rng):
    r = np.hypot(u, v)
    return (r <= 1.0) & (r >= rng.uniform(0.45, 0.6))


def crescent(u, v, rng):
    bite_radius, bite_shift = rng.uniform(0.75, 0.85), rng.uniform(0.45, 0.6)
    return (np.hypot(u, v) <= 1.0) & (np.hypot(u - bite_shift, v) > bite_radius)


def arrow(u, v, rng):
    shaft_half = rng.uniform(0.16, 0.24)
    head_start = rng.uniform(0.0, 0.25)
    shaft = (u >= -0.95) & (u <= head_start) & (np.abs(v) <= shaft_half)
    # head: triangle from (head_start, +-0.75) to the tip (1, 0)
    head = (u >= head_start) & (u <= 1.0) & (np.abs(v) <= 0.75 * (1.0 - u) / (1.0 - head_start))
    return shaft | head


def l_shape(u, v, rng):
    arm = rng.uniform(0.3, 0.42)  # arm thickness, in the 1.4 x 1.4 square the L sits in
    side = 0.7
    vertical = (u >= -side) & (u <= -side + arm) & (np.abs(v) <= side)
    horizontal = (np.abs(u) <= side) & (v >= side - arm) & (v <= side)
    return vertical | horizontal


def rounded_rect(u, v, rng):
    half_v = rng.uniform(0.45, 0.7)
    half_u = math.sqrt(1.0 - half_v**2)  # corners on the unit circle
    return _box(u, v, half_u, half_v, corner=rng.uniform(0.12, 0.3))


def blob(u, v, rng):
    """Star-shaped: radius a low-order Fourier series of the angle, between about 0.55 and 1."""
    terms = [(k, rng.uniform(0.05, 0.14), rng.uniform(0, 2 * math.pi)) for k in (2, 3, 4)]
    theta = np.arctan2(v, u)
    radius = 1.0 + sum(a * np.cos(k * theta + phase) for k, a, phase in terms)
    peak = 1.0 + sum(a for _, a, _ in terms)
    return np.hypot(u, v) <= radius / peak


def thin_bar(u, v, rng):
    return _box(u, v, 0.98, rng.uniform(0.14, 0.2))


SHAPES = {"ellipse": ellipse, "ring": ring, "crescent": crescent, "arrow": arrow, "l_shape": l_shape,
          "rounded_rect": rounded_rect, "blob": blob, "thin_bar": thin_bar}
KINDS = tuple(SHAPES)


# ---------------------------------------------------------------- textures and background


def _value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise in [-1, 1]: a ``cells`` x ``cells`` grid of random values, upsampled bicubically."""
    grid = torch.from_numpy(rng.uniform(-1, 1, (1, 1, cells, cells)).astype(np.float32))
    return F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=True)[0, 0].clamp(-1, 1).numpy()


def _texture_mix(kind: str, rng: random.Random, noise: np.random.Generator, size: int, cx, cy, radius) -> np.ndarray:
    """Per-pixel weight in [0, 1] between the item's two shades."""
    centres = np.arange(size, dtype=np.float32) + 0.5
    xs, ys = np.meshgrid(centres, centres)
    angle = rng.uniform(0, 2 * math.pi)
    along = (xs - cx) * math.cos(angle) + (ys - cy) * math.sin(angle)
    across = -(xs - cx) * math.sin(angle) + (ys - cy) * math.cos(angle)
    if kind == "noise":
        return noise.uniform(0, 1, (size, size)).astype(np.float32)
    if kind == "waves":
        period = radius * rng.uniform(0.5, 0.9)
        wobble = radius * rng.uniform(0.1, 0.25) * np.sin(2 * math.pi * across / (radius * rng.uniform(0.8, 1.5)))
        return 0.5 + 0.5 * np.sin(2 * math.pi * (along + wobble) / period)
    if kind == "dots":
        spacing = radius * rng.uniform(0.4, 0.6)
        du = (along / spacing) % 1.0 - 0.5
        dv = (across / spacing) % 1.0 - 0.5
        return (np.hypot(du, dv) <= rng.uniform(0.22, 0.35)).astype(np.float32)
    t = np.clip(0.5 + along / (2 * radius), 0, 1)  # gradient: smoothstep across the object
    return t * t * (3 - 2 * t)


def _shades(family: str, rng: random.Random) -> np.ndarray:
    """Two RGB shades of the family's (jittered) hue, differing mostly in value: (2, 3)."""
    hue = (FAMILY_HUES[family] + rng.uniform(-HUE_JITTER, HUE_JITTER)) % 360.0
    low = MIN_VALUE.get(family, DEFAULT_MIN_VALUE)
    values = (rng.uniform(low + 0.2, 1.0), rng.uniform(low, low + 0.15))
    return np.array([colorsys.hsv_to_rgb(hue / 360.0, rng.uniform(*SATURATION_RANGE), v) for v in values], np.float32)


def _background(rng: random.Random, noise: np.random.Generator, size: int) -> np.ndarray:
    """Grey with strong luminance noise (smooth and per pixel) and a tint far below the foreground's chroma."""
    grey = rng.uniform(0.35, 0.75)
    luminance = grey + 0.12 * _value_noise(noise, size, rng.randint(4, 8)) + noise.normal(0, 0.04, (size, size))
    tint = np.array([rng.uniform(-0.01, 0.01) for _ in range(3)], np.float32)
    return luminance[..., None].astype(np.float32) + tint


# ---------------------------------------------------------------- items


def render(index: int, size: int, family: str, seed: int = 0) -> dict:
    """Judge item ``index``: ``image`` (3, size, size) in [-1, 1], ``mask`` (size, size) bool (pixels at least half
    covered), ``kind`` and ``family``. The shape kind cycles through :data:`KINDS`; everything else comes from
    ``random.Random(f"ganzoo-judge2/{seed}/{index}")``, the same in every process."""
    rng = random.Random(f"ganzoo-judge2/{seed}/{index}")
    noise = np.random.default_rng(rng.getrandbits(64))
    kind = KINDS[index % len(KINDS)]
    radius = size * rng.uniform(0.27, 0.42)  # the object lies within this disc
    margin = radius + 1.0
    cx, cy = rng.uniform(margin, size - margin), rng.uniform(margin, size - margin)
    angle = rng.uniform(0, 2 * math.pi)

    fine = (np.arange(size * SUPERSAMPLE, dtype=np.float64) + 0.5) / SUPERSAMPLE
    xs, ys = np.meshgrid(fine, fine)
    u = ((xs - cx) * math.cos(angle) + (ys - cy) * math.sin(angle)) / radius
    v = (-(xs - cx) * math.sin(angle) + (ys - cy) * math.cos(angle)) / radius
    inside = SHAPES[kind](u, v, rng).astype(np.float32)
    coverage = inside.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))

    light, dark = _shades(family, rng)
    mix = _texture_mix(rng.choice(TEXTURES), rng, noise, size, cx, cy, radius)[..., None]
    colour = light + (dark - light) * mix
    background = _background(rng, noise, size)
    image = np.clip(background + (colour - background) * coverage[..., None], 0, 1)
    image = np.round(image * 255) / 255  # as if read from an 8-bit PNG
    return {"image": torch.from_numpy(image).permute(2, 0, 1).float() * 2 - 1,
            "mask": torch.from_numpy(coverage >= 0.5), "kind": kind, "family": family}


def render_set(families: list[str], num: int = 150, size: int = 64, seed: int = 0) -> dict:
    """``num`` items; item i has family ``families[i % len(families)]``. Returns stacked ``images``, ``masks``,
    ``labels`` (family index) and the list of ``kinds``."""
    items = [render(i, size, families[i % len(families)], seed) for i in range(num)]
    return {"images": torch.stack([it["image"] for it in items]), "masks": torch.stack([it["mask"] for it in items]),
            "labels": torch.tensor([i % len(families) for i in range(num)]), "kinds": [it["kind"] for it in items]}


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a & b).sum().item() / max((a | b).sum().item(), 1)


def ground_truth_iou(families: list[str], num: int = 150, size: int = 64, seed: int = 0) -> float:
    """Mean IoU of foreground_mask on the rendered (untranslated) images vs their true masks: the judge's own
    segmentation error, which should be small (>= 0.95)."""
    return _segmentation_iou(render_set(families, num, size, seed))


def _segmentation_iou(judge: dict, image_size: int | None = None) -> float:
    """Mean IoU of foreground_mask vs the true masks; with ``image_size``, of the images resized there and back
    (what a model that changed nothing but the colour could reach through the resize)."""
    images = judge["images"]
    if image_size is not None:
        size = images.shape[-1]
        images = resize_to(resize_to(images, image_size, image_size), size, size)
    ious = [mask_iou(foreground_mask(x), m) for x, m in zip(images, judge["masks"])]
    return sum(ious) / max(len(ious), 1)


# ---------------------------------------------------------------- evaluation


def translate_resized(model, images: torch.Tensor, target: int, generator: torch.Generator) -> torch.Tensor:
    """``images`` into domain ``target`` as ``ganzoo translate --keep-size`` does for a fixed-size model: resized to
    ``model.image_size`` (bilinear, antialiased), translated, resized back to their own size."""
    plan = SizePlan(model.image_size, keep_size=True)
    device = getattr(model, "device", "cpu")
    batch = torch.stack([plan.prepare(x) for x in images]).to(device)
    targets = torch.full((batch.shape[0],), target, dtype=torch.long, device=device)

    def run(x):
        return model.translate(x, targets, generator=generator)

    return torch.stack(plan.apply(run, batch, [tuple(x.shape[-2:]) for x in images])).float()


def evaluate_model(model, num: int = 150, size: int = 64, seed: int = 0, judge_seed: int = 0) -> dict:
    """Judge ``model`` (anything with ``.domains`` (colour families), ``.image_size`` and ``.translate(images,
    target, generator=...)``): every item into every other family, as in quickstart_quality.evaluate."""
    unknown = [d for d in model.domains if d not in FAMILY_HUES]
    if unknown:
        raise GanzooError(f"The second shapes judge needs colour-family domains ({', '.join(FAMILY_HUES)}); "
                          f"this model's domains include {', '.join(unknown)}.")
    judge = render_set(list(model.domains), num, size, judge_seed)
    gen = torch.Generator().manual_seed(seed)
    correct = total = 0
    ious, by_kind = [], {kind: [] for kind in KINDS}
    for d, family in enumerate(model.domains):
        keep = (judge["labels"] != d).nonzero().flatten().tolist()
        if not keep:
            continue
        out = translate_resized(model, judge["images"][keep], d, gen)
        for img, i in zip(out.cpu(), keep):
            mask = judge["masks"][i]
            total += 1
            correct += colour_family_of(img, mask, model.domains) == family
            ious.append(mask_iou(foreground_mask(img), mask))
            by_kind[judge["kinds"][i]].append(ious[-1])
    return {
        "colour_accuracy": correct / max(total, 1),
        "mean_iou": sum(ious) / max(len(ious), 1),
        "iou_at_least_0.8": sum(i >= 0.8 for i in ious) / max(len(ious), 1),
        "translations": total,
        "mean_iou_by_kind": {k: round(sum(v) / len(v), 4) for k, v in by_kind.items() if v},
        "ground_truth_iou": _segmentation_iou(judge),
        "resized_source_iou": _segmentation_iou(judge, model.image_size),
        "size": size,
        "model_image_size": model.image_size,
    }


def evaluate(model_path: str, num: int = 150, size: int = 64, seed: int = 0, judge_seed: int = 0) -> dict:
    import ganzoo

    model = ganzoo.load(model_path)
    result = evaluate_model(model, num, size, seed, judge_seed)
    return {**result, "model": model_path, "step": getattr(model, "step", None)}


def write_grid(model, path: str, rows: int = 8, size: int = 64, seed: int = 0, judge_seed: int = 0) -> None:
    """One row per judge item (one of each kind first): the source, then its translation into every family."""
    from ganzoo.image_output import save_image

    judge = render_set(list(model.domains), rows, size, judge_seed)
    gen = torch.Generator().manual_seed(seed)
    columns = [judge["images"]] + [translate_resized(model, judge["images"], d, gen).cpu()
                                   for d in range(len(model.domains))]
    cells = torch.stack(columns, dim=1)  # (rows, 1 + domains, 3, size, size)
    cells = F.pad(cells, (1, 1, 1, 1), value=1.0)  # a white line between cells
    n_rows, n_cols = cells.shape[:2]
    grid = cells.permute(2, 0, 3, 1, 4).reshape(3, n_rows * (size + 2), n_cols * (size + 2))
    save_image(grid, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--num", type=int, default=150, help="judge items (default 150)")
    parser.add_argument("--size", type=int, default=64, help="judge image size in pixels (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model's random styles / noise")
    parser.add_argument("--judge-seed", type=int, default=0, help="seed of the judge images")
    parser.add_argument("--json")
    parser.add_argument("--grid", help="also write a grid of sources and their translations (PNG) here")
    parser.add_argument("--grid-rows", type=int, default=8)
    args = parser.parse_args(argv)
    result = evaluate(args.model, args.num, args.size, args.seed, args.judge_seed)
    if args.grid:
        import ganzoo

        write_grid(ganzoo.load(args.model), args.grid, args.grid_rows, args.size, args.seed, args.judge_seed)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
