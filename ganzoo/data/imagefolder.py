"""Image folders in the official StarGAN v2 layout: ``ROOT/<split>/<domain>/*.jpg``.

Real folders contain junk: empty files, HTML pages saved as ``.jpg``, files cut
short by an interrupted download. Scanning skips what a cheap header check can
catch (recorded in ``skipped``); a file that only fails at full decode time is
replaced by the next readable image of its domain (recorded in ``bad_paths``)
instead of crashing a long training run.
"""

from __future__ import annotations

import os
import random
import warnings
from pathlib import Path

import torch
from PIL import Image

from ganzoo.data.base import ImageDataset
from ganzoo.data.images import (
    IMAGE_EXTENSIONS,
    hflip,
    list_images,
    random_resized_crop,
    read_image,
    resize,
    size_problem,
    to_tensor,
)
from ganzoo.errors import DataError, SplitMissing, did_you_mean

LAYOUT = "ROOT/train/<domain>/*.jpg and ROOT/val/<domain>/*.jpg"


def header_problem(path: Path) -> str | None:
    """Why ``path`` cannot be an image, judged from its header only; ``None`` if it looks fine."""
    try:
        if path.stat().st_size == 0:
            return "empty file"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:  # reads the header, decodes nothing
                return size_problem(img.width, img.height)
    except Image.DecompressionBombError:
        return "too many pixels to decode safely"
    except Exception as exc:  # noqa: BLE001 - unknown format, unreadable file, broken header
        return f"not a readable image ({type(exc).__name__})"


class ImageFolderDataset(ImageDataset):
    """Labelled images from ``root/split/<domain>/``; a domain is a sub-folder name."""

    def __init__(
        self,
        root: str,
        split: str = "train",
        image_size: int = 256,
        domains: list[str] | None = None,
        flip: bool = True,
        randcrop_prob: float = 0.5,
    ):
        self.root = Path(root).expanduser()
        self.split = split
        self.image_size = int(image_size)
        self.flip = flip
        self.randcrop_prob = randcrop_prob
        split_dir = self.root / split
        if not split_dir.is_dir():
            raise SplitMissing(f'Dataset folder "{split_dir}" is missing; the expected layout is {LAYOUT}.')

        available = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        if domains is None:
            domains = available
        for name in domains:
            if name not in available:
                raise DataError(
                    f'Domain "{name}" has no folder in "{split_dir}".{did_you_mean(name, available)} '
                    f"Available domains: {', '.join(available) or 'none'}."
                )
        if len(set(domains)) != len(domains):
            raise DataError(f"data.domains lists a domain twice: {list(domains)}.")
        if len(domains) < 2:
            raise DataError(
                f'"{split_dir}" has {len(domains)} domain folder(s) ({", ".join(domains) or "none"}); '
                f"image translation needs at least 2, laid out as {LAYOUT}."
            )
        self.domains = list(domains)

        self.paths: list[Path] = []
        self.labels = []
        self.skipped: list[tuple[Path, str]] = []
        self.bad_paths: set[Path] = set()
        for label, name in enumerate(self.domains):
            folder = split_dir / name
            if not os.access(folder, os.R_OK | os.X_OK):  # listing it would just find nothing
                raise DataError(f'Domain folder "{folder}" cannot be read (permission denied); '
                                "give your user read access to it (chmod -R u+rX).")
            files = list_images(folder)
            if not files:
                raise DataError(f'Domain folder "{folder}" contains no images ({", ".join(IMAGE_EXTENSIONS)}).')
            usable = 0
            for path in files:
                problem = header_problem(path)
                if problem is None:
                    self.paths.append(path)
                    self.labels.append(label)
                    usable += 1
                else:
                    self.skipped.append((path, problem))
            if usable == 0:
                raise DataError(f'None of the {len(files)} files in domain folder "{folder}" is a readable image.')
        self._groups = self.indices_by_label()

    @property
    def num_skipped(self) -> int:
        """Files left out: at scan time (``skipped``) plus those that failed to decode (``bad_paths``)."""
        return len(self.skipped) + len(self.bad_paths)

    def load(self, index: int, rng: random.Random | None = None) -> torch.Tensor:
        return self.transform(self._read(index), rng)

    def transform(self, image: Image.Image, rng: random.Random | None = None) -> torch.Tensor:
        """One decoded image as a training (``rng`` given) or evaluation tensor."""
        tensor = to_tensor(image)
        if rng is None:
            return resize(tensor, self.image_size)
        # The official StarGAN v2 training transform: random resized crop with
        # probability randcrop_prob, resize, horizontal flip.
        if rng.random() < self.randcrop_prob:
            tensor = random_resized_crop(tensor, self.image_size, rng, scale=(0.8, 1.0), ratio=(0.9, 1.1))
        tensor = resize(tensor, self.image_size)
        if self.flip and rng.random() < 0.5:
            tensor = hflip(tensor)
        return tensor

    def _read(self, index: int) -> Image.Image:
        """Decode item ``index``, or (if it is corrupt) the next readable image of the same domain."""
        group = self._groups[self.labels[index]]
        start = index - group[0]  # items were added domain by domain, so each group is contiguous
        for step in range(len(group)):
            path = self.paths[group[(start + step) % len(group)]]
            if path in self.bad_paths:
                continue
            try:
                return read_image(path)
            except DataError:
                self.bad_paths.add(path)
        domain = self.domains[self.labels[index]]
        raise DataError(f'Every image of domain "{domain}" in "{self.root / self.split}" failed to decode.')
