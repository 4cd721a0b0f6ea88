"""A detector of device->host readbacks in the training step (used by tests/test_host_sync.py and tests/test_contract.py).

The ``torch.Tensor`` methods that read a value back to the host (``item``, ``bool()``, ``float()``, ``int()``,
``tolist`` ...) are wrapped: a call whose *immediate* caller is ganzoo's or a plugin's code is recorded with the chain
of our frames that led to it; calls made by torch itself (Adam reads its CPU step counter with ``.item()``) are left
alone. A readback is allowed only under the trainer's log-interval, checkpoint, sample and setup code; anything else
(the model's ``train_step`` and what it calls, ``StepContext``, ``update_ema``, ``_step_schedulers``, ``_loader``, the
loop body of ``Trainer._run``) is a violation.

"Our code" is ganzoo and every package in the ``ganzoo`` entry-point group (built-in families and any third-party
plugin that is installed), so a new family is watched without editing this file.

Values drawn from torch's host RNG without a device (``torch.rand(())`` and the like) live on the CPU in a GPU run
too; reading them is no device sync, so they are listed apart and not counted.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import weakref
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
import torch

from ganzoo.trainer import Trainer

#: Tensor methods that copy a value from the tensor's device to the host (and so wait for the device).
READBACK_METHODS = ("item", "__bool__", "__float__", "__int__", "__index__", "__complex__", "tolist", "numpy", "cpu",
                    "__array__", "__format__")
#: torch functions whose result, without a ``device`` argument, is a host tensor in any run.
HOST_FACTORIES = ("rand", "randn", "randint", "randperm")
#: Where reading back is the point: log intervals, checkpoints, samples, setup (including the one-batch probe).
ALLOWED_FUNCTIONS = {("ganzoo/trainer.py", f"Trainer.{name}")
                     for name in ("_flush_losses", "save_checkpoint", "save_samples", "_setup", "_probe")}
ALLOWED_FILES = {"ganzoo/checkpoint.py", "ganzoo/sheets.py", "ganzoo/run_dir.py", "ganzoo/trial_step.py", "ganzoo/periodic_eval.py"}
#: Host-side data preparation (runs in DataLoader workers on CPU tensors, before the copy to the device).
DATA_PREPARATION = ("ganzoo/data_stream.py", "TrainItems.__getitem__")
#: Settings under which a run logs and checkpoints only at its last step and draws no samples, so every other
#: step is entirely per-step code.
ONLY_AT_THE_END = ["train.log_every=1000", "train.checkpoint_every=1000", "train.sample_every=0"]


@functools.cache
def our_roots() -> dict[str, Path]:
    """Our code: readbacks whose immediate caller lies under these folders are recorded. ganzoo, and the top-level
    package of every module in the ``ganzoo`` entry-point group."""
    names = {"ganzoo"} | {ep.value.split(":")[0].split(".")[0] for ep in metadata.entry_points(group="ganzoo")}
    roots = {}
    for name in sorted(names):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            roots[name] = Path(spec.origin).parent
    return roots


def _ours(filename: str) -> str | None:
    """``filename`` as ``<package>/<path>`` when it is ganzoo's or a plugin's code, else None."""
    path = Path(filename)
    if not path.is_absolute():
        return None
    for name, root in our_roots().items():
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
        our_roots()  # resolved before any wrapper runs
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
