"""Reading image files robustly, and the augmentation maths on tensors.

``read_image`` turns whatever a user's folder contains (EXIF-rotated photos,
16-bit PNGs, CMYK JPEGs, transparent PNGs, animated GIFs) into a plain RGB
image, or raises a one-sentence :class:`~ganzoo.errors.DataError` naming the
file. The augmentation functions take their random draws from an explicit
``random.Random`` so a dataset's augmentation depends only on the seed it is
given (see :mod:`ganzoo.data.base`).
"""

from __future__ import annotations

import math
import random
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from ganzoo.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif")
MAX_SIDE = 16384
MIN_SIDE = 2

# Modes that carry an alpha channel; they are composited onto white.
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_16BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}


# ---------------------------------------------------------------- reading


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursively, like the StarGAN v2 loader), sorted.

    Hidden files and anything inside hidden folders (``.ipynb_checkpoints``,
    ``.DS_Store``...) are skipped.
    """
    folder = Path(folder)
    found = []
    for path in folder.rglob("*"):
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        if path.is_file():
            found.append(path)
    return sorted(found)


def size_problem(width: int, height: int, max_side: int = MAX_SIDE) -> str | None:
    """Why an image of this size cannot be used, or ``None`` if it can."""
    if width < MIN_SIDE or height < MIN_SIDE:
        return f"is only {width}x{height} pixels; images must be at least {MIN_SIDE}x{MIN_SIDE}"
    if width > max_side or height > max_side:
        return f"is {width}x{height} pixels, larger than the {max_side}x{max_side} limit; downscale it first"
    return None


def read_image(path: str | Path, max_side: int = MAX_SIDE) -> Image.Image:
    """Fully decode ``path`` into an 8-bit RGB image with its EXIF orientation applied.

    Raises :class:`DataError` for empty, non-image, truncated or corrupt files and
    for images smaller than 2x2 or larger than ``max_side`` on a side.
    """
    path = Path(path)
    try:
        num_bytes = path.stat().st_size
    except OSError as exc:
        raise DataError(f'Cannot read image "{path}": {exc.strerror or exc}.') from None
    if num_bytes == 0:
        raise DataError(f'Image "{path}" is an empty file (0 bytes); delete or replace it.')
    try:
        with warnings.catch_warnings():
            # We enforce our own size limit; PIL's bomb warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                problem = size_problem(img.width, img.height, max_side)
                if problem:
                    raise DataError(f'Image "{path}" {problem}.')
                img.seek(0)  # animated images: the first frame
                img.load()  # full decode now, so truncated files fail here and not later
                img = ImageOps.exif_transpose(img)
                return _to_rgb(img)
    except DataError:
        raise
    except UnidentifiedImageError:
        raise DataError(f'File "{path}" is not an image in a format ganzoo can read; delete it or convert it to PNG or JPEG.') from None
    except Image.DecompressionBombError:
        raise DataError(f'Image "{path}" has too many pixels to decode safely; downscale it first.') from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure means the file is unusable
        raise DataError(f'Image "{path}" is truncated or corrupt ({exc}); delete or replace it.') from None


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB (alpha composited onto white)."""
    if img.mode in _16BIT_MODES or img.mode in ("I", "F"):
        img = _high_depth_to_l(img)
    if img.mode in _ALPHA_MODES or "transparency" in img.info:  # tRNS in P/L/RGB PNGs and GIFs
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode != "RGB":
        img = img.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV
    return img


def _high_depth_to_l(img: Image.Image) -> Image.Image:
    """Scale a 16-bit, 32-bit-int or float greyscale image to 8 bits (PIL's convert clips instead)."""
    values = np.asarray(img, dtype=np.float64)
    if img.mode in _16BIT_MODES:
        scaled = values / 257.0
    elif img.mode == "I" and values.min() >= 0 and values.max() <= 255:
        scaled = values  # 8-bit data stored as 32-bit ints
    elif img.mode == "I" and values.min() >= 0 and values.max() <= 65535:
        scaled = values / 257.0  # how PIL opens some 16-bit PNGs/TIFFs
    elif img.mode == "F" and values.min() >= 0 and values.max() <= 1:
        scaled = values * 255.0
    else:
        # Unknown range (signed ints, HDR floats): stretch to the full 8-bit range.
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / max(high - low, 1e-12))
    return Image.fromarray(np.clip(np.round(scaled), 0, 255).astype(np.uint8), mode="L")


def to_tensor(img: Image.Image) -> torch.Tensor:
    """An RGB PIL image as a ``(3, H, W)`` float tensor in [-1, 1]."""
    array = np.array(img.convert("RGB") if img.mode != "RGB" else img, dtype=np.uint8)
    return torch.from_numpy(array).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


# ---------------------------------------------------------------- augmentation


def resize(t: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a ``(C, H, W)`` tensor to ``size x size`` (bilinear, antialiased like PIL)."""
    if t.shape[-2:] == (size, size):
        return t
    return F.interpolate(t[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]


def random_resized_crop_box(
    height: int,
    width: int,
    rng: random.Random,
    scale: tuple[float, float] = (0.8, 1.0),
    ratio: tuple[float, float] = (0.9, 1.1),
) -> tuple[int, int, int, int]:
    """``(top, left, crop_height, crop_width)`` drawn as torchvision's RandomResizedCrop does."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    # Fallback: the largest centred crop whose aspect ratio is within ``ratio``.
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def random_resized_crop(
    t: torch.Tensor,
    size: int,
    rng: random.Random,
    scale: tuple[float, float] = (0.8, 1.0),
    ratio: tuple[float, float] = (0.9, 1.1),
) -> torch.Tensor:
    """Crop a random area fraction ``scale`` with aspect ratio in ``ratio``, resized to ``size x size``."""
    top, left, h, w = random_resized_crop_box(t.shape[-2], t.shape[-1], rng, scale, ratio)
    return resize(t[..., top : top + h, left : left + w], size)


def center_crop(t: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size x size`` window."""
    height, width = t.shape[-2:]
    if size > height or size > width:
        raise ValueError(f"cannot crop {size}x{size} from a {height}x{width} image")
    top, left = (height - size) // 2, (width - size) // 2
    return t[..., top : top + size, left : left + size]


def random_crop(t: torch.Tensor, size: int, rng: random.Random) -> torch.Tensor:
    """A uniformly placed ``size x size`` window."""
    height, width = t.shape[-2:]
    if size > height or size > width:
        raise ValueError(f"cannot crop {size}x{size} from a {height}x{width} image")
    top, left = rng.randint(0, height - size), rng.randint(0, width - size)
    return t[..., top : top + size, left : left + size]


def hflip(t: torch.Tensor) -> torch.Tensor:
    """Mirror left-right."""
    return t.flip(-1)
