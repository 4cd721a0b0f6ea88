"""What a model's ``train_step`` gets from the trainer: device, precision, optimisers and how to step them."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch


@dataclass
class StepContext:
    """What a model's ``train_step`` gets from the trainer."""

    device: torch.device
    precision: str
    optimizers: dict[str, torch.optim.Optimizer]
    scaler: torch.amp.GradScaler | None = None
    rank: int = 0
    world_size: int = 1

    def autocast(self):
        """Mixed precision for forward passes (losses that need fp32 should leave it)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def randn(self, n: int, *shape: int, device=None) -> torch.Tensor:
        """Per-example Gaussian noise for this process's ``n`` examples that does not depend on how the global
        batch is split: every rank draws the whole global batch's noise and keeps its own rows, so the RNG
        stays in step across ranks and a distributed run draws what the 1-process run draws."""
        if self.world_size == 1:
            return torch.randn(n, *shape, device=device)
        full = torch.randn(n * self.world_size, *shape, device=device)
        return full[self.rank * n:(self.rank + 1) * n]

    def optimize(self, loss: torch.Tensor, *roles: str) -> None:
        """Zero every gradient, back-propagate ``loss`` and step the optimisers of ``roles``."""
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            for role in roles:
                self.scaler.step(self.optimizers[role])
            self.scaler.update()
        else:
            loss.backward()
            for role in roles:
                self.optimizers[role].step()
