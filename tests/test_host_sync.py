"""No host synchronisation inside the training step: losses stay on the device until the log interval.

Short real training runs (``Trainer`` on tiny recipes, CPU) with the detector of tests/host_sync.py on: a
device->host readback (``item``, ``bool()``, ``float()`` ...) made by our code anywhere but the trainer's
log-interval, checkpoint, sample and setup code fails the test. Runs log and checkpoint only at their last step, so
every other step is entirely per-step code.

Every registered model gets the generic check from its declared tiny recipe in tests/test_contract.py; these add
the family-specific branches (StarGAN v1's critic-only iterations, CycleGAN's image pools and WGAN-GP, pix2pix's
losses) and test the detector itself.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from ganzoo.recipe import load_recipe
from tests.host_sync import ONLY_AT_THE_END as QUIET, Detector, assert_no_readback_in_the_step, train

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
#: The tiny runs take 4 steps, and log and checkpoint only at their last one, and draw no samples.
ONLY_AT_THE_END = ["train.steps=4", *QUIET]


@pytest.fixture
def detector():
    return Detector()


# --------------------------------------------------------------------------- family-specific branches


def test_stargan_v1_step_reads_nothing_back(tmp_path, detector, monkeypatch):
    recipe = load_recipe(RECIPES / "stargan_shapes.yaml", [
        "data.image_size=16", "data.batch_size=2", "data.num_train=12", "data.num_val=3",
        "networks.generator.conv_dim=8", "networks.discriminator.conv_dim=8", "networks.discriminator.repeat_num=3",
        "optim.n_critic=2", *ONLY_AT_THE_END,
    ])
    _, steps = train(recipe, tmp_path / "run", detector, monkeypatch)
    # Both kinds of iteration ran: critic only (steps 0, 2) and critic + generator (steps 1, 3).
    assert [(s, any(k.startswith("G/") for k in keys)) for s, keys in steps] == [(0, False), (1, True), (2, False), (3, True)]
    assert_no_readback_in_the_step(detector)


@pytest.mark.parametrize("gan_mode", ["lsgan", "wgangp"])
def test_cyclegan_step_reads_nothing_back(tmp_path, detector, monkeypatch, gan_mode):
    # A pool of 1 is full after the first image: later fakes take the official swap-or-keep branch.
    recipe = load_recipe(RECIPES / "cyclegan_shapes.yaml", [
        "data.image_size=16", "data.batch_size=2", "data.num_train=8", "data.num_val=2",
        *(f"networks.{r}.ngf=8" for r in ("generator_a2b", "generator_b2a")),
        *(f"networks.{r}.ndf=8" for r in ("discriminator_a", "discriminator_b")),
        "losses.pool_size=1", f"losses.gan_mode={gan_mode}", *ONLY_AT_THE_END,
    ])
    trainer, steps = train(recipe, tmp_path / "run", detector, monkeypatch)
    assert [s for s, _ in steps] == [0, 1, 2, 3]
    assert trainer.model.losses.gan_mode == gan_mode and len(trainer.model.fake_a_pool.images) == 1
    assert_no_readback_in_the_step(detector)


def test_pix2pix_step_reads_nothing_back(tmp_path, detector, monkeypatch):
    recipe = load_recipe(RECIPES / "pix2pix_shapes.yaml", [
        "data.batch_size=2", "data.num_train=8", "data.num_val=2",
        "networks.generator.ngf=8", "networks.discriminator.ndf=8", *ONLY_AT_THE_END,
    ])
    _, steps = train(recipe, tmp_path / "run", detector, monkeypatch)
    assert [keys for _, keys in steps] == [{"D/loss", "G/adv", "G/l1"}] * 4
    assert_no_readback_in_the_step(detector)


# --------------------------------------------------------------------------- the detector itself


def test_detector_catches_a_readback_in_the_step_and_allows_it_at_log_intervals(tmp_path, detector, monkeypatch):
    """A train_step that reads its loss back (three ways) is caught, at the right lines; a readback torch makes
    itself (the per-tensor Adam reads its CPU step counter with .item()) is not; with log_every 1 the trainer's
    per-interval reads are not counted against the step."""
    import ganzoo_cyclegan.pix2pix as pix2pix_model

    # Compiled under the plugin's file name: to the detector it is plugin code, as a real regression would be.
    source = textwrap.dedent("""
        def reading_train_step(self, batch, step, ctx):
            logs = original(self, batch, step, ctx)
            loss = logs["G/l1"]
            value = loss.item()
            if loss > 0:
                value = float(loss)
            weight = torch.zeros(1, requires_grad=True)
            weight.grad = torch.ones(1)
            torch.optim.Adam([weight], foreach=False, fused=False).step()
            return logs
    """)
    namespace = {"original": pix2pix_model.Pix2Pix.train_step, "torch": torch}
    exec(compile(source, pix2pix_model.__file__, "exec"), namespace)
    monkeypatch.setattr(pix2pix_model.Pix2Pix, "train_step", namespace["reading_train_step"])

    recipe = load_recipe(RECIPES / "pix2pix_shapes.yaml", [
        "data.batch_size=2", "data.num_train=8", "data.num_val=2", "networks.generator.ngf=8",
        "networks.discriminator.ndf=8", "train.steps=2", "train.log_every=1", "train.checkpoint_every=1000",
        "train.sample_every=0",
    ])
    train(recipe, tmp_path / "run", detector, monkeypatch)
    caught = sorted({(r.method, r.where.rsplit(":", 1)[1]) for r in detector.violations})
    assert caught == [("__bool__", "6"), ("__float__", "7"), ("item", "5")]
    assert all(r.chain[0] == ("ganzoo_cyclegan/pix2pix.py", "reading_train_step") for r in detector.violations)
    # 3 readbacks in each of the 2 real steps (the probe's are setup and allowed)
    assert len(detector.violations) == 6
    # Adam's own .item() went through the wrapper and was left alone.
    assert any(Path(f).match("torch/optim/*.py") for f in detector.foreign)
    # Both steps were log intervals: the trainer's reads there were recorded, and are allowed.
    flushes = detector.in_function("Trainer._flush_losses")
    assert flushes and all(r.allowed for r in flushes)
