"""DDP under torchrun (gloo, 2 CPU processes) equals the 1-process run with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganzoo import checkpoint as ckpt
from ganzoo.errors import GanzooError
from ganzoo.recipe import load_recipe
from ganzoo.trainer import Trainer

# Global batch 4 (2 per process), 3 steps, EMA on; no samples (rank 0 would draw the same sheet either way).
DDP_CHANGES = {"data": {"batch_size": 4}, "train": {"steps": 3, "checkpoint_every": 3, "sample_every": 0, "log_every": 1}}


def final_model(run_dir: Path):
    return ckpt.load_model(ckpt.resolve_model_folder(run_dir))


def weights(model) -> dict[str, torch.Tensor]:
    return {f"{group_name}/{role}.{k}": v for group_name, group in (("net", model.nets), ("ema", model.ema_nets))
            for role, net in group.items() for k, v in net.state_dict().items()}


@torch.no_grad()
def outputs(nets: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """Every network's output on fixed inputs (tiny v2: 3 domains, latent 4)."""
    g = torch.Generator().manual_seed(0)
    x, z, y = torch.randn(3, 3, 16, 16, generator=g), torch.randn(3, 4, generator=g), torch.tensor([0, 1, 2])
    out = {"mapping_network": nets["mapping_network"](z, y), "style_encoder": nets["style_encoder"](x, y)}
    out["generator"] = nets["generator"](x, out["mapping_network"])
    if "discriminator" in nets:
        out["discriminator"] = nets["discriminator"](x, y)
    return out


@torch.no_grad()
def normalised_away(model) -> set[str]:
    """Parameters that cannot change any output (conv biases right before an instance norm).

    Their gradient is zero in exact arithmetic, so what Adam does with them is rounding noise divided by
    its own magnitude: they differ between any two summation orders and are left out of the comparison.
    """
    base, found = outputs(model.nets), set()
    for role, net in model.nets.items():
        for name, p in net.named_parameters():
            shift = 0.5 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1))
            p += shift
            if torch.allclose(outputs(model.nets)[role], base[role], atol=1e-3, rtol=0):  # others move it by > 0.1
                found.add(f"{role}.{name}")
            p -= shift
    return found


def torchrun(*args: str, cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ganzoo", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def test_two_gloo_processes_equal_one_process_with_the_same_global_batch(tiny_recipe, tmp_path):
    recipe_path = tiny_recipe(DDP_CHANGES)
    single = tmp_path / "single"
    Trainer(load_recipe(recipe_path), single, quiet=True).run()

    ddp = tmp_path / "ddp"
    proc = torchrun("run", str(recipe_path), "--out", str(ddp), "--set", "train.loggers=[jsonl,tensorboard]", "--quiet",
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    single_model, ddp_model = final_model(single), final_model(ddp)
    a, b = weights(single_model), weights(ddp_model)
    assert a.keys() == b.keys()
    assert not any("module." in k for k in b)  # checkpoints hold the plain networks
    roles = {k.split(".")[0] for k in b}
    assert roles == {"net/generator", "net/mapping_network", "net/style_encoder", "net/discriminator",
                     "ema/generator", "ema/mapping_network", "ema/style_encoder"}
    skip = normalised_away(single_model)
    assert skip and all(k.startswith("generator.") and k.endswith(".bias") for k in skip), skip
    start = weights_at_init(recipe_path)
    compared = moved = 0
    for k in a:
        if k.split("/", 1)[1] in skip:
            continue
        torch.testing.assert_close(b[k], a[k], atol=1e-5, rtol=0, msg=lambda m, k=k: f"{k}: {m}")
        compared += 1
        moved += k in start and not torch.allclose(a[k], start[k], atol=1e-5, rtol=0)
    assert compared > 150 and moved > 50  # the runs trained (not two untouched initialisations compared)
    # what the networks compute (skipped biases included) matches too, EMA copies as well
    for group in ("nets", "ema_nets"):
        nets_a = {**single_model.nets, **getattr(single_model, group)}
        nets_b = {**ddp_model.nets, **getattr(ddp_model, group)}
        for role, value in outputs(nets_a).items():
            torch.testing.assert_close(outputs(nets_b)[role], value, atol=5e-5, rtol=0)

    # rank 0 alone wrote one log line per step; losses are the mean over ranks, equal to the 1-process ones
    def log(run):
        return [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]

    la, lb = log(single), log(ddp)
    assert [r["step"] for r in lb] == [1, 2, 3]
    # the loggers too: one TensorBoard event file (rank 0's), one value per step
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert len(list((ddp / "tensorboard").glob("events.out.tfevents.*"))) == 1
    events = EventAccumulator(str(ddp / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss/G/adv")] == [1, 2, 3]
    for ra, rb in zip(la, lb):
        for k in ra:
            if k.startswith("loss/"):
                assert rb[k] == pytest.approx(ra[k], abs=2e-4), k


def weights_at_init(recipe_path: Path) -> dict[str, torch.Tensor]:
    """The networks as the trainer initialises them (same seed), before any step."""
    trainer = Trainer(load_recipe(recipe_path), recipe_path.parent / "unused", quiet=True)
    trainer._setup()
    return {f"net/{role}.{k}": v.clone() for role, net in trainer.model.nets.items() for k, v in net.state_dict().items()}


def test_global_batch_not_divisible_by_world_size_is_one_sentence(tiny_recipe, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(GanzooError) as info:
        Trainer(load_recipe(tiny_recipe({"data": {"batch_size": 4}})), tmp_path / "run", quiet=True).run()
    message = str(info.value)
    assert "data.batch_size 4" in message and "divisible by the 3 processes" in message
    assert "\n" not in message and message.endswith(".")
    assert not (tmp_path / "run").exists()


def test_a_run_directory_rank_0_cannot_make_stops_every_rank_with_its_sentence(tiny_recipe, tmp_path):
    # Rank 0 alone prepares the run directory; the others must hear of its failure rather than wait at a barrier.
    (tmp_path / "a-file").write_text("not a folder")
    out = tmp_path / "a-file" / "run"
    proc = torchrun("run", str(tiny_recipe(DDP_CHANGES)), "--out", str(out), "--quiet", cwd=tmp_path, timeout=180)
    assert proc.returncode != 0
    assert "Cannot write to the output directory" in proc.stderr and "choose a writable --out" in proc.stderr
    assert "Rank 0 could not prepare the run directory" in proc.stderr
    # (torchrun prints its own ChildFailedError report after ours; no frame of ganzoo's code is in it)
    assert "ganzoo/trainer.py" not in proc.stderr and "ganzoo/cli.py" not in proc.stderr
