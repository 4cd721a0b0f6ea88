"""``ganzoo bench`` runs on CPU for every model family (official recipes, tiny overrides) and writes JSON."""

from __future__ import annotations

import json

import pytest

TINY = {
    "stargan_v2": ["--img-size", "16", "--set", "networks.generator.dim_in=8", "--set", "networks.generator.max_conv_dim=16",
                   "--set", "networks.style_encoder.dim_in=8", "--set", "networks.style_encoder.max_conv_dim=16",
                   "--set", "networks.discriminator.dim_in=8", "--set", "networks.discriminator.max_conv_dim=16",
                   "--set", "networks.mapping_network.hidden_dim=16"],
    "stargan": ["--img-size", "16", "--set", "networks.generator.conv_dim=8", "--set", "networks.generator.repeat_num=1",
                "--set", "networks.discriminator.conv_dim=8", "--set", "networks.discriminator.repeat_num=2"],
    "cyclegan": ["--img-size", "32", "--set", "networks.generator_a2b.ngf=8", "--set", "networks.generator_b2a.ngf=8",
                 "--set", "networks.generator_a2b.n_blocks=1", "--set", "networks.generator_b2a.n_blocks=1",
                 "--set", "networks.discriminator_a.ndf=8", "--set", "networks.discriminator_b.ndf=8"],
    "pix2pix": ["--img-size", "32", "--set", "networks.generator.num_downs=5", "--set", "networks.generator.ngf=8",
                "--set", "networks.discriminator.ndf=8"],
}


@pytest.mark.parametrize("model", sorted(TINY))
def test_bench_on_cpu_writes_the_numbers(model, cli, tmp_path):
    out = tmp_path / "bench.json"
    proc = cli("bench", model, "--batch", "2", "--steps", "1", "--device", "cpu", "--json", str(out), *TINY[model])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train img/s" in proc.stdout and "MFU" in proc.stdout
    r = json.loads(out.read_text())
    assert r["model"] == model and r["device"] == "cpu" and r["batch"] == 2 and r["precision"] == "fp32"
    assert r["recipe"].endswith(".yaml") and "synthetic" in r["data"]
    for key in ("train_img_per_s", "infer_img_per_s", "train_flops_per_iter", "infer_flops_per_img", "achieved_tflops"):
        assert r[key] > 0, key
    assert r["peak_mem_mb"] >= 0 and r["peak_mem_kind"]
    assert r["mfu"] is None and "n/a" in r["peak_source"]
    # a training iteration does at least one generator forward per image (inference does exactly that)
    assert r["train_flops_per_iter"] > r["infer_flops_per_img"] * r["batch"]


@pytest.mark.parametrize("model", sorted(TINY))
def test_bench_in_bf16_trains_and_translates_under_autocast(model, cli, tmp_path):
    # bf16 is the default precision on GPUs: every family's train step and translation must run under it
    out = tmp_path / "bench.json"
    proc = cli("bench", model, "--batch", "2", "--steps", "1", "--device", "cpu", "--precision", "bf16", "--json", str(out),
               *TINY[model])
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["precision"] == "bf16" and r["train_img_per_s"] > 0 and r["infer_img_per_s"] > 0


def test_bench_mfu_with_a_given_peak_and_bad_target(cli, tmp_path):
    out = tmp_path / "b.json"
    proc = cli("bench", "stargan", "--batch", "2", "--steps", "1", "--device", "cpu", "--peak-tflops", "1.5", "--json", str(out),
               *TINY["stargan"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["peak_tflops"] == 1.5 and r["mfu"] == pytest.approx(r["achieved_tflops"] / 1.5)
    bad = cli("bench", "no_such_model")
    assert bad.returncode == 2 and "neither a recipe file nor a model" in bad.stderr
