"""Checks that a two-domain model's shared batches change nothing: the losses and gradients of its generator and
discriminator steps, computed once as the model runs them (networks that treat each image on their own share one
call between several inputs) and once with every call separate.

In fp64: the two are the same sums in another order, which in fp32 alone moves gradients through instance norms by
tenths of a percent, too much for a tolerance that could still tell a wrong pairing from rounding.
"""

from __future__ import annotations

import torch


def losses_and_gradients(model, x_a: torch.Tensor, x_b: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """Generator and discriminator losses (each with the global RNG at ``seed``) and every parameter's gradient of
    their sum, for a model with ``generator_loss(x_a, x_b, ctx)`` and ``discriminator_loss(x_a, x_b, ctx)``."""
    from ganzoo.api import StepContext

    ctx = StepContext(torch.device("cpu"), "fp32", {})
    torch.manual_seed(seed)
    g_loss = model.generator_loss(x_a, x_b, ctx)[0]
    torch.manual_seed(seed + 1)
    d_loss = model.discriminator_loss(x_a, x_b, ctx)[0]
    for net in model.nets.values():
        net.zero_grad(set_to_none=True)
    (g_loss + d_loss).backward()
    out = {"generator_loss": g_loss.detach(), "discriminator_loss": d_loss.detach()}
    out.update({f"{role}.{name}": p.grad.clone() for role, net in model.nets.items()
                for name, p in net.named_parameters() if p.grad is not None})
    return out


def assert_shared_equals_separate(model, model_module, monkeypatch, batch: int = 3, size: int = 16) -> None:
    """``model`` (built) in fp64 on random a and b batches: its results with shared batches equal those with
    ``model_module.per_image`` patched to say no network may share a batch."""
    for net in model.nets.values():
        net.double()
    gen = torch.Generator().manual_seed(0)
    x_a, x_b = (torch.rand(batch, 3, size, size, generator=gen, dtype=torch.float64) * 2 - 1 for _ in range(2))
    shared = losses_and_gradients(model, x_a, x_b)
    monkeypatch.setattr(model_module, "per_image", lambda net: False)
    separate = losses_and_gradients(model, x_a, x_b)
    assert shared.keys() == separate.keys()
    for key in shared:
        torch.testing.assert_close(shared[key], separate[key], rtol=1e-9, atol=1e-12, msg=lambda m: f"{key}: {m}")
