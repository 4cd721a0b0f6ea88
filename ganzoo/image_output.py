"""Writing images: [-1, 1] tensors to uint8 pixels and to PNG/JPEG files (``ganzoo translate``, :mod:`ganzoo.sheets`).

Every file is written beside its destination under a hidden temp name and renamed into place, so a kill (or a
full disk) never leaves an empty or truncated image under its final name.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import torch


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1,1] float (…,3,H,W) -> uint8 (…,H,W,3)."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.movedim(-3, -1).cpu()


@contextlib.contextmanager
def written_beside(path: str | Path) -> Iterator[Path]:
    """Yield a hidden temp path beside ``path`` (same suffix, so writers pick the format from it); on success it
    is renamed onto ``path``, on any failure it is removed and ``path`` is left as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def save_image(image: torch.Tensor, path: str | Path) -> None:
    """Save one (3,H,W) [-1,1] tensor as PNG/JPEG (by extension), renamed into place when complete."""
    from PIL import Image

    with written_beside(path) as tmp:
        Image.fromarray(to_uint8(image).numpy()).save(tmp)
