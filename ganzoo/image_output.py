"""Writing images: [-1, 1] tensors to uint8 pixels and to PNG/JPEG files (``ganzoo translate``, :mod:`ganzoo.sheets`)."""

from __future__ import annotations

from pathlib import Path

import torch


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1,1] float (…,3,H,W) -> uint8 (…,H,W,3)."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.movedim(-3, -1).cpu()


def save_image(image: torch.Tensor, path: str | Path) -> None:
    """Save one (3,H,W) [-1,1] tensor as PNG/JPEG (by extension)."""
    from PIL import Image

    Image.fromarray(to_uint8(image).numpy()).save(path)
