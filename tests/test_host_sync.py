"""No host synchronisation inside the training step: losses stay on the device until the log interval.

A short real training run (``Trainer`` on a tiny recipe, CPU) of every model family, with the ``torch.Tensor``
methods that read a value back to the host (``item``, ``bool()``, ``float()``, ``int()``, ``tolist`` ...) wrapped:
a call whose *immediate* caller is ganzoo's or a plugin's code is recorded with the chain of our frames that led
to it; calls made by torch itself (Adam reads its CPU step counter with ``.item()``) are left alone. A readback
is allowed only under the trainer's log-interval, checkpoint, sample and setup code; anything else (the model's
``train_step`` and what it calls, ``StepContext``, ``update_ema``, ``_step_schedulers``, ``_loader``, the loop body
of ``Trainer._run``) fails the test. Runs log and checkpoint only at their last step, so every other step is
entirely per-step code.

Values drawn from torch's host RNG without a device (``torch.rand(())`` and the like) live on the CPU in a GPU run
too; reading them is no device sync, so they are listed apart and not counted.
"""

from __future__ import annotations

import sys
import textwrap
import weakref
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

import ganzoo
import ganzoo_cyclegan
import ganzoo_stargan
import ganzoo_stargan_v2
from ganzoo.recipe import load_recipe, recipe_from_dict
from ganzoo.trainer import Trainer

from tests.conftest import TINY_V2

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
#: Our code: readbacks whose immediate caller lies under these folders are recorded.
OUR_ROOTS = {pkg.__name__: Path(pkg.__file__).parent
             for pkg in (ganzoo, ganzoo_stargan, ganzoo_stargan_v2, ganzoo_cyclegan)}
#: Tensor methods that copy a value from the tensor's device to the host (and so wait for the device).
READBACK_METHODS = ("item", "__bool__", "__float__", "__int__", "__index__", "__complex__", "tolist", "numpy", "cpu",
                    "__array__", "__format__")
#: torch functions whose result, without a ``device`` argument, is a host tensor in any run.
HOST_FACTORIES = ("rand", "randn", "randint", "randperm")
#: Where reading back is the point: log intervals, checkpoints, samples, setup (including the one-batch probe).
ALLOWED_FUNCTIONS = {("ganzoo/trainer.py", f"Trainer.{name}")
                     for name in ("_flush_losses", "save_checkpoint", "save_samples", "_setup", "_probe")}
ALLOWED_FILES = {"ganzoo/checkpoint.py", "ganzoo/sheets.py", "ganzoo/run_dir.py", "ganzoo/trial_step.py"}
#: Host-side data preparation (runs in DataLoader workers on CPU tensors, before the copy to the device).
DATA_PREPARATION = ("ganzoo/data_stream.py", "TrainItems.__getitem__")
#: The tiny runs log and checkpoint only at their last step, and draw no samples.
ONLY_AT_THE_END = ["train.steps=4", "train.log_every=1000", "train.checkpoint_every=1000", "train.sample_every=0"]


def _ours(filename: str) -> str | None:
    """``filename`` as ``<package>/<path>`` when it is ganzoo's or a plugin's code, else None."""
    path = Path(filename)
    for name, root in OUR_ROOTS.items():
        if path.is_relative_to(root):
            return f"{name}/{path.relative_to(root).as_posix()}"
    return None


@dataclass
class Readback:
    method: str
    where: str            # file:line of the immediate caller
    chain: list[tuple[str, str]]  # (file, function) of our frames, innermost first
    host_tensor: bool     # a host RNG draw: no device sync in a GPU run either

    @property
    def allowed(self) -> bool:
        return any(frame in ALLOWED_FUNCTIONS or frame[0] in ALLOWED_FILES or frame == DATA_PREPARATION
                   for frame in self.chain)

    def __str__(self) -> str:
        path = " <- ".join(fn for _, fn in self.chain)
        return f"{self.method} at {self.where} ({path})"


@dataclass
class Detector:
    records: list[Readback] = field(default_factory=list)
    foreign: Counter = field(default_factory=Counter)  # caller file -> readbacks not made by our code (left alone)
    _host: dict[int, weakref.ref] = field(default_factory=dict)

    @property
    def violations(self) -> list[Readback]:
        return [r for r in self.records if not r.allowed and not r.host_tensor]

    def in_function(self, qualname: str) -> list[Readback]:
        return [r for r in self.records if any(fn == qualname for _, fn in r.chain)]

    def install(self, monkeypatch: pytest.MonkeyPatch) -> "Detector":
        for name in READBACK_METHODS:
            monkeypatch.setattr(torch.Tensor, name, self._wrap_method(name, getattr(torch.Tensor, name)))
        for name in HOST_FACTORIES:
            monkeypatch.setattr(torch, name, self._wrap_factory(getattr(torch, name)))
        return self

    def _wrap_method(self, name: str, original):
        detector = self

        def readback(tensor, *args, **kwargs):
            caller = sys._getframe(1)
            here = _ours(caller.f_code.co_filename)
            if here is None:
                detector.foreign[caller.f_code.co_filename] += 1
            else:
                chain, frame = [], caller
                while frame is not None:
                    if (mine := _ours(frame.f_code.co_filename)) is not None:
                        chain.append((mine, frame.f_code.co_qualname))
                    frame = frame.f_back
                ref = detector._host.get(id(tensor))
                detector.records.append(Readback(name, f"{here}:{caller.f_lineno}", chain,
                                                 ref is not None and ref() is tensor))
            return original(tensor, *args, **kwargs)

        readback.__name__ = name
        return readback

    def _wrap_factory(self, original):
        detector = self

        def factory(*args, **kwargs):
            out = original(*args, **kwargs)
            if kwargs.get("device") is None and isinstance(out, torch.Tensor):
                detector._host[id(out)] = weakref.ref(out)
            return out

        return factory


@pytest.fixture
def detector():
    return Detector()


def train(recipe, run_dir: Path, detector: Detector, monkeypatch) -> tuple[Trainer, list[tuple[int, set[str]]]]:
    """Run ``recipe`` with the detector on; return the trainer and (step, loss names) of every real train step."""
    trainer = Trainer(recipe, run_dir, quiet=True)
    from ganzoo.plugins import get_registry

    model_cls = get_registry().get("models", recipe.model)
    original = model_cls.train_step
    steps: list[tuple[int, set[str]]] = []

    def recorded(self, batch, step, ctx):
        logs = original(self, batch, step, ctx)
        if type(ctx).__name__ == "StepContext":  # not the setup probe
            steps.append((step, set(logs)))
        return logs

    monkeypatch.setattr(model_cls, "train_step", recorded)
    detector.install(monkeypatch)
    try:
        result = trainer.run()
    finally:
        monkeypatch.undo()  # readbacks, factories and train_step back to normal before asserting
    assert result.step == recipe.train.steps and not result.interrupted
    return trainer, steps


def assert_no_readback_in_the_step(detector: Detector) -> None:
    assert not detector.violations, "device->host readbacks on the per-step path:\n" + "\n".join(map(str, detector.violations))
    # The detector was live: it saw the end-of-run log interval read the losses back.
    assert detector.in_function("Trainer._flush_losses"), "the log interval's readback was not seen: is the detector on?"


# --------------------------------------------------------------------------- the four families


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


def test_stargan_v2_step_reads_nothing_back(tmp_path, detector, monkeypatch):
    recipe = recipe_from_dict(TINY_V2, ONLY_AT_THE_END, source="tiny-v2")
    trainer, steps = train(recipe, tmp_path / "run", detector, monkeypatch)
    assert [s for s, _ in steps] == [0, 1, 2, 3] and trainer.model.ema_nets  # EMA of G, F, E every step
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
