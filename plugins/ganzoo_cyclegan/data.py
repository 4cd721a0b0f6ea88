"""The official ``unaligned`` dataset: ``ROOT/trainA``, ``trainB`` (and ``testA``, ``testB``).

Training preprocessing is the official ``resize_and_crop`` with flips:
resize to ``load_size`` x ``load_size`` (bicubic, 286), a random
``image_size`` crop (256), a random horizontal flip. Without an ``rng``
(sampling, evaluation) an image is resized straight to ``image_size``, as the
official test options do (they set load_size = crop_size and no flip).

:func:`resize_crop_flip` applies one draw of that transform to several
images at once; pix2pix's aligned dataset uses it so both halves of a pair
get the same crop and flip.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from PIL import Image

from ganzoo.api import DataError, ImageDataset, SplitMissing, did_you_mean, header_problem, list_images, read_image, to_tensor

CYCLEGAN_DATASETS_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets"
SPLIT_FOLDERS = {"train": "train", "val": "test", "test": "test"}  # the official sets ship no val split


def resize_crop_flip(
    images: list[Image.Image], image_size: int, rng: random.Random | None, load_size: int, flip: bool = True
) -> list[torch.Tensor]:
    """The official transform, one random draw shared by all ``images``; tensors in [-1, 1].

    Draw order follows the official ``get_params``: crop x, crop y, then the flip.
    """
    if rng is None:
        return [to_tensor(img.resize((image_size, image_size), Image.Resampling.BICUBIC)) for img in images]
    if load_size < image_size:
        raise DataError(f"data.load_size ({load_size}) must be at least data.image_size ({image_size}), the crop taken from it.")
    left = rng.randint(0, load_size - image_size)
    top = rng.randint(0, load_size - image_size)
    mirror = flip and rng.random() > 0.5
    out = []
    for img in images:
        img = img.resize((load_size, load_size), Image.Resampling.BICUBIC)
        tensor = to_tensor(img)[:, top : top + image_size, left : left + image_size]
        out.append(tensor.flip(-1) if mirror else tensor)
    return out


def missing_folder_error(folder: Path, layout: str, url: str) -> DataError:
    """One sentence: which folder is missing, the layout, and where the official data lives."""
    return SplitMissing(
        f'Dataset folder "{folder}" is missing; the expected layout is {layout}: download {url} '
        f"(or run the official download script for it) and unpack it there, or point data.root elsewhere."
    )


def usable_images(folder: Path) -> list[Path]:
    """Image files in ``folder`` whose header reads (empty files and saved HTML pages are skipped)."""
    return [path for path in list_images(folder) if header_problem(path) is None]


class UnalignedDataset(ImageDataset):
    """Two unpaired image folders, ``ROOT/<split>A`` (label 0) and ``ROOT/<split>B`` (label 1).

    ``domains`` names the two sides (default ``["A", "B"]``, e.g. ``[horse, zebra]``).
    The model draws the partner image of the other domain (see ``CycleGAN.training_item``).
    """

    def __init__(
        self,
        root: str = "datasets/horse2zebra",
        split: str = "train",
        image_size: int = 256,
        domains: list[str] | None = None,
        load_size: int = 286,
        flip: bool = True,
    ):
        if split not in SPLIT_FOLDERS:
            raise (SplitMissing if split == "val" else DataError)(f'Unknown split "{split}" for an unaligned dataset.{did_you_mean(split, SPLIT_FOLDERS)} Splits: train, test.')
        self.root = Path(root).expanduser()
        self.split = split
        self.image_size, self.load_size, self.flip = int(image_size), int(load_size), flip
        self.domains = list(domains or ["A", "B"])
        if len(self.domains) != 2 or len(set(self.domains)) != 2:
            raise DataError(f"An unaligned dataset has two sides, A and B; data.domains must name two, got {self.domains}.")
        url = f"{CYCLEGAN_DATASETS_URL}/{self.root.name}.zip"
        self.paths: list[Path] = []
        self.labels = []
        for label, side in enumerate("AB"):
            folder = self.root / f"{SPLIT_FOLDERS[split]}{side}"
            if not folder.is_dir():
                raise missing_folder_error(folder, "ROOT/trainA, trainB, testA, testB", url)
            files = usable_images(folder)
            if not files:
                raise DataError(f'Folder "{folder}" holds no readable images (jpg, png, ...); the {self.domains[label]} side is empty.')
            self.paths += files
            self.labels += [label] * len(files)

    def load(self, index: int, rng: random.Random | None = None) -> torch.Tensor:
        (tensor,) = resize_crop_flip([read_image(self.paths[index])], self.image_size, rng, self.load_size, self.flip)
        return tensor
