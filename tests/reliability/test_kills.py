"""SIGKILL a CPU training run again and again, resume it each time, and end with the weights of a run never killed.

Kills land at seeded random moments (one before the first checkpoint, the rest after some progress, so some fall
inside checkpoint writes: the recipe checkpoints every step) plus two at exact points: half-way through writing a
checkpoint folder, and half-way through deleting an old one. After every kill, each visible checkpoint must load
(weights and resume state), and the next `ganzoo run --resume` must carry on.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import ganzoo
from ganzoo import checkpoint as ckpt
from ganzoo.recipe import load_recipe
from ganzoo.trainer import Trainer
from tests.reliability.helpers import ROOT, write_recipe

pytestmark = pytest.mark.reliability

RANDOM_KILLS = 6
STEPS = 30
SEED = 20261124

# The quickstart recipe, made tiny (16 px, narrow networks) and checkpointing every step.
TINY_QUICKSTART = {
    "base": str(ROOT / "recipes" / "quickstart.yaml"),
    "networks": {
        "generator": {"dim_in": 8, "max_conv_dim": 16, "style_dim": 8},
        "mapping_network": {"latent_dim": 4, "hidden_dim": 16},
        "style_encoder": {"dim_in": 8, "max_conv_dim": 16},
        "discriminator": {"dim_in": 8, "max_conv_dim": 16},
    },
    "data": {"image_size": 16, "batch_size": 2, "num_train": 24, "num_val": 6},
    "train": {"steps": STEPS, "checkpoint_every": 1, "keep_checkpoints": 2, "sample_every": 7, "log_every": 1,
              "seed": 3, "threads": 1, "compile": False, "loggers": ["jsonl", "tensorboard"]},
}

# Runs the real CLI with a SIGKILL planted at an exact point: "write" kills after the 3rd weights file of a
# checkpoint folder is on disk; "prune" kills after the first file of an old checkpoint has been deleted.
KILL_AT = r"""
import os, signal, sys, shutil
from ganzoo import checkpoint as ckpt

where, args = sys.argv[1], sys.argv[2:]
if where == "write":
    real_save, calls = ckpt._save_tensors, []
    def save(tensors, path, metadata=None):
        real_save(tensors, path, metadata)
        calls.append(path)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGKILL)
    ckpt._save_tensors = save
elif where == "prune":
    real_rmtree = shutil.rmtree
    def rmtree(path, *a, **k):
        files = sorted(p for p in __import__("pathlib").Path(path).rglob("*") if p.is_file())
        name = __import__("pathlib").Path(path).name
        if files and "step_" in name and ".tmp-" not in name and ".old-" not in name:  # an old checkpoint, not a leftover
            files[0].unlink()
            os.kill(os.getpid(), signal.SIGKILL)
        return real_rmtree(path, *a, **k)
    shutil.rmtree = rmtree
sys.argv = ["ganzoo", *args]
from ganzoo.cli import main
main()
"""


def weights(model) -> dict[str, torch.Tensor]:
    return {f"{role}.{k}": v for group in (model.nets, model.ema_nets) for role, net in group.items()
            for k, v in net.state_dict().items()}


def losses_by_step(run: Path) -> dict[int, dict]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {r["step"]: {k: v for k, v in r.items() if k.startswith("loss/")} for r in lines}


def latest_step(run: Path) -> int:
    try:
        return json.loads((run / "latest.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return 0


def check_run_dir(run: Path) -> int:
    """Every visible checkpoint loads, weights and resume state; latest.json names one. Returns the checkpoint count."""
    folders = sorted((run / "checkpoints").glob("step_*")) if (run / "checkpoints").is_dir() else []
    for folder in folders:
        model = ganzoo.load(str(folder))  # config.json and every safetensors file read and fitted
        state = ckpt.read_train_state(folder)
        assert state["step"] == model.step == int(folder.name.split("_")[1]), folder
    if (run / "latest.json").exists():
        assert ckpt.resolve_model_folder(run) in folders
    return len(folders)


class Killer:
    """Starts `ganzoo run` (first) or `ganzoo run --resume` (after) as a subprocess and SIGKILLs it."""

    def __init__(self, recipe: Path, run: Path, log: Path):
        self.recipe, self.run, self.log = recipe, run, log
        self.env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.started = False

    def args(self) -> list[str]:
        if not self.started:
            self.started = True
            return ["run", str(self.recipe), "--out", str(self.run), "-q"]
        return ["run", "--resume", str(self.run), "-q"]

    def start(self, prefix: list[str]) -> subprocess.Popen:
        self.stderr = open(self.log, "w")
        return subprocess.Popen([sys.executable, *prefix, *self.args()], env=self.env, stdout=subprocess.DEVNULL,
                                stderr=self.stderr)

    def wait_until(self, proc: subprocess.Popen, ready, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, f"ganzoo run exited early ({proc.returncode}): {self.log.read_text()}"
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.005)

    def finish(self, proc: subprocess.Popen, *, kill: bool) -> None:
        if kill:
            assert proc.poll() is None, f"the run ended before the kill: {self.log.read_text()}"
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=300)
        self.stderr.close()
        if kill:
            assert proc.returncode == -signal.SIGKILL
        else:
            assert proc.returncode == 0, self.log.read_text()


def test_sigkill_at_random_moments_and_mid_write_then_resume_equals_the_uninterrupted_run(tmp_path):
    recipe = write_recipe(tmp_path / "tiny_quickstart.yaml", TINY_QUICKSTART)
    threads = torch.get_num_threads()
    started = time.perf_counter()
    try:
        straight = Trainer(load_recipe(recipe), tmp_path / "straight", quiet=True).run()
    finally:
        torch.set_num_threads(threads)  # the recipe's train.threads: 1 applies to this process too
    assert straight.step == STEPS
    step_time = (time.perf_counter() - started) / STEPS  # kill moments scale with it: any machine gets the same spread

    run = tmp_path / "killed"
    killer = Killer(recipe, run, tmp_path / "stderr.txt")
    rng = random.Random(SEED)
    kills, mid_write = 0, 0

    def after_kill() -> None:
        nonlocal kills, mid_write
        kills += 1
        # A hidden folder beside the checkpoints: the kill fell inside a checkpoint write (or deletion).
        mid_write += any(p.name.startswith(".step_") for p in (run / "checkpoints").glob(".*"))
        check_run_dir(run)

    for i in range(RANDOM_KILLS):
        proc = killer.start(["-m", "ganzoo"])
        if i == 0:  # before (or around) the first checkpoint: the run directory exists, maybe nothing to resume from
            killer.wait_until(proc, lambda: (run / "recipe.yaml").exists())
        else:  # after at least one more step was saved, at a random moment of the steps and writes that follow
            done = latest_step(run)
            killer.wait_until(proc, lambda: latest_step(run) > done)
            time.sleep(rng.uniform(0.0, 1.5) * step_time)
        killer.finish(proc, kill=True)
        after_kill()

    for where, leftover in (("write", ".step_*.tmp-*"), ("prune", ".step_*.stale-*")):
        proc = killer.start(["-c", KILL_AT, where])
        proc.wait(timeout=300)
        killer.stderr.close()
        assert proc.returncode == -signal.SIGKILL, killer.log.read_text()
        assert list((run / "checkpoints").glob(leftover)), f"the {where} kill did not land where planted"
        after_kill()

    proc = killer.start(["-m", "ganzoo"])
    killer.finish(proc, kill=False)
    assert check_run_dir(run) == 2  # keep_checkpoints
    assert not [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]  # leftovers cleaned up
    assert not list(run.glob(".*.tmp"))

    resumed = ganzoo.load(str(run))
    assert resumed.step == STEPS
    # TensorBoard's reader sees each step once, with the loss metrics.jsonl kept for it (purge_step on resume)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    logged = losses_by_step(run)
    assert sorted(logged) == list(range(1, STEPS + 1))
    for tag in logged[1]:
        got = {e.step: e.value for e in events.Scalars(tag)}
        assert [e.step for e in events.Scalars(tag)] == list(range(1, STEPS + 1)), tag
        assert got == pytest.approx({step: row[tag] for step, row in logged.items()}, rel=1e-6), tag
    a, b = weights(ganzoo.load(str(tmp_path / "straight"))), weights(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert losses_by_step(run) == losses_by_step(tmp_path / "straight")  # the log was repaired after every kill
    survived = RANDOM_KILLS + 2
    assert kills == survived
    print(f"\nkills survived: {kills} ({mid_write} inside a checkpoint write or deletion)")


def test_a_cut_short_log_line_does_not_stop_a_resume(tiny_recipe, tmp_path):
    # A kill in the middle of appending to metrics.jsonl leaves half a line; resuming must drop it, not crash on it.
    recipe = load_recipe(tiny_recipe({"train": {"steps": 4, "checkpoint_every": 2, "sample_every": 0}}))
    Trainer(recipe, tmp_path / "run", quiet=True).run()
    log = tmp_path / "run" / "metrics.jsonl"
    log.write_text(log.read_text() + '{"step": 5, "loss/D/l')
    recipe.train.steps = 6
    result = Trainer(recipe, tmp_path / "run", resume=True, quiet=True).run()
    assert result.step == 6
    assert sorted(losses_by_step(tmp_path / "run")) == [1, 2, 3, 4, 5, 6]


class Killed(BaseException):
    """Stands in for SIGKILL in-process: nothing catches it, nothing after it runs."""


def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_start(tiny_recipe, tmp_path, monkeypatch):
    from tests.reliability.helpers import invoke

    path = tiny_recipe({"train": {"steps": 3, "checkpoint_every": 2, "sample_every": 0}})
    Trainer(load_recipe(path), tmp_path / "straight", quiet=True).run()

    def die(self):
        raise Killed

    monkeypatch.setattr(Trainer, "save_checkpoint", die)
    with pytest.raises(Killed):
        Trainer(load_recipe(path), tmp_path / "run", quiet=True).run()
    monkeypatch.undo()
    run = tmp_path / "run"
    assert (run / "recipe.yaml").is_file() and not list((run / "checkpoints").iterdir())
    assert sorted(losses_by_step(run)) == [1, 2]  # it trained two steps, then died before writing anything

    resumed = invoke("run", "--resume", str(run), "-q")
    assert resumed.code == 0, resumed.stderr
    assert losses_by_step(run) == losses_by_step(tmp_path / "straight")  # started over: no duplicate log lines
    a, b = weights(ganzoo.load(str(tmp_path / "straight"))), weights(ganzoo.load(str(run)))
    assert all(torch.equal(a[k], b[k]) for k in a)
