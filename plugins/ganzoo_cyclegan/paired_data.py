"""Paired datasets for pix2pix.

* ``aligned``: the official layout, ``ROOT/<split>/*.jpg`` where each file is
  the pair side by side (A left, B right); ``direction`` AtoB or BtoA picks
  which half is the input. Both halves get the same resize/crop/flip.
* ``shapes_pairs``: built from the core shapes set, CPU-sized: the input is
  the object's silhouette (white on black), the output the rendered object.
  The silhouette fixes the shape and position; colour shade, texture and
  background are left for the generator to invent, so even a perfect model
  has a nonzero L1 (see ``benchmarks/pix2pix_shapes.py``).

Both label every item 0 (the input domain) and add :meth:`load_pair`, which
``Pix2Pix.training_item`` uses; :meth:`load` returns the input alone, for
sample sheets and ``ganzoo translate``.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from PIL import Image

from ganzoo.api import FAMILY_HUES, DataError, ImageDataset, ShapesDataset, did_you_mean, read_image
from ganzoo_cyclegan.data import missing_folder_error, resize_crop_flip, usable_images

PIX2PIX_DATASETS_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets"
DIRECTIONS = ("AtoB", "BtoA")


class AlignedDataset(ImageDataset):
    """Side-by-side A|B images from ``ROOT/<split>/``; ``domains`` names [input, output]."""

    def __init__(
        self,
        root: str = "datasets/facades",
        split: str = "train",
        image_size: int = 256,
        domains: list[str] | None = None,
        direction: str = "AtoB",
        load_size: int = 286,
        flip: bool = True,
    ):
        if direction not in DIRECTIONS:
            raise DataError(f'data.direction must be AtoB or BtoA, got "{direction}".{did_you_mean(direction, DIRECTIONS)}')
        self.root = Path(root).expanduser()
        self.split, self.direction = split, direction
        self.image_size, self.load_size, self.flip = int(image_size), int(load_size), flip
        self.domains = list(domains or (["A", "B"] if direction == "AtoB" else ["B", "A"]))
        if len(self.domains) != 2 or len(set(self.domains)) != 2:
            raise DataError(f"An aligned dataset pairs an input with an output; data.domains must name two, got {self.domains}.")
        folder = self.root / split
        if split == "val" and not folder.is_dir():
            folder = self.root / "test"  # some official sets ship train/test only
        if not folder.is_dir():
            raise missing_folder_error(folder, "ROOT/train, ROOT/val (or test) of A|B side-by-side images",
                                       f"{PIX2PIX_DATASETS_URL}/{self.root.name}.tar.gz")
        self.paths = usable_images(folder)
        if not self.paths:
            raise DataError(f'Folder "{folder}" holds no readable images (jpg, png, ...).')
        self.labels = [0] * len(self.paths)

    def _halves(self, index: int) -> tuple[Image.Image, Image.Image]:
        pair = read_image(self.paths[index])
        half = pair.width // 2
        if half < 2:
            raise DataError(f'Image "{self.paths[index]}" is too narrow to hold an A|B pair side by side.')
        a, b = pair.crop((0, 0, half, pair.height)), pair.crop((half, 0, 2 * half, pair.height))
        return (a, b) if self.direction == "AtoB" else (b, a)

    def load_pair(self, index: int, rng: random.Random | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        source, target = resize_crop_flip(list(self._halves(index)), self.image_size, rng, self.load_size, self.flip)
        return source, target

    def load(self, index: int, rng: random.Random | None = None) -> torch.Tensor:
        return self.load_pair(index, rng)[0]


class ShapesPairsDataset(ImageDataset):
    """Silhouette -> rendered object pairs from the shapes set (one colour family, ``domains[1]``)."""

    def __init__(
        self,
        split: str = "train",
        image_size: int = 32,
        domains: list[str] | None = None,
        num_train: int = 4000,
        num_val: int = 200,
        seed: int = 0,
        flip: bool = True,
    ):
        self.domains = list(domains or ["silhouette", "blue"])
        if len(self.domains) != 2 or self.domains[1] not in FAMILY_HUES:
            raise DataError(
                f"shapes_pairs data.domains is [input name, colour family of the objects], got {self.domains}; "
                f"the family must be one of {', '.join(FAMILY_HUES)}."
            )
        self.shapes = ShapesDataset(split, image_size, [self.domains[1]], num_train, num_val, seed, flip=False)
        self.image_size, self.flip = self.shapes.image_size, flip
        self.labels = [0] * len(self.shapes)

    def load_pair(self, index: int, rng: random.Random | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        image, coverage = self.shapes.render(index)
        target = torch.from_numpy(image.copy()).permute(2, 0, 1).float().div(127.5).sub(1.0)
        # Antialiased coverage as grey levels: -1 background, +1 inside the object.
        source = torch.from_numpy(coverage.copy()).float().div(127.5).sub(1.0).expand(3, -1, -1).clone()
        if rng is not None and self.flip and rng.random() < 0.5:
            source, target = source.flip(-1), target.flip(-1)
        return source, target

    def load(self, index: int, rng: random.Random | None = None) -> torch.Tensor:
        return self.load_pair(index, rng)[0]

    def mask(self, index: int) -> torch.Tensor:
        """The object's silhouette as an ``(H, W)`` bool tensor (unflipped)."""
        return self.shapes.mask(index)
