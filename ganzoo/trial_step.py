"""The trial step: the model's train step once on 2 images, before the run directory exists.

Networks that build but cannot process images of ``data.image_size`` (a discriminator
that shrinks them to nothing, a loss whose shapes disagree) fail here as one
RecipeError naming the network, instead of at the first step of a run.

Weights are not stepped; buffers (batch-norm statistics), the model's training state,
the networks' modes and every RNG are put back afterwards, so the run that follows is
exactly the run without the trial.
"""

from __future__ import annotations

import random

import torch
from torch.utils.data import default_collate

from ganzoo import checkpoint as ckpt
from ganzoo.errors import RecipeError
from ganzoo.model import GANModel
from ganzoo.recipe import Recipe
from ganzoo.step_context import StepContext


class NoUpdateContext(StepContext):
    """A StepContext whose updates do nothing: the trial runs the train step's forward passes only."""

    def optimize(self, loss: torch.Tensor, *roles: str) -> None:
        pass


def trial_step(model: GANModel, dataset, recipe: Recipe, *, device: torch.device, precision: str, local_batch: int) -> None:
    """Run ``model.train_step`` on ``min(2, local_batch)`` training images and undo every side effect.

    Raises RecipeError for a network that fails on the images; torch.OutOfMemoryError passes through (the
    trainer words it with the run's batch and device).
    """
    groups = [g for g in dataset.indices_by_label() if g]
    n = min(2, local_batch)
    picks = []
    for k in range(n):  # one item of each domain in turn, as a real batch mixes them
        group = groups[k % len(groups)]
        picks.append(group[(k // len(groups)) % len(group)])
    rng_state = ckpt.capture_rng()
    training_state = model.training_state()
    nets = model.nets
    buffers = {role: [b.detach().clone() for b in net.buffers()] for role, net in nets.items()}
    modes = [(m, m.training) for net in nets.values() for m in net.modules()]
    running: list[str] = []  # the roles whose forward is in progress: the last one is where it failed

    def enter(role):
        def hook(module, args):
            running.append(role)
        return hook

    def leave(module, args, output):
        running.pop()  # returns None: a forward hook's return value would replace the output

    hooks = []
    for role, net in nets.items():
        hooks.append(net.register_forward_pre_hook(enter(role)))
        hooks.append(net.register_forward_hook(leave))
    ctx = NoUpdateContext(device, precision, {}, None)
    try:
        batch = default_collate([model.training_item(dataset, i, random.Random(k)) for k, i in enumerate(picks)])
        batch = {k: v.to(device) for k, v in batch.items()}
        model.current_step = 0
        model.train_step(batch, 0, ctx)
    except torch.OutOfMemoryError:
        raise
    except (RuntimeError, ValueError, IndexError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
        reason = reason if len(reason) <= 240 else reason[:237] + "..."
        size = recipe.data.image_size
        if running:
            role = running[-1]
            where = (f"networks.{role} ({model.network_specs[role]['name']}) fails on {n} image(s) of "
                     f"{size}x{size} px ({reason})")
        else:
            where = f"the first training step fails on {n} image(s) of {size}x{size} px ({reason})"
        raise RecipeError(f"{recipe.source}: {recipe.model}: {where}; use a larger data.image_size or change the "
                          "networks' arguments (depth, layers) to fit it.") from None
    finally:
        for hook in hooks:
            hook.remove()
        with torch.no_grad():
            for role, net in nets.items():
                for buf, saved in zip(net.buffers(), buffers[role]):
                    buf.copy_(saved)
        for module, training in modes:
            module.training = training
        for net in nets.values():
            net.zero_grad(set_to_none=True)
        model.load_training_state({k: v.cpu() for k, v in training_state.items()})
        ckpt.restore_rng(rng_state)
