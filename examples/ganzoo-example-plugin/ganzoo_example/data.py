"""Horizontal (domain 0) and vertical (domain 1) grey gradients."""

import random

import torch

from ganzoo.api import ImageDataset


class GradientsDataset(ImageDataset):
    """Grey gradients; the domain is the direction."""

    def __init__(self, split: str = "train", image_size: int = 16, count: int = 64):
        self.image_size = image_size
        self.domains = ["horizontal", "vertical"]
        self.labels = [i % 2 for i in range(count)]

    def load(self, index: int, rng: random.Random | None = None) -> torch.Tensor:
        ramp = torch.linspace(-1, 1, self.image_size)
        image = ramp.expand(self.image_size, -1) if self.labels[index] == 0 else ramp[:, None].expand(-1, self.image_size)
        if rng is not None:
            image = image * rng.uniform(0.5, 1.0)
        return image.expand(3, -1, -1).clone()
