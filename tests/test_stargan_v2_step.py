"""One StarGAN v2 training iteration equals the official solver's, step for step.

The reference is the plain loop of ``benchmarks/cpu_overhead.py``, written in the official solver's order (two
discriminator steps, latent then reference; two generator steps, the mapping network and style encoder stepped in
the first only). Ours computes the same values with less work (fewer and batched forwards, frozen networks), so
after one iteration from the same weights, batch and noise every parameter must agree. fp64 keeps the comparison
tight: the first Adam step divides each gradient by its own magnitude (plus eps 1e-8), which turns rounding noise in
a gradient near zero into a visible change; 1e-7 is a thousandth of one learning-rate step.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import torch

from ganzoo.recipe import load_recipe
from ganzoo.trainer import Trainer

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "cpu_overhead.py"


def _official_step():
    spec = importlib.util.spec_from_file_location("cpu_overhead", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.plain_official_step


@pytest.mark.parametrize("losses", [{"ds": 1.0, "r1": 1.0}, {"ds": 0.0, "r1": 0.5, "cyc": 2.0, "sty": 0.5}],
                         ids=["official", "no-ds"])
def test_one_iteration_matches_the_official_solver_in_fp64(tiny_recipe, tmp_path, losses):
    trainer = Trainer(load_recipe(tiny_recipe({"losses": losses})), tmp_path / "run", quiet=True)
    trainer._setup()
    model = trainer.model
    for net in model.nets.values():
        net.double()
    batch = {k: v.double() if v.is_floating_point() else v for k, v in next(iter(trainer._loader())).items()}

    nets = {role: copy.deepcopy(net) for role, net in model.nets.items()}
    start = {role: copy.deepcopy(net.state_dict()) for role, net in nets.items()}
    betas, weight_decay = tuple(model.optim.betas), model.optim.weight_decay
    opts = {role: torch.optim.Adam(net.parameters(), lr=model.learning_rate(role), betas=betas,
                                   weight_decay=weight_decay, foreach=False) for role, net in nets.items()}
    lambdas = {"r1": model.losses.r1, "sty": model.losses.sty, "ds": model.losses.ds, "cyc": model.losses.cyc}
    assert model.losses.adv == 1.0 and model.losses.r1_every == 1  # what the official loop computes

    torch.manual_seed(7)
    torch.set_default_dtype(torch.float64)  # the official loop's noise, drawn like ours, in fp64
    try:
        _official_step()(nets, opts, {}, batch, model.latent_dim, lambdas)
        torch.manual_seed(7)
        model.train_step(batch, 0, trainer.ctx)
    finally:
        torch.set_default_dtype(torch.float32)

    compared, moved = 0, {}
    for role, net in model.nets.items():
        reference = dict(nets[role].named_parameters())
        for name, p in net.named_parameters():
            torch.testing.assert_close(p, reference[name], atol=1e-7, rtol=0,
                                       msg=lambda m, k=f"{role}.{name}": f"{k}: {m}")
            compared += 1
            moved[role] = moved.get(role, 0) + (not torch.equal(p, start[role][name]))
    # every network stepped; only the heads of domains absent from the batch (no gradient) stay where they were
    assert compared > 100 and min(moved.values()) > 0 and sum(moved.values()) > 0.9 * compared, moved
