"""Data-parallel training under ``torchrun`` (DDP, one wrapper per trained network).

``torchrun --nproc_per_node=N -m ganzoo run RECIPE`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; the trainer then

* joins the process group (gloo on CPU, nccl on CUDA; GPU ``cuda:LOCAL_RANK``),
* wraps every trained network in its *own* :class:`RoleDDP` (G, D, mapping network and
  style encoder separately: GAN alternation steps one network while others are frozen),
* feeds each rank a contiguous chunk of the global batch (``data.batch_size`` is global),
* swaps the wrapped networks into ``model.nets`` only while ``train_step`` runs, so EMA,
  checkpoints (keys without ``module.``) and samples always see the plain modules,
* lets rank 0 alone write logs, samples and checkpoints.

Gradients are averaged across ranks by DDP, so with losses that are means over the batch a
run on N processes equals the 1-process run with the same global batch (up to float rounding).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ganzoo.errors import GanzooError


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_info() -> DistInfo:
    """Rank and world size from the environment torchrun sets (1 process when unset)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise GanzooError("WORLD_SIZE, RANK and LOCAL_RANK must be integers; launch distributed runs with torchrun.") from None
    return DistInfo(rank, max(1, world), local)


def check_batch(batch_size: int, world_size: int) -> int:
    """The per-process batch; ``data.batch_size`` is the global batch and must split evenly."""
    if batch_size % world_size:
        raise GanzooError(
            f"data.batch_size {batch_size} is the global batch and must be divisible by the {world_size} processes; "
            f"use a multiple of {world_size} (e.g. --set data.batch_size={max(world_size, batch_size // world_size * world_size)})."
        )
    return batch_size // world_size


def init(info: DistInfo, device: torch.device) -> torch.device:
    """Join the process group when running under torchrun; returns the device this rank uses."""
    import torch.distributed as dist

    if not info.active:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        info.initialised_here = True
    return device


def shutdown(info: DistInfo) -> None:
    import torch.distributed as dist

    if info.initialised_here and dist.is_initialized():
        dist.destroy_process_group()
        info.initialised_here = False


def barrier(info: DistInfo) -> None:
    if info.active:
        import torch.distributed as dist

        dist.barrier()


def all_reduce_mean(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if not info.active:
        return tensor
    import torch.distributed as dist

    tensor = tensor.clone()
    dist.all_reduce(tensor)
    return tensor / info.world_size


def any_rank(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any (e.g. a Ctrl-C seen by one process)."""
    if not info.active:
        return flag
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


class RoleDDP(DistributedDataParallel):
    """DDP for one network role that steps aside when the network is frozen.

    A forward that cannot produce parameter gradients (under ``torch.no_grad`` or while
    :func:`ganzoo.model.frozen` holds the network) calls the plain module: the reducer then
    never waits for gradients that will not come, and no collective runs. ``parameters()``,
    ``requires_grad_`` and attribute access reach the wrapped network as usual.
    """

    def forward(self, *args, **kwargs):
        if torch.is_grad_enabled() and any(p.requires_grad for p in self._role_params):
            return super().forward(*args, **kwargs)
        return self.module(*args, **kwargs)

    @property
    def _role_params(self):
        params = self.__dict__.get("_ganzoo_params")
        if params is None:
            params = self.__dict__["_ganzoo_params"] = list(self.module.parameters())
        return params

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":
                raise
            return getattr(self.module, name)


def wrap(nets: dict[str, nn.Module], device: torch.device) -> dict[str, nn.Module]:
    """One :class:`RoleDDP` per network (SyncBatchNorm only on CUDA; the CPU has none)."""
    wrapped = {}
    for role, net in nets.items():
        if not any(p.requires_grad for p in net.parameters()):
            wrapped[role] = net
            continue
        kwargs = {"device_ids": [device.index]} if device.type == "cuda" else {}
        wrapped[role] = RoleDDP(net, find_unused_parameters=False, **kwargs)
    return wrapped


def convert_sync_batchnorm(nets: dict[str, nn.Module], device: torch.device) -> None:
    """BatchNorm statistics over the global batch on CUDA (in place in ``nets``; parameters are kept)."""
    if device.type != "cuda":
        return
    for role, net in list(nets.items()):
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules()):
            nets[role] = nn.SyncBatchNorm.convert_sync_batchnorm(net)


@contextlib.contextmanager
def swapped(model, wrapped: dict[str, nn.Module] | None):
    """``model.nets`` holds the DDP wrappers inside the block and the plain networks outside."""
    if not wrapped:
        yield
        return
    plain = model.nets
    model.nets = wrapped
    try:
        yield
    finally:
        model.nets = plain
