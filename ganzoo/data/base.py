"""The contract every ganzoo dataset follows.

A dataset is a list of labelled images. Training never indexes it with plain
integers: the trainer's sampler hands out ``(index, seed)`` pairs and the
dataset's :meth:`ImageDataset.load` applies augmentation drawn from a
``random.Random(seed)``. Augmentation therefore depends only on the seed, not
on worker processes or on how far a previous run got, which is what makes a
resumed run (or a run on another number of processes) reproduce the same
batches.
"""

from __future__ import annotations

import random
from typing import ClassVar, Sequence

import torch


class ImageDataset(torch.utils.data.Dataset):
    """Images with integer domain labels, returned as float tensors in [-1, 1].

    Subclasses set ``domains`` (names, index = label) and ``labels`` (one int per
    item) and implement :meth:`load`.
    """

    domains: list[str]
    labels: list[int]
    image_size: int
    #: "one-hot" (an int domain per item), "attributes" (a 0/1 vector per item) or "joint" (StarGAN v1's
    #: CelebA + RaFD labels with the mask vector); a model reads it through :func:`ganzoo.model.dataset_label_kind`
    label_kind: ClassVar[str] = "one-hot"

    def __len__(self) -> int:
        return len(self.labels)

    def load(self, index: int, rng: random.Random | None = None) -> torch.Tensor:
        """Return image ``index`` as a ``(3, image_size, image_size)`` tensor in [-1, 1].

        ``rng`` drives the training augmentation; ``None`` means no augmentation
        (evaluation, sampling).
        """
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"image": self.load(index), "label": torch.tensor(self.labels[index])}

    def indices_by_label(self) -> list[list[int]]:
        """Item indices grouped by label (used for class-balanced sampling)."""
        groups: list[list[int]] = [[] for _ in self.domains]
        for i, y in enumerate(self.labels):
            groups[y].append(i)
        return groups

    def label_groups(self) -> list[list[int]]:
        """:meth:`indices_by_label`, computed once per dataset (labels are fixed once it is built); shared, so
        callers must not modify the lists. Models drawing extra items per example (references, the other domain's
        image) use this in ``training_item``."""
        groups = self.__dict__.get("_label_groups")
        if groups is None:
            groups = self.__dict__["_label_groups"] = self.indices_by_label()
        return groups


def balanced_index(groups: Sequence[Sequence[int]], rng: random.Random, label: int | None = None) -> int:
    """Draw an item index: a uniformly random non-empty domain (or ``label``), then a random item in it.

    Equivalent in distribution to the official StarGAN v2 loader's
    ``WeightedRandomSampler`` with weights ``1 / class_count`` (with replacement).
    """
    if label is None:
        label = rng.choice([y for y, g in enumerate(groups) if g])
    return rng.choice(groups[label])
