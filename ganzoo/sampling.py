"""Sample sheets: image grids written by the trainer and by ``ganzoo translate``."""

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


def make_grid(rows: list[list[torch.Tensor]], pad: int = 2, fill: float = 1.0) -> torch.Tensor:
    """Tile ``rows`` of (3,H,W) tensors (all the same size) into one (3,H',W') image."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    _, h, w = rows[0][0].shape
    grid = torch.full((3, n_rows * (h + pad) + pad, n_cols * (w + pad) + pad), fill)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            top, left = pad + i * (h + pad), pad + j * (w + pad)
            grid[:, top : top + h, left : left + w] = img.detach().float().cpu()
    return grid


def label_grid(grid: torch.Tensor, column_labels: list[str], cell: int, pad: int = 2, first_column_label: str = "") -> torch.Tensor:
    """Add a header row naming each column (the PIL built-in bitmap font; no font files needed)."""
    from PIL import Image, ImageDraw

    header_h = 12
    img = Image.fromarray(to_uint8(grid).numpy())
    out = Image.new("RGB", (img.width, img.height + header_h), (255, 255, 255))
    out.paste(img, (0, header_h))
    draw = ImageDraw.Draw(out)
    for j, text in enumerate([first_column_label, *column_labels]):
        left = pad + j * (cell + pad)
        draw.text((left + 1, 0), text[: max(1, cell // 6)], fill=(0, 0, 0))
    t = torch.from_numpy(__import__("numpy").array(out)).permute(2, 0, 1).float() / 127.5 - 1
    return t


@torch.no_grad()
def target_grid(model, images: torch.Tensor, labels: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    """Rows: source images; columns: the source, then its translation into every domain."""
    device = model.device
    images = images.to(device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    columns = [images]
    for d in range(len(model.domains)):
        target = torch.full((images.shape[0],), d, dtype=torch.long, device=device)
        columns.append(model.translate(images, target, generator=gen))
    rows = [[col[i] for col in columns] for i in range(images.shape[0])]
    grid = make_grid(rows)
    return label_grid(grid, model.domains, cell=images.shape[-1], first_column_label="input")
