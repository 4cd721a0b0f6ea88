"""Shared fixtures: tiny recipes that train in seconds on CPU, and a CLI runner."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

# Tests never reach a hub; see README (CI sets these too).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

TINY_V2 = {
    "model": "stargan_v2",
    "networks": {
        "generator": {"dim_in": 8, "max_conv_dim": 16, "style_dim": 8, "w_hpf": 0},
        "mapping_network": {"latent_dim": 4, "hidden_dim": 16},
        "style_encoder": {"dim_in": 8, "max_conv_dim": 16},
        "discriminator": {"dim_in": 8, "max_conv_dim": 16},
    },
    "data": {"name": "shapes", "image_size": 16, "batch_size": 2, "num_train": 32, "num_val": 6},
    "train": {"steps": 6, "checkpoint_every": 3, "sample_every": 3, "log_every": 1, "seed": 1, "ema": 0.9},
}


class CodeRunningPickle:
    """Unpickling this runs a shell command that creates ``marker`` (the classic malicious-checkpoint trick);
    tests plant it in checkpoints and check that ganzoo refuses them and the marker never appears."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


@pytest.fixture
def tiny_recipe(tmp_path: Path):
    """Write the tiny StarGAN v2 recipe (optionally changed) and return its path."""

    def make(changes: dict | None = None, name: str = "tiny.yaml") -> Path:
        from ganzoo.recipe import deep_merge

        doc = deep_merge(TINY_V2, changes or {})
        path = tmp_path / name
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    return make


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run the real ``ganzoo`` CLI in a subprocess (the way users do)."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "ganzoo", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli
