"""Content preservation: how much of the source's structure survives translation.

A translation should change what defines the domain (colour, texture, species, gender)
and keep the layout: where the object is, its outline, the pose. We compare *where the
edges are*, not the colours: both images are low-passed (downsampled to at most 64 px),
turned to luminance, and reduced to Sobel gradient magnitudes scaled to [0, 1] by their
own 99th percentile; the score is the SSIM between the two edge maps.

- 1.0: the edges (outline, layout) are exactly where they were in the source, whatever
  the colours became (a red square turned into the same blue square scores ~1).
- ~0: the output's structure is unrelated to the source's.
- Identity (output = input) also scores 1: read it next to domain accuracy, which says
  whether the image actually moved to the target domain.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

LOW_PASS_SIZE = 64
DESCRIPTION = ("SSIM between the Sobel edge maps of source and output (luminance, low-passed to <= 64 px, "
               "each scaled by its 99th percentile); 1 = same structure, ~0 = unrelated")


def edge_map(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [-1, 1] -> (N, 1, h, w) edge magnitudes in [0, 1]."""
    x = (images.float().clamp(-1, 1) + 1) / 2
    size = max(x.shape[-2:])
    if size > LOW_PASS_SIZE:
        scale = LOW_PASS_SIZE / size
        x = F.interpolate(x, scale_factor=scale, mode="bilinear", antialias=True, align_corners=False)
    luma = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device).view(1, 1, 3, 3)
    padded = F.pad(luma, (1, 1, 1, 1), mode="replicate")
    gx = F.conv2d(padded, kx)
    gy = F.conv2d(padded, kx.transpose(-1, -2))
    magnitude = (gx.square() + gy.square()).sqrt()
    top = torch.quantile(magnitude.flatten(1), 0.99, dim=1).clamp_min(1e-6).view(-1, 1, 1, 1)
    return (magnitude / top).clamp(0, 1)


@torch.no_grad()
def content_preservation(sources: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
    """One score per (source, output) pair; see the module docstring."""
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim

    a, b = edge_map(sources), edge_map(outputs)
    kernel = 7 if min(a.shape[-2:]) >= 16 else 3
    return ssim(b, a, data_range=1.0, kernel_size=kernel, reduction="none").cpu()
