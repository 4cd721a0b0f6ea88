"""The StarGAN v1 datasets: CelebA with attribute labels, and RaFD (one folder per expression).

CelebA follows the official loader: ``list_attr_celeba.txt`` (line 1 the image
count, line 2 the 40 attribute names, then ``filename`` and 40 values in
{1, -1} per line); the chosen attribute columns become a multi-hot label; the
lines are shuffled with ``random.seed(1234)`` and the first 1,999 shuffled
lines are the test split; images are centre-cropped to 178 and resized.

Attribute labels are lists of 0/1 (``labels[i]``), and ``label_kind`` tells
the model so. Batches are drawn uniformly, as the official shuffling loader
does: the whole set is one sampling group.

``celeba_rafd`` joins the two for the paper's mask-vector training (official
``--dataset Both``): labels ``[c_celeba | c_rafd | mask]``, ``label_kind`` "joint".
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from ganzoo.api import (
    DataError,
    ImageDataset,
    ImageFolderDataset,
    SplitMissing,
    center_crop,
    did_you_mean,
    hflip,
    read_image,
    resize,
    to_tensor,
)

CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()
DEFAULT_ATTRIBUTES = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
# Hair colours are mutually exclusive when test targets are built (official create_labels).
HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")

# Official split: shuffle with seed 1234, keep shuffled lines 0..1998 for testing.
SPLIT_SEED = 1234
NUM_TEST = 1999

RAFD_EXPRESSIONS = ["angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised"]


class CelebADataset(ImageDataset):
    """Aligned CelebA faces labelled with selected attributes (multi-hot), as in the StarGAN paper.

    ``root`` holds ``images/*.jpg`` and ``list_attr_celeba.txt`` (the official
    ``download.sh celeba`` layout); ``domains`` are the selected attribute names.
    Splits: ``train``, and ``test`` (also called ``val``): the first ``num_test`` shuffled
    lines (official: 1,999).
    """

    label_kind = "attributes"

    def __init__(
        self,
        root: str = "data/celeba",
        split: str = "train",
        image_size: int = 128,
        domains: list[str] | None = None,
        crop_size: int = 178,
        flip: bool = True,
        num_test: int = NUM_TEST,
    ):
        self.root = Path(root).expanduser()
        image_dir, attr_file = self.root / "images", self.root / "list_attr_celeba.txt"
        if not image_dir.is_dir() or not attr_file.is_file():
            raise DataError(
                f"CelebA is not in {self.root}: put the aligned images in {image_dir}/ and the attribute file at "
                f"{attr_file} (the official StarGAN script `bash download.sh celeba` fetches both), or set data.root."
            )
        if split not in ("train", "val", "test"):
            raise DataError(f'Unknown CelebA split "{split}"; use train or test (val is the same as test).')
        self.split = split
        self.image_dir = image_dir
        self.image_size = int(image_size)
        self.crop_size = int(crop_size)
        self.flip = flip
        self.domains = list(DEFAULT_ATTRIBUTES if domains is None else domains)

        lines = [line for line in attr_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        if len(lines) < 3:
            raise DataError(f"{attr_file} has no image lines; expected a count, the attribute names, then one line per image.")
        names = lines[1].split()
        for attr in self.domains:
            if attr not in names:
                raise DataError(f'Attribute "{attr}" (data.domains) is not in {attr_file}.{did_you_mean(attr, names)}')
        columns = [names.index(attr) for attr in self.domains]
        lines = lines[2:]
        random.Random(SPLIT_SEED).shuffle(lines)  # the same permutation as the official random.seed(1234); shuffle
        chosen = lines[:num_test] if split in ("val", "test") else lines[num_test:]
        self.files: list[str] = []
        self.labels: list[list[int]] = []
        for line in chosen:
            fields = line.split()
            if len(fields) != len(names) + 1:
                raise DataError(f'{attr_file}: the line for "{fields[0]}" has {len(fields) - 1} values, expected {len(names)}.')
            self.files.append(fields[0])
            self.labels.append([int(fields[1 + c] == "1") for c in columns])
        if not self.files:
            raise DataError(f"{attr_file} lists no images for the {split} split (the first {num_test} shuffled lines are the test split).")

    def indices_by_label(self) -> list[list[int]]:
        # Multi-hot labels do not partition the set; sample uniformly like the official loader.
        return [list(range(len(self.files)))]

    def attributes(self, index: int) -> torch.Tensor:
        """The multi-hot label of item ``index`` as a float vector (one entry per selected attribute)."""
        return torch.tensor(self.labels[index], dtype=torch.float32)

    def load(self, index: int, rng: random.Random | None = None) -> torch.Tensor:
        tensor = to_tensor(read_image(self.image_dir / self.files[index]))
        side = min(self.crop_size, *tensor.shape[-2:])
        tensor = resize(center_crop(tensor, side), self.image_size)
        if rng is not None and self.flip and rng.random() < 0.5:
            tensor = hflip(tensor)
        return tensor


class RaFDDataset(ImageFolderDataset):
    """RaFD faces, one folder per expression (``ROOT/train/<expression>/*.jpg``, ``ROOT/test/...``).

    Official transform: horizontal flip, centre crop ``crop_size`` (256), resize.
    The ``val`` split reads ``ROOT/test`` when there is no ``ROOT/val``.
    """

    def __init__(
        self,
        root: str = "data/RaFD",
        split: str = "train",
        image_size: int = 128,
        domains: list[str] | None = None,
        crop_size: int = 256,
        flip: bool = True,
    ):
        base = Path(root).expanduser()
        if split == "val" and not (base / "val").is_dir() and (base / "test").is_dir():
            split = "test"
        if not (base / split).is_dir():
            raise SplitMissing(
                f"RaFD is not in {base}: put the images in {base}/train/<expression>/*.jpg and {base}/test/<expression>/ "
                "(RaFD is available on request from Radboud University), or set data.root."
            )
        super().__init__(str(base), split=split, image_size=image_size, domains=domains, flip=flip, randcrop_prob=0.0)
        self.crop_size = int(crop_size)

    def load(self, index: int, rng: random.Random | None = None) -> torch.Tensor:
        tensor = to_tensor(self._read(index))
        side = min(self.crop_size, *tensor.shape[-2:])
        tensor = resize(center_crop(tensor, side), self.image_size)
        if rng is not None and self.flip and rng.random() < 0.5:
            tensor = hflip(tensor)
        return tensor


class CelebARaFDDataset(ImageDataset):
    """CelebA and RaFD together, for the paper's joint training with a mask vector (official ``--dataset Both``).

    Items are the CelebA items followed by the RaFD items; ``domains`` are the
    selected CelebA attributes followed by the RaFD expressions. Every label is
    the generator's full condition vector ``[c_celeba | c_rafd | mask]``: the other
    dataset's part is zeros and the 2-dim mask is ``[1, 0]`` for CelebA, ``[0, 1]``
    for RaFD. Each training example holds one image of each set (see
    :meth:`joint_pair`), so one trainer step can alternate the two as the official
    ``train_multi`` does.
    """

    label_kind = "joint"

    def __init__(
        self,
        celeba_root: str = "data/celeba",
        rafd_root: str = "data/RaFD",
        split: str = "train",
        image_size: int = 128,
        selected_attrs: list[str] | None = None,
        expressions: list[str] | None = None,
        celeba_crop_size: int = 178,
        rafd_crop_size: int = 256,
        flip: bool = True,
        num_test: int = NUM_TEST,
    ):
        celeba_dir, rafd_dir = Path(celeba_root).expanduser(), Path(rafd_root).expanduser()
        missing = []
        if not (celeba_dir / "images").is_dir() or not (celeba_dir / "list_attr_celeba.txt").is_file():
            missing.append(f"CelebA is not in {celeba_dir} (it needs images/*.jpg and list_attr_celeba.txt, which the "
                           "official StarGAN script `bash download.sh celeba` fetches; or set data.celeba_root)")
        if not (rafd_dir / "train").is_dir():
            missing.append(f"RaFD is not in {rafd_dir} (it needs train/<expression>/*.jpg and test/<expression>/, "
                           "available on request from Radboud University; or set data.rafd_root)")
        if missing:
            raise DataError(f"Joint CelebA + RaFD training needs both data sets, but {' and '.join(missing)}.")
        self.celeba = CelebADataset(str(celeba_dir), split=split, image_size=image_size, domains=selected_attrs,
                                    crop_size=celeba_crop_size, flip=flip, num_test=num_test)
        self.rafd = RaFDDataset(str(rafd_dir), split=split, image_size=image_size, domains=expressions,
                                crop_size=rafd_crop_size, flip=flip)
        overlap = set(self.celeba.domains) & set(self.rafd.domains)
        if overlap:
            raise DataError(f'"{sorted(overlap)[0]}" is both a CelebA attribute and a RaFD expression; rename the expression folder.')
        self.split = split
        self.image_size = int(image_size)
        self.num_attributes = len(self.celeba.domains)
        self.domains = self.celeba.domains + self.rafd.domains
        sizes = (self.num_attributes, len(self.rafd.domains))
        self.labels = [joint_label(*sizes, attributes=a) for a in self.celeba.labels]
        self.labels += [joint_label(*sizes, expression=y) for y in self.rafd.labels]
        self.skipped = self.rafd.skipped

    def indices_by_label(self) -> list[list[int]]:
        # Two groups, one per data set: the samples grid alternates CelebA and RaFD sources.
        n = len(self.celeba)
        return [list(range(n)), list(range(n, n + len(self.rafd)))]

    def joint_pair(self, index: int, rng: random.Random) -> tuple[int, int]:
        """A CelebA and a RaFD item for one training example: ``index`` for its own set, the other uniform from ``rng``.

        Each set is so sampled uniformly, as the official shuffling loaders do.
        """
        n = len(self.celeba)
        if index < n:
            return index, n + rng.randrange(len(self.rafd))
        return rng.randrange(n), index

    def load(self, index: int, rng: random.Random | None = None) -> torch.Tensor:
        n = len(self.celeba)
        return self.celeba.load(index, rng) if index < n else self.rafd.load(index - n, rng)


def joint_label(num_attributes: int, num_expressions: int, *, attributes: list[int] | None = None,
                expression: int | None = None) -> list[int]:
    """The joint condition ``[c_celeba | c_rafd | mask]`` of a CelebA item (its 0/1 ``attributes``, mask [1, 0])
    or of a RaFD item (its ``expression`` index one-hot, mask [0, 1]); the other set's part is zeros."""
    if attributes is not None:
        return [int(a) for a in attributes] + [0] * num_expressions + [1, 0]
    one_hot = [0] * num_expressions
    one_hot[int(expression)] = 1
    return [0] * num_attributes + one_hot + [0, 1]
