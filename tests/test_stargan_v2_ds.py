"""StarGAN v2's diversity-sensitive loss: its extra generator forward runs only while λ_ds is above 0."""

from __future__ import annotations

import json

import pytest

from ganzoo.recipe import load_recipe
from ganzoo.trainer import Trainer
from ganzoo_stargan_v2.model import StarGANv2
from ganzoo_stargan_v2.networks import Generator


def _forwards_per_generator_step(tiny_recipe, tmp_path, name: str, losses: dict, steps: int = 2):
    """Generator forwards in each call of generator_loss (the trial step's and the run's), and the metrics rows."""
    per_step: list[int] = []
    forward, generator_loss = Generator.forward, StarGANv2.generator_loss

    def counting_forward(self, *args, **kwargs):
        per_step[-1] += 1
        return forward(self, *args, **kwargs)

    def counting_loss(self, *args, **kwargs):
        per_step.append(0)
        with pytest.MonkeyPatch.context() as inside:
            inside.setattr(Generator, "forward", counting_forward)
            return generator_loss(self, *args, **kwargs)

    doc = {"losses": losses, "train": {"steps": steps, "checkpoint_every": steps, "sample_every": 0, "log_every": 1}}
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(StarGANv2, "generator_loss", counting_loss)
        Trainer(load_recipe(tiny_recipe(doc, name=f"{name}.yaml")), tmp_path / name, quiet=True).run()
    rows = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    return per_step, rows


def test_ds_zero_skips_the_third_generator_forward_and_logs_no_ds(tiny_recipe, tmp_path):
    with_ds, rows_ds = _forwards_per_generator_step(tiny_recipe, tmp_path, "ds", {"ds": 1.0})
    without, rows = _forwards_per_generator_step(tiny_recipe, tmp_path, "nods", {"ds": 0.0})
    assert with_ds and set(with_ds) == {3}  # fake, second fake for ds, reconstruction
    assert len(without) == len(with_ds) and set(without) == {2}
    assert all("loss/G/ds" in row for row in rows_ds)
    assert not any("loss/G/ds" in row for row in rows)


def test_the_ds_forward_stops_once_lambda_ds_has_decayed_to_zero(tiny_recipe, tmp_path):
    # ds_decay_steps=1: λ_ds is 1 at iteration 0 and 0 from iteration 1 on (two generator steps per iteration)
    per_step, rows = _forwards_per_generator_step(tiny_recipe, tmp_path, "decay", {"ds": 1.0, "ds_decay_steps": 1})
    assert per_step[-4:] == [3, 3, 2, 2]
    assert ["loss/G/ds" in row for row in rows] == [True, False]
