"""The generic trainer: resume equality, Ctrl-C, atomic checkpoints, NaN stops, samples and logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import ganzoo
from ganzoo import checkpoint as ckpt
from ganzoo.errors import GanzooError, TrainingError
from ganzoo.recipe import load_recipe
from ganzoo.trainer import Trainer


def losses_by_step(run_dir: Path) -> dict[int, dict]:
    lines = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines() if l.strip()]
    return {r["step"]: {k: v for k, v in r.items() if k.startswith("loss/")} for r in lines}


def weights(model) -> dict[str, torch.Tensor]:
    return {f"{role}.{k}": v for group in (model.nets, model.ema_nets) for role, net in group.items()
            for k, v in net.state_dict().items()}


def test_run_writes_model_folder_samples_and_logs(tiny_recipe, tmp_path):
    recipe = load_recipe(tiny_recipe())
    result = Trainer(recipe, tmp_path / "run", quiet=True).run()
    run = tmp_path / "run"
    assert result.step == 6 and not result.interrupted
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == ["step_00000003.png", "step_00000006.png"]
    assert sorted(losses_by_step(run)) == [1, 2, 3, 4, 5, 6]
    folder = ckpt.resolve_model_folder(run)
    assert folder.name == "step_00000006"
    names = sorted(p.name for p in folder.iterdir())
    assert "config.json" in names and "generator.ema.safetensors" in names and "discriminator.safetensors" in names
    config = json.loads((folder / "config.json").read_text())
    assert config["domains"] == ["red", "green", "blue"] and config["image_size"] == 16
    assert config["networks"]["generator"]["kwargs"]["img_size"] == 16
    # nothing pickled anywhere in the run
    for path in run.rglob("*"):
        assert path.suffix not in (".pt", ".pth", ".pkl", ".ckpt")
    model = ganzoo.load(str(run))
    assert set(model.nets) == {"generator", "mapping_network", "style_encoder", "discriminator"}
    assert all(isinstance(n, torch.nn.Module) for n in model.nets.values())
    out = model.translate(torch.zeros(2, 3, 16, 16), torch.tensor([0, 2]))
    assert out.shape == (2, 3, 16, 16)


def test_ema_zero_samples_and_saves_the_trained_networks(tiny_recipe, tmp_path):
    """train.ema 0 disables EMA: no EMA files in the folder (the copies would keep their initial weights); samples
    and the loaded model use the trained networks."""
    trainer = Trainer(load_recipe(tiny_recipe({"train": {"ema": 0.0}})), tmp_path / "run", quiet=True)
    trainer.run()
    folder = ckpt.resolve_model_folder(tmp_path / "run")
    assert not list(folder.glob("*.ema.safetensors"))
    model = ganzoo.load(str(tmp_path / "run"))
    trained = trainer.model.nets["generator"].state_dict()
    for key, value in model.inference_nets()["generator"].state_dict().items():
        assert torch.equal(value, trained[key]), key


def test_resume_after_ctrl_c_reproduces_the_uninterrupted_run(tiny_recipe, tmp_path, monkeypatch):
    recipe_path = tiny_recipe()
    straight = Trainer(load_recipe(recipe_path), tmp_path / "straight", quiet=True)
    straight.run()

    # Press Ctrl-C (a real SIGINT) during the fifth step of a second run, then resume it.
    from ganzoo_stargan_v2.model import StarGANv2

    original = StarGANv2.train_step

    def interrupting(self, batch, step, ctx):
        if step == 4:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, batch, step, ctx)

    monkeypatch.setattr(StarGANv2, "train_step", interrupting)
    first = Trainer(load_recipe(recipe_path), tmp_path / "resumed", quiet=True).run()
    assert first.interrupted and first.step == 5  # the step in hand finished, then a checkpoint was written
    assert json.loads((tmp_path / "resumed" / "latest.json").read_text())["step"] == 5
    monkeypatch.setattr(StarGANv2, "train_step", original)
    second = Trainer(load_recipe(tmp_path / "resumed" / "recipe.yaml"), tmp_path / "resumed", resume=True, quiet=True).run()
    assert second.step == 6

    assert losses_by_step(tmp_path / "resumed") == losses_by_step(tmp_path / "straight")
    a, b = weights(ganzoo.load(str(tmp_path / "straight"))), weights(ganzoo.load(str(tmp_path / "resumed")))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_existing_run_directory_is_not_overwritten(tiny_recipe, tmp_path):
    recipe = load_recipe(tiny_recipe({"train": {"steps": 1, "sample_every": 0}}))
    Trainer(recipe, tmp_path / "run", quiet=True).run()
    with pytest.raises(GanzooError, match="already holds a run; resume it with --resume"):
        Trainer(recipe, tmp_path / "run", quiet=True).run()


def test_a_failing_checkpoint_write_leaves_the_previous_one_loadable(tiny_recipe, tmp_path, monkeypatch):
    recipe = load_recipe(tiny_recipe({"train": {"sample_every": 0}}))
    calls = {"n": 0}
    real_save = ckpt._save_tensors

    def flaky(tensors, path, metadata=None):
        calls["n"] += 1
        if "step_00000006" in str(path.parent.name) or calls["n"] > 8:  # second checkpoint dies half-way
            raise OSError(28, "No space left on device")
        return real_save(tensors, path, metadata)

    monkeypatch.setattr(ckpt, "_save_tensors", flaky)
    with pytest.raises(TrainingError, match="No space left|disk is full"):
        Trainer(recipe, tmp_path / "run", quiet=True).run()
    run = tmp_path / "run"
    assert json.loads((run / "latest.json").read_text())["step"] == 3
    model = ganzoo.load(str(run))
    assert model.step == 3
    leftovers = [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_non_finite_loss_stops_with_one_sentence_and_keeps_last_good_checkpoint(tiny_recipe, tmp_path, monkeypatch):
    from ganzoo_stargan_v2.model import StarGANv2

    original = StarGANv2.train_step

    def exploding(self, batch, step, ctx):
        logs = original(self, batch, step, ctx)
        if step == 4:
            logs["G/adv"] = torch.tensor(float("nan"))
        return logs

    monkeypatch.setattr(StarGANv2, "train_step", exploding)
    recipe = load_recipe(tiny_recipe({"train": {"sample_every": 0}}))
    with pytest.raises(TrainingError) as info:
        Trainer(recipe, tmp_path / "run", quiet=True).run()
    message = str(info.value)
    assert "G/adv became nan by step 5" in message and "step_00000003" in message
    assert ganzoo.load(str(tmp_path / "run")).step == 3


def test_sigkill_during_training_never_leaves_an_unreadable_checkpoint(tiny_recipe, tmp_path):
    recipe = tiny_recipe({"train": {"steps": 400, "checkpoint_every": 1, "sample_every": 0, "log_every": 1}})
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ganzoo", "run", str(recipe), "--out", str(run), "-q"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "latest.json").exists():
        time.sleep(0.2)
    time.sleep(1.5)  # let it write several checkpoints, then kill mid-flight
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    model = ganzoo.load(str(run))
    assert model.step >= 1
    state = ckpt.read_train_state(ckpt.resolve_model_folder(run))
    assert state["step"] == model.step


def test_bf16_autocast_trains_on_cpu(tiny_recipe, tmp_path):
    recipe = load_recipe(tiny_recipe({"train": {"steps": 2, "precision": "bf16", "sample_every": 0}}))
    result = Trainer(recipe, tmp_path / "run", quiet=True).run()
    assert result.step == 2 and all(map(__import__("math").isfinite, result.losses.values()))


def test_imagefolder_run_logs_skipped_files_and_trains(tmp_path, capsys):
    import numpy as np
    from PIL import Image
    from rich.console import Console

    for split in ("train", "val"):
        for d, colour in (("cat", 200), ("dog", 60)):
            folder = tmp_path / "data" / split / d
            folder.mkdir(parents=True)
            for i in range(3):
                Image.fromarray(np.full((20, 24, 3), colour + i, np.uint8)).save(folder / f"{i}.png")
    (tmp_path / "data" / "train" / "cat" / "empty.jpg").write_bytes(b"")
    from ganzoo.recipe import recipe_from_dict
    from tests.conftest import TINY_V2

    doc = {**TINY_V2, "data": {"name": "imagefolder", "root": str(tmp_path / "data"), "image_size": 16, "batch_size": 2},
           "train": {**TINY_V2["train"], "steps": 2, "sample_every": 2}}
    recipe = recipe_from_dict(doc)
    console = Console(stderr=True, force_terminal=False)
    result = Trainer(recipe, tmp_path / "run", console=console).run()
    assert result.step == 2
    assert "1 train file(s) skipped as unreadable" in capsys.readouterr().err
    config = json.loads((ckpt.resolve_model_folder(tmp_path / "run") / "config.json").read_text())
    assert config["domains"] == ["cat", "dog"]
