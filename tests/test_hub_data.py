"""Hub datasets in the HugGAN layout (two image columns, imageA / imageB): unpaired for CycleGAN, paired for pix2pix.

The shipped recipes are trained for 2 steps against a local Hub-protocol server (olah, as tests/test_hub.py uses)
holding tiny parquet repos under the recipes' own ids; the dataset semantics (empty cells, pairs sharing one crop,
streaming, renamed columns) are checked in-process on the same kind of repo read from a local folder.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from hub_servers import OlahMirror, git_repo

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
TINY_PIX2PIX = ["networks.generator.num_downs=5", "networks.generator.ngf=8", "networks.discriminator.ndf=8",
                "networks.discriminator.n_layers=2", "data.image_size=32", "data.load_size=36"]
TINY_CYCLEGAN = ["networks.generator_a2b.ngf=8", "networks.generator_b2a.ngf=8", "networks.generator_a2b.n_blocks=1",
                 "networks.generator_b2a.n_blocks=1", "networks.discriminator_a.ndf=8", "networks.discriminator_b.ndf=8",
                 "networks.discriminator_a.n_layers=2", "networks.discriminator_b.n_layers=2",
                 "data.image_size=32", "data.load_size=36"]
RUN_SCRIPT = """
import json, sys
from typer.testing import CliRunner
from ganzoo.cli import app
for command in json.loads(sys.argv[1]):
    result = CliRunner().invoke(app, command)
    print(result.output)
    if result.exit_code != 0:
        sys.exit(f"exit {result.exit_code}: {result.exception!r}")
"""
RUN = ["train.steps=2", "train.checkpoint_every=2", "train.sample_every=0", "train.device=cpu", "data.num_workers=0",
       "train.log_every=1"]


def parquet_repo(folder: Path, rows: int, *, unpaired_gap: bool = False, columns=("imageA", "imageB"), seed: int = 0) -> dict:
    """A HugGAN-style dataset repo: data/train-00000-of-00001.parquet with two image columns (+ a card).

    Row 0 holds the same image in both columns (to see that a pair gets one crop and flip); with
    ``unpaired_gap`` the last B cell is empty, as an unpaired repo with fewer B than A images pads it.
    """
    import datasets

    rng = np.random.default_rng(seed)
    a = [Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)) for _ in range(rows)]
    b = [Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)) for _ in range(rows)]
    b[0] = a[0]
    if unpaired_gap:
        b[-1] = None
    features = datasets.Features({columns[0]: datasets.Image(), columns[1]: datasets.Image()})
    (folder / "data").mkdir(parents=True)
    datasets.Dataset.from_dict({columns[0]: a, columns[1]: b}, features=features).to_parquet(
        str(folder / "data" / "train-00000-of-00001.parquet"))
    files = {"data/train-00000-of-00001.parquet": (folder / "data" / "train-00000-of-00001.parquet").read_bytes(),
             "README.md": "---\nlicense: mit\n---\nTiny two-column repo for ganzoo tests.\n"}
    (folder / "README.md").write_text(files["README.md"])
    return files


def test_two_column_layout_unpaired_paired_streamed_and_renamed(tmp_path):
    from ganzoo.data.hub import HubImageDataset
    from ganzoo.errors import DataError

    root = tmp_path / "repo"
    parquet_repo(root, 4, unpaired_gap=True)
    unpaired = HubImageDataset(str(root), image_size=16, domains=["horse", "zebra"])
    assert unpaired.domains == ["horse", "zebra"] and unpaired.labels == [0] * 4 + [1] * 3  # the empty B cell is no image
    assert unpaired.load(6, random.Random(0)).shape == (3, 16, 16)
    assert unpaired.label_groups() == [[0, 1, 2, 3], [4, 5, 6]]

    paired = HubImageDataset(str(root), image_size=16, aligned=True, load_size=20)
    assert len(paired) == 3 and paired.labels == [0, 0, 0]  # the row without B is no pair
    for seed in range(6):  # row 0 has the same image in A and B: one crop and flip for both, whatever the draw
        source, target = paired.load_pair(0, random.Random(seed))
        assert torch.equal(source, target)
    source, target = paired.load_pair(1, random.Random(0))
    assert not torch.equal(source, target)
    swapped = HubImageDataset(str(root), image_size=16, aligned=True, direction="BtoA", load_size=20)
    assert swapped.domains == ["B", "A"]
    assert torch.equal(swapped.load_pair(1)[0], paired.load_pair(1)[1])

    streamed = HubImageDataset(str(root), image_size=16, aligned=True, streaming=True, stream_rows=2, load_size=20)
    assert len(streamed) == 2 and torch.equal(streamed.load_pair(1)[0], paired.load_pair(1)[0])

    renamed = tmp_path / "renamed"
    parquet_repo(renamed, 2, columns=("photo", "sketch"))
    with pytest.raises(DataError, match='data.column_a / data.column_b'):
        HubImageDataset(str(renamed), image_size=16)
    assert len(HubImageDataset(str(renamed), image_size=16, column_a="photo", column_b="sketch")) == 4


@pytest.mark.skipif(shutil.which("git") is None or not Path(sys.executable).with_name("olah-cli").exists(),
                    reason="needs git and the olah test extra (pip install -e .[dev])")
def test_shipped_hub_recipes_train_from_a_local_hub(tmp_path):
    """`ganzoo run recipes/cyclegan_horse2zebra_hub.yaml --set train.steps=2` (and the pix2pix one) against a local
    Hub server holding tiny repos under the recipes' ids: both train and write a model folder."""
    mirror = OlahMirror(tmp_path / "olah").start()
    try:
        git_repo(mirror.mirrors / "datasets/huggan/horse2zebra", parquet_repo(tmp_path / "h2z", 4, unpaired_gap=True))
        git_repo(mirror.mirrors / "datasets/huggan/facades", parquet_repo(tmp_path / "facades", 3, seed=1))
        env = {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": mirror.endpoint, "HF_HUB_OFFLINE": "0",
               "HF_DATASETS_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1"}
        # Both runs in one interpreter (HF_ENDPOINT is read at import, so not this one): the real CLI, one start-up.
        runs = {"cyclegan_horse2zebra_hub": TINY_CYCLEGAN, "pix2pix_facades_hub": TINY_PIX2PIX}
        commands = [["run", str(RECIPES / f"{name}.yaml"), *[a for item in tiny + RUN for a in ("--set", item)],
                     "--out", str(tmp_path / name), "-q"] for name, tiny in runs.items()]
        result = subprocess.run([sys.executable, "-c", RUN_SCRIPT, json.dumps(commands)], capture_output=True, text=True,
                                timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1", **env})
        assert result.returncode == 0, result.stdout + result.stderr
        for name, domains in (("cyclegan_horse2zebra_hub", ["horse", "zebra"]), ("pix2pix_facades_hub", ["labels", "photo"])):
            run_dir = tmp_path / name
            folder = run_dir / json.loads((run_dir / "latest.json").read_text())["path"]
            config = json.loads((folder / "config.json").read_text())
            assert config["domains"] == domains and config["step"] == 2
            assert any(folder.glob("generator*.safetensors"))
            steps = [json.loads(line).get("step") for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
            assert steps[:2] == [1, 2]
    finally:
        mirror.stop()

    # a streamed run at no fixed revision cannot be resumed exactly: refused with one sentence
    streamed = yaml.safe_load((tmp_path / "pix2pix_facades_hub" / "recipe.yaml").read_text())
    streamed["data"]["streaming"] = True
    (tmp_path / "pix2pix_facades_hub" / "recipe.yaml").write_text(yaml.safe_dump(streamed))
    from typer.testing import CliRunner

    from ganzoo.cli import app

    refused = CliRunner().invoke(app, ["run", "--resume", str(tmp_path / "pix2pix_facades_hub")])
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert "huggan/facades@COMMIT" in refused.output
