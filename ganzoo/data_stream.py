"""The training data stream: every step's batch is drawn from ``(seed, step)`` alone.

Nothing in a batch depends on earlier steps or on the global RNG, so a resumed run
continues with exactly the batches the uninterrupted run would have seen, and a
distributed run's ranks together draw what one process draws.
"""

from __future__ import annotations

import random
from typing import Iterator

import torch

from ganzoo import distributed
from ganzoo.errors import DataError
from ganzoo.model import GANModel, data_kwargs
from ganzoo.recipe import Recipe


def build_dataset(recipe: Recipe, split: str, registry=None):
    """The recipe's dataset for ``split`` (``registry``: the one already resolved, else the process's)."""
    if registry is None:
        from ganzoo.plugins import get_registry

        registry = get_registry()
    dataset_cls = registry.get("datasets", recipe.data.name)
    try:
        return dataset_cls(split=split, **data_kwargs(recipe))
    except DataError as exc:
        hint = recipe.data.download_hint
        if hint and "missing" in str(exc):
            raise type(exc)(f"{str(exc).rstrip('.')}; {hint}") from None  # same class: SplitMissing stays SplitMissing
        raise


class StepSampler(torch.utils.data.Sampler):
    """Yields, for each step, a list of ``(index, seed)`` pairs drawn from ``(seed, step)`` alone.

    Indices are class balanced (a random domain, then a random image of it), as
    the official StarGAN v2 loader samples.
    """

    def __init__(self, groups: list[list[int]], batch_size: int, seed: int, start_step: int, total_steps: int, balanced: bool = True,
                 rank: int = 0, world_size: int = 1):
        self.groups, self.batch_size, self.seed = groups, batch_size, seed
        self.start_step, self.total_steps, self.balanced = start_step, total_steps, balanced
        self.all_indices = [i for g in groups for i in g]
        # Under DDP ``batch_size`` is the global batch; this rank takes its contiguous chunk of it.
        self.rank, self.world_size = rank, world_size
        self.local = distributed.check_batch(batch_size, world_size)

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        from ganzoo.data.base import balanced_index

        for step in range(self.start_step, self.total_steps):
            rng = random.Random(self.seed * 1_000_003 + step)
            batch = []
            for _ in range(self.batch_size):
                index = balanced_index(self.groups, rng) if self.balanced else rng.choice(self.all_indices)
                batch.append((index, rng.getrandbits(63)))
            yield batch[self.rank * self.local:(self.rank + 1) * self.local]


class TrainItems(torch.utils.data.Dataset):
    """Turns ``(index, seed)`` into the model's training example."""

    def __init__(self, dataset, model: GANModel):
        self.dataset, self.model = dataset, model

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        index, seed = key
        return self.model.training_item(self.dataset, index, random.Random(seed))


def step_batches(dataset, model: GANModel, recipe: Recipe, *, start_step: int, device: torch.device,
                 rank: int = 0, world_size: int = 1) -> Iterator[dict[str, torch.Tensor]]:
    """The batches of steps ``start_step`` .. ``train.steps - 1``, on ``device``."""
    cfg, data = recipe.train, recipe.data
    sampler = StepSampler(dataset.indices_by_label(), data.batch_size, cfg.seed, start_step, cfg.steps,
                          rank=rank, world_size=world_size)
    loader = torch.utils.data.DataLoader(
        TrainItems(dataset, model),
        batch_sampler=sampler,
        num_workers=data.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if data.num_workers > 0 else None,
        # Its own generator: creating the iterator must not draw from the global RNG, or a resumed
        # run would see different random numbers from the uninterrupted one.
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    for batch in loader:
        yield {k: v.to(device, non_blocking=True) for k, v in batch.items()}
