"""The trainer's speed settings: auto precision, fp16 with a grad scaler, fused Adam, torch.compile; out of memory."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import ganzoo
from ganzoo import checkpoint as ckpt
from ganzoo.errors import TrainingError
from ganzoo.model import adam, input_gradient
from ganzoo.recipe import load_recipe
from ganzoo.trainer import Trainer, _load_optimizer_state, resolve_precision


def test_auto_precision_is_bf16_on_a_cuda_gpu_with_native_bf16_and_fp32_elsewhere(monkeypatch):
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    # native bf16 only: emulated bf16 (pre-Ampere GPUs) is slower than fp32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: not including_emulation)
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert resolve_precision("auto", torch.device("cuda")) == "fp32"
    for name in ("fp32", "bf16", "fp16"):
        assert resolve_precision(name, torch.device("cuda")) == name == resolve_precision(name, torch.device("cpu"))


def test_the_default_recipe_precision_is_auto_and_a_cpu_run_resolves_it_to_fp32(tiny_recipe, tmp_path):
    recipe = load_recipe(tiny_recipe({"train": {"steps": 1, "sample_every": 0}}))
    assert recipe.train.precision == "auto"
    trainer = Trainer(recipe, tmp_path / "run", quiet=True)
    trainer.run()
    assert trainer.precision == "fp32" and trainer.scaler is None


def test_input_gradient_under_fp16_keeps_gradients_that_plain_fp16_loses():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    torch.nn.init.uniform_(conv.weight, 0.005, 0.01)
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    tiny = 1e-8  # the per-output gradient: below fp16's smallest subnormal (6e-8)

    (reference,) = torch.autograd.grad(conv(x).sum() * tiny, x)
    with torch.autocast("cpu", dtype=torch.float16):
        out = conv(x)
    assert out.dtype == torch.float16
    plain = input_gradient(out.float() * tiny, x)
    # 2^15: the default 2^16 times a gradient of 1 is already above fp16's largest value (65504); a run's
    # scaler halves to it after one skipped step.
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**15)
    with torch.autocast("cpu", dtype=torch.float16):
        out = conv(x)
    scaled = input_gradient(out.float() * tiny, x, scaler)

    assert plain.dtype == scaled.dtype == torch.float32 and scaled.requires_grad  # a graph for the penalty's backward
    def error(grad):
        return float((grad.detach() - reference).abs().max() / reference.abs().max())

    assert error(plain) > 0.5, "the control: unscaled, the gradient underflows in fp16"
    assert error(scaled) < 0.01


def test_fp16_with_a_grad_scaler_trains_and_resumes_exactly(tiny_recipe, tmp_path):
    doc = {"train": {"precision": "fp16", "device": "cpu", "steps": 4, "checkpoint_every": 2, "sample_every": 0}}
    recipe = load_recipe(tiny_recipe(doc))
    straight = Trainer(recipe, tmp_path / "straight", quiet=True)
    assert straight.run().step == 4 and straight.scaler is not None
    state = ckpt.read_train_state(ckpt.resolve_model_folder(tmp_path / "straight"))
    assert state["scaler"]["scale"] > 0  # the scaler's state is part of the checkpoint

    # The same run as if killed after its step-2 checkpoint, then resumed.
    resumed = tmp_path / "resumed"
    shutil.copytree(tmp_path / "straight", resumed)
    shutil.rmtree(resumed / "checkpoints" / "step_00000004")
    (resumed / "latest.json").write_text(json.dumps({"step": 2, "path": "checkpoints/step_00000002"}))
    again = Trainer(recipe, resumed, resume=True, quiet=True)
    assert again.run().step == 4
    assert again.scaler.get_scale() == straight.scaler.get_scale()
    a, b = ganzoo.load(str(tmp_path / "straight")).nets, ganzoo.load(str(resumed)).nets
    for role in a:
        for (key, va), vb in zip(a[role].state_dict().items(), b[role].state_dict().values()):
            assert torch.equal(va, vb), f"{role}.{key}"


def test_fp16_overflow_is_skipped_while_the_scale_is_healthy_and_stops_once_it_collapses(tiny_recipe, tmp_path):
    doc = {"train": {"precision": "fp16", "device": "cpu", "steps": 1, "sample_every": 0}}
    trainer = Trainer(load_recipe(tiny_recipe(doc)), tmp_path / "run", quiet=True)
    trainer.run()
    rows = []  # what the run's loggers (metrics.jsonl first) would receive

    class Capture:
        def log(self, record):
            rows.append(json.loads(json.dumps(record, allow_nan=False)))  # strict JSON, no Infinity

    trainer.loggers = Capture()
    pending = [{"D/reg": torch.tensor(0.5)}, {"D/reg": torch.tensor(float("inf"))}]
    last = trainer._flush_losses(pending, 0.0, 0)
    assert last == {"D/reg": 0.5}  # the last finite value is shown
    assert rows[-1]["loss/D/reg"] == 0.5
    pending = [{"D/reg": torch.tensor(float("inf"))}]
    trainer._flush_losses(pending, 0.0, 0)
    assert rows[-1]["loss/D/reg"] is None

    trainer.scaler.update(new_scale=0.25)  # what a run of NaN forwards does to the scale
    with pytest.raises(TrainingError, match="D/reg became inf"):
        trainer._flush_losses(pending, 0.0, 0)


def test_adam_is_fused_where_pytorch_has_the_kernel_and_matches_the_loop():
    torch.manual_seed(0)
    start = [torch.randn(5, 4), torch.randn(7)]
    grads = [[torch.randn_like(p) for p in start] for _ in range(6)]
    results = []
    for make in (lambda ps: adam(ps, lr=1e-2, betas=(0.5, 0.999), weight_decay=1e-4),
                 lambda ps: torch.optim.Adam(ps, lr=1e-2, betas=(0.5, 0.999), weight_decay=1e-4, foreach=False)):
        params = [torch.nn.Parameter(p.clone()) for p in start]
        opt = make(params)
        for step_grads in grads:
            for p, g in zip(params, step_grads):
                p.grad = g.clone()
            opt.step()
        results.append((opt, params))
    (fused, fused_params), (loop, loop_params) = results
    assert fused.param_groups[0]["fused"] is True and not loop.param_groups[0]["fused"]
    for a, b in zip(fused_params, loop_params):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)


def test_a_checkpoint_from_an_unfused_optimizer_loads_into_a_fused_one():
    params = [torch.nn.Parameter(torch.randn(3, 3))]
    old = torch.optim.Adam(params, lr=1e-3, foreach=False)  # what an older ganzoo (or another device) saved
    params[0].grad = torch.ones(3, 3)
    old.step()
    saved = old.state_dict()
    assert not saved["param_groups"][0]["fused"]

    new = adam(params, lr=1e-3, betas=(0.9, 0.999))
    _load_optimizer_state(new, saved)
    assert new.param_groups[0]["fused"] is True
    step = new.state[params[0]]["step"]
    assert step.dtype == torch.float32 and step.device == params[0].device and float(step) == 1.0
    new.step()  # the fused kernel accepts the loaded state
    assert float(new.state[params[0]]["step"]) == 2.0


def test_trainer_optimisers_are_fused_on_cpu(tiny_recipe, tmp_path):
    trainer = Trainer(load_recipe(tiny_recipe({"train": {"steps": 1, "sample_every": 0}})), tmp_path / "run", quiet=True)
    trainer.run()
    assert trainer.optimizers and all(g["fused"] for opt in trainer.optimizers.values() for g in opt.param_groups)


def test_out_of_memory_during_training_is_one_sentence_and_keeps_the_checkpoint(tiny_recipe, tmp_path, monkeypatch):
    from ganzoo_stargan_v2.model import StarGANv2

    original = StarGANv2.train_step

    def hungry(self, batch, step, ctx):
        if step == 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, batch, step, ctx)

    monkeypatch.setattr(StarGANv2, "train_step", hungry)
    recipe = load_recipe(tiny_recipe({"train": {"sample_every": 0}}))
    with pytest.raises(TrainingError) as info:
        Trainer(recipe, tmp_path / "run", quiet=True).run()
    message = str(info.value)
    assert message.startswith("Out of device memory at step 5; the last checkpoint is") and "step_00000003" in message
    assert "batch 2 of 16x16 px" in message and "data.batch_size" in message and "train.precision=bf16" in message
    assert ganzoo.load(str(tmp_path / "run")).step == 3


def test_out_of_memory_in_the_trial_step_writes_nothing(tiny_recipe, tmp_path, monkeypatch):
    from ganzoo_stargan_v2.model import StarGANv2

    def hungry(self, batch, step, ctx):
        raise torch.OutOfMemoryError("CUDA out of memory.")

    monkeypatch.setattr(StarGANv2, "train_step", hungry)
    recipe = load_recipe(tiny_recipe({"train": {"precision": "bf16"}}))
    with pytest.raises(TrainingError, match=r"in a trial step on 2 images before training; nothing was written .*bf16\); "
                                            r"lower data.batch_size or data.image_size or free memory on cpu\."):
        Trainer(recipe, tmp_path / "run", quiet=True).run()
    assert not (tmp_path / "run").exists()


def test_compiled_networks_train_like_eager_ones_through_the_r1_penalty(tiny_recipe, tmp_path):
    # torch.compile's graphs have no double backward; R1 differentiates the discriminator twice, so that one
    # forward runs eagerly (ganzoo.model.differentiable_twice) and everything else compiled.
    doc = {"train": {"steps": 2, "checkpoint_every": 2, "sample_every": 0}}
    eager = Trainer(load_recipe(tiny_recipe(doc)), tmp_path / "eager", quiet=True)
    eager.run()
    compiled = Trainer(load_recipe(tiny_recipe({"train": {**doc["train"], "compile": True}}, name="c.yaml")),
                       tmp_path / "compiled", quiet=True)
    compiled.run()
    assert all(hasattr(net, "_compiled_call_impl") and net._compiled_call_impl is not None
               for net in compiled.model.nets.values())
    a = [json.loads(line) for line in (tmp_path / "eager" / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(line) for line in (tmp_path / "compiled" / "metrics.jsonl").read_text().splitlines()]
    assert len(a) == len(b) == 2
    for line_a, line_b in zip(a, b):
        losses = [k for k in line_a if k.startswith("loss/")]
        assert "loss/D/reg" in losses
        for k in losses:
            assert line_b[k] == pytest.approx(line_a[k], rel=1e-4, abs=1e-5), k


def test_cpu_compiler_is_none_where_cxx_names_no_compiler():
    import os
    import subprocess
    import sys

    # a fresh process: torch caches its compiler search
    probe = [sys.executable, "-c", "from ganzoo.trainer import cpu_compiler; print(cpu_compiler())"]
    missing = subprocess.run(probe, capture_output=True, text=True, env={**os.environ, "CXX": "/nonexistent/g++"})
    assert missing.returncode == 0 and missing.stdout.strip() == "None", missing.stderr
    # (where one is found, test_compiled_networks_train_like_eager_ones_through_the_r1_penalty compiles)


def test_compile_without_a_cpu_compiler_trains_uncompiled_and_says_so(tiny_recipe, tmp_path, monkeypatch):
    import io

    from rich.console import Console

    import ganzoo.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "cpu_compiler", lambda: None)
    out = io.StringIO()
    recipe = load_recipe(tiny_recipe({"train": {"steps": 1, "sample_every": 0, "compile": True}}))
    trainer = Trainer(recipe, tmp_path / "run", console=Console(file=out, width=200))
    trainer._setup()
    assert all(getattr(net, "_compiled_call_impl", None) is None for net in trainer.model.nets.values())
    assert "torch.compile needs a C++ compiler" in out.getvalue() and "training uncompiled" in out.getvalue()
