"""StarGAN v2's lazy R1 (``losses.r1_every``): the penalty on every k-th iteration only, weighted k times."""

from __future__ import annotations

import json

import torch

from ganzoo.recipe import load_recipe
from ganzoo.trainer import Trainer


def _weights_after(tiny_recipe, tmp_path, name: str, losses: dict, steps: int) -> dict[str, torch.Tensor]:
    doc = {"losses": losses, "train": {"steps": steps, "checkpoint_every": steps, "sample_every": 0, "log_every": 1}}
    trainer = Trainer(load_recipe(tiny_recipe(doc, name=f"{name}.yaml")), tmp_path / name, quiet=True)
    trainer.run()
    return {k: v.clone() for k, v in trainer.model.nets["discriminator"].state_dict().items()}


def test_a_regularised_iteration_weights_r1_k_times_and_the_others_leave_it_out(tiny_recipe, tmp_path):
    # Iteration 0 of r1_every=2 is iteration 0 of r1_every=1 with r1 doubled; iteration 1 has no R1 at all.
    lazy_one = _weights_after(tiny_recipe, tmp_path, "lazy1", {"r1": 1.0, "r1_every": 2}, steps=1)
    doubled = _weights_after(tiny_recipe, tmp_path, "doubled", {"r1": 2.0}, steps=1)
    plain = _weights_after(tiny_recipe, tmp_path, "plain", {"r1": 1.0}, steps=1)
    for key in doubled:
        torch.testing.assert_close(lazy_one[key], doubled[key], rtol=0, atol=0)
    assert any(not torch.equal(plain[key], doubled[key]) for key in plain)  # the penalty's weight matters here

    _weights_after(tiny_recipe, tmp_path, "lazy2", {"r1": 1.0, "r1_every": 2}, steps=2)
    rows = [json.loads(line) for line in (tmp_path / "lazy2" / "metrics.jsonl").read_text().splitlines()]
    assert ["loss/D/reg" in row for row in rows] == [True, False]


def test_r1_every_defaults_to_every_iteration_as_in_the_official_solver(tiny_recipe):
    recipe = load_recipe(tiny_recipe())
    from ganzoo.plugins import get_registry

    model = get_registry().get("models", "stargan_v2")(recipe, ["a", "b"])
    assert model.losses.r1_every == 1
