"""Run directories and model folders written before the family packages (ganzoo at commit c287df4) still load,
translate exactly as they did, and resume.

``tests/data/old_layout/<family>/`` are tiny one-step runs made by that version with
``tests/data/old_layout/make_old_layout.py``; each holds the translation of a fixed input that the old
version computed (``expected_translation.safetensors``). pix2pix's config.json there still names the plugin
``pix2pix``, which is now part of the ``ganzoo_cyclegan`` package.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import ganzoo

OLD = Path(__file__).parent / "data" / "old_layout"
FAMILIES = sorted(p.name for p in OLD.iterdir() if p.is_dir())


def test_every_family_has_an_old_run():
    assert FAMILIES == ["cyclegan", "pix2pix", "stargan", "stargan_v2"]


@pytest.mark.parametrize("family", FAMILIES)
def test_an_old_run_loads_and_translates_as_it_did(family):
    run = OLD / family
    expected = load_file(str(run / "expected_translation.safetensors"))
    index = json.loads((run / "expected_translation.json").read_text())["index"]
    model = ganzoo.load(str(run))
    assert model.name == family and model.step == 1
    out = model.translate_to(expected["input"], index, generator=torch.Generator().manual_seed(0))
    # 1e-5, not 1e-6: the expected output was written on another CPU, and fp32 convolution kernels differ by
    # ISA (AVX-512/AMX vs AVX2) by ~2e-6 here; a wrong weight or layout is off by orders of magnitude more.
    torch.testing.assert_close(out, expected["output"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_an_old_run_resumes(family, tmp_path, cli):
    run = tmp_path / family
    shutil.copytree(OLD / family, run)
    proc = cli("run", "--resume", str(run), "--set", "train.steps=2", "-q")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((run / "latest.json").read_text())["step"] == 2
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert steps == sorted(set(steps)) and steps[-1] == 2
