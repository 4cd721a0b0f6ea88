"""Fréchet distance (FID) and kernel distance (KID) between two sets of features.

The maths is torchmetrics': we hand its ``FrechetInceptionDistance`` and
``KernelInceptionDistance`` a pass-through "feature extractor" and feed them features we
computed once (real features are shared by every task and mode of an evaluation). One
exception: with fewer images than feature dimensions, FID's Tr((S_r S_f)^1/2) comes from the
images' cross products instead of a 2048 x 2048 eigendecomposition (the same number, exactly
in exact arithmetic; seconds less per task on a CPU).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ganzoo.errors import GanzooError


class _Precomputed(nn.Module):
    """A feature extractor that returns its input: torchmetrics gets features we already have."""

    def __init__(self, dim: int):
        super().__init__()
        self.num_features = dim

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def _check(real: torch.Tensor, fake: torch.Tensor, need: int, what: str) -> None:
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise GanzooError(f"{what} needs two (N, D) feature sets of the same D, got {tuple(real.shape)} and {tuple(fake.shape)}.")
    if real.shape[0] < need or fake.shape[0] < need:
        raise GanzooError(f"{what} needs at least {need} images per set, got {real.shape[0]} real and {fake.shape[0]} generated.")


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between feature sets (N, D) and (M, D): |mu_r - mu_f|^2 + Tr(S_r + S_f - 2 (S_r S_f)^1/2)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    _check(real, fake, 2, "FID")
    if min(real.shape[0], fake.shape[0]) < real.shape[1]:
        return _frechet_distance_of_few(real.double(), fake.double())
    metric = FrechetInceptionDistance(feature=_Precomputed(real.shape[1]))
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return float(metric.compute())


def _frechet_distance_of_few(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID from the centred features A (N, D), B (M, D): S_r = A'A / (N-1) and S_f = B'B / (M-1), so the nonzero
    eigenvalues of S_r S_f are those of (A B')(A B')' / ((N-1)(M-1)), and Tr((S_r S_f)^1/2) is the sum of the
    singular values of the N x M matrix A B', scaled. Exact, and small when N, M < D."""
    mu_real, mu_fake = real.mean(0), fake.mean(0)
    a, b = real - mu_real, fake - mu_fake
    n, m = real.shape[0] - 1, fake.shape[0] - 1
    mean_term = (mu_real - mu_fake).pow(2).sum()
    trace_sqrt = torch.linalg.svdvals(a @ b.T).sum() / (n * m) ** 0.5
    return float(mean_term + a.pow(2).sum() / n + b.pow(2).sum() / m - 2 * trace_sqrt)


def kernel_distance(real: torch.Tensor, fake: torch.Tensor, *, subsets: int = 100, subset_size: int = 1000,
                    seed: int = 0) -> tuple[float, float]:
    """KID (mean, std over ``subsets`` random subsets): unbiased MMD^2 with the cubic polynomial kernel.

    ``subset_size`` shrinks to the smaller set's size when the sets are small (stated in the protocol).
    """
    from torchmetrics.image.kid import KernelInceptionDistance

    _check(real, fake, 2, "KID")
    size = min(subset_size, real.shape[0], fake.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "will save all extracted features": that is what we want here
        metric = KernelInceptionDistance(feature=_Precomputed(real.shape[1]), subsets=subsets, subset_size=size)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    # torchmetrics draws the subsets with torch's global generator: fork it so the draw is seeded and
    # the caller's random state is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def kid_subset_size(n_real: int, n_fake: int, subset_size: int = 1000) -> int:
    return min(subset_size, n_real, n_fake)
