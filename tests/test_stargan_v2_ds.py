"""StarGAN v2's diversity-sensitive loss: its extra generator forwards run only while λ_ds is above 0."""

from __future__ import annotations

import json

import pytest

from ganzoo.recipe import load_recipe
from ganzoo.trainer import Trainer
from ganzoo_stargan_v2.model import StarGANv2
from ganzoo_stargan_v2.networks import Generator


def _generator_images_per_iteration(tiny_recipe, tmp_path, name: str, losses: dict, steps: int = 2):
    """Images the generator processes in each training iteration (the trial step's and the run's), in units of
    the batch, and the metrics rows."""
    per_step: list[float] = []
    forward, train_step = Generator.forward, StarGANv2.train_step

    def counting_forward(self, x, *args, **kwargs):
        per_step[-1] += x.shape[0]
        return forward(self, x, *args, **kwargs)

    def counting_step(self, batch, *args, **kwargs):
        per_step.append(0)
        with pytest.MonkeyPatch.context() as inside:
            inside.setattr(Generator, "forward", counting_forward)
            logs = train_step(self, batch, *args, **kwargs)
        per_step[-1] /= batch["x"].shape[0]
        return logs

    doc = {"losses": losses, "train": {"steps": steps, "checkpoint_every": steps, "sample_every": 0, "log_every": 1}}
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(StarGANv2, "train_step", counting_step)
        Trainer(load_recipe(tiny_recipe(doc, name=f"{name}.yaml")), tmp_path / name, quiet=True).run()
    rows = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    return per_step, rows


# Per iteration the generator renders the latent fake (one for D's first step and G's first step), the reference
# fake for D's second step, each G step's reconstruction and the reference G step's own fake: 5 batches. The
# diversity term adds each G step's second fake: 7.
def test_ds_zero_skips_the_diversity_forwards_and_logs_no_ds(tiny_recipe, tmp_path):
    with_ds, rows_ds = _generator_images_per_iteration(tiny_recipe, tmp_path, "ds", {"ds": 1.0})
    without, rows = _generator_images_per_iteration(tiny_recipe, tmp_path, "nods", {"ds": 0.0})
    assert with_ds and set(with_ds) == {7}
    assert len(without) == len(with_ds) and set(without) == {5}
    assert all("loss/G/ds" in row for row in rows_ds)
    assert not any("loss/G/ds" in row for row in rows)


def test_the_ds_forwards_stop_once_lambda_ds_has_decayed_to_zero(tiny_recipe, tmp_path):
    # ds_decay_steps=1: λ_ds is 1 at iteration 0 and 0 from iteration 1 on
    per_step, rows = _generator_images_per_iteration(tiny_recipe, tmp_path, "decay", {"ds": 1.0, "ds_decay_steps": 1})
    assert per_step[-2:] == [7, 5]
    assert ["loss/G/ds" in row for row in rows] == [True, False]
