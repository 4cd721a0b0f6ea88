"""LPIPS distance and the StarGAN v2 diversity score.

LPIPS v0.1 "lin" on AlexNet, from the ``lpips`` package: its learned linear heads ship inside
the wheel; the AlexNet trunk (torchvision's ImageNet weights) comes from the user's cache or a
path (see :mod:`ganzoo.metrics.weights`), never from the network. The input scaling for [-1, 1]
images is the same as StarGAN v2's own LPIPS (shift -0.030, -0.088, -0.188; scale 0.458, 0.448, 0.450).

Diversity (StarGAN v2 protocol): for each input, the mean LPIPS over all pairs of its
outputs (10 outputs -> 45 pairs), averaged over inputs.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import torch

from ganzoo.metrics.weights import ALEXNET, ResolvedWeights, load_into, read_state_dict, resolve_weights

# AlexNet ``features`` indices held by each slice of lpips' trunk (lpips.pretrained_networks.alexnet).
_SLICES = {1: range(0, 2), 2: range(2, 5), 3: range(5, 8), 4: range(8, 10), 5: range(10, 12)}


def alexnet_to_lpips_trunk(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision AlexNet keys (``features.3.weight``) -> lpips trunk keys (``slice2.3.weight``); classifier dropped."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] != "features":
            continue
        index = int(parts[1])
        number = next(s for s, r in _SLICES.items() if index in r)
        out[f"slice{number}.{index}.{parts[2]}"] = value
    return out


class LPIPS:
    """Callable LPIPS distance between two image batches in [-1, 1]: one value per pair."""

    def __init__(self, weights: str | None = None, device: str | torch.device = "cpu"):
        import lpips

        self.weights: ResolvedWeights = resolve_weights(ALEXNET, weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchvision's deprecated `pretrained=` argument inside lpips
            # pnet_rand=True: build the trunk without weights (lpips would download them); we load ours.
            self.net = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
        if not self.weights.is_random:
            path = self.weights.path
            load_into(self.net.net, alexnet_to_lpips_trunk(read_state_dict(path)), path, "torchvision's AlexNet state dict")
        self.device = torch.device(device)
        self.net = self.net.to(self.device).eval().requires_grad_(False)

    def protocol(self) -> dict[str, Any]:
        return {"lpips": "v0.1 lin heads (lpips wheel) on AlexNet", "backbone": self.weights.stamp(ALEXNET),
                "backbone_source": self.weights.source}

    @torch.no_grad()
    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.net(a.to(self.device).float(), b.to(self.device).float(), normalize=False).flatten().cpu()

    def diversity(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        """Per input: the mean LPIPS over all pairs of its outputs (a list of (N, 3, H, W) batches)."""
        if len(outputs) < 2:
            raise ValueError("diversity needs at least two outputs per input")
        pairs = [self(outputs[i], outputs[j]) for i, j in itertools.combinations(range(len(outputs)), 2)]
        return torch.stack(pairs).mean(0)
