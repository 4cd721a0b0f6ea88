"""Weights on the Hub: push, pull, ganzoo.load / translate with Hub ids, the pretrained zoo.

Everything goes through real components over real HTTP on loopback: the olah Hub mirror
(downloads), a small upload endpoint committing into olah's mirror folder (push), and a
plain file server standing in for an official release link. The CLI runs as a subprocess
because huggingface_hub reads HF_ENDPOINT / HF_HUB_OFFLINE once, at import.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_V2, run_cli
from hub_servers import FileServer, OlahMirror, UploadServer, git_repo

pytestmark = pytest.mark.skipif(shutil.which("git") is None or not Path(sys.executable).with_name("olah-cli").exists(),
                                reason="needs git and the olah test extra (pip install -e .[dev])")


def tiny_model_folder(folder: Path, domains=("cat", "dog")) -> Path:
    """A tiny StarGAN v2 model folder with random weights (what `ganzoo run` writes, minus training)."""
    from ganzoo.plugins import get_registry
    from ganzoo.recipe import recipe_from_dict

    torch.manual_seed(0)
    recipe = recipe_from_dict(TINY_V2, source="tiny", check_data=False)
    model = get_registry().get("models", "stargan_v2")(recipe, list(domains))
    model.build()
    return model.save_pretrained(folder)


def image(path: Path, size: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def online(hf_home: Path, endpoint: str) -> dict[str, str]:
    return {"HF_HOME": str(hf_home), "HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0",
            "HF_TOKEN": "hf_test_token", "HF_HUB_DISABLE_TELEMETRY": "1"}


def offline(hf_home: Path) -> dict[str, str]:
    return {"HF_HOME": str(hf_home), "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_sentence_error(result) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


LOAD_SCRIPT = "import ganzoo, sys; m = ganzoo.load(sys.argv[1]); print(m.name, ','.join(m.domains), m.image_size)"


def load_in_subprocess(name: str, env: dict[str, str]):
    """``ganzoo.load(name)`` in a fresh interpreter (its own HF_ENDPOINT / HF_HUB_OFFLINE)."""
    return subprocess.run([sys.executable, "-c", LOAD_SCRIPT, name], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **env})


@pytest.fixture
def mirror(tmp_path):
    server = OlahMirror(tmp_path / "olah").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def uploads(mirror):
    server = UploadServer(mirror.mirrors)
    try:
        yield server
    finally:
        server.stop()


def test_push_pull_load_translate_then_offline(tmp_path, mirror, uploads):
    model = tiny_model_folder(tmp_path / "model")
    hf_home = tmp_path / "hf"

    pushed = run_cli("push", str(model), "org/tiny", "-m", "first upload", env=online(hf_home, uploads.endpoint))
    assert pushed.returncode == 0, pushed.stderr
    assert (mirror.mirrors / "models/org/tiny/README.md").is_file()

    # A plain pull brings what translating needs; --full adds the discriminator (and train_state/ where there is one).
    light = run_cli("pull", "org/tiny", env=online(hf_home, mirror.endpoint))
    assert light.returncode == 0, light.stderr
    snapshot = Path(light.stdout.strip().splitlines()[-1])
    assert (snapshot / "generator.ema.safetensors").is_file() and not (snapshot / "discriminator.safetensors").exists()
    assert "--full" not in light.stderr
    pulled = run_cli("pull", "org/tiny", "--full", "--local-dir", str(tmp_path / "copy"), env=online(hf_home, mirror.endpoint))
    assert pulled.returncode == 0, pulled.stderr
    assert "--init-from org/tiny" in pulled.stderr
    copy = Path(pulled.stdout.strip().splitlines()[-1])
    assert copy == tmp_path / "copy"
    original, downloaded = files_of(model), files_of(copy)
    assert {name: downloaded[name] for name in original} == original  # bit-identical weights and config
    assert set(downloaded) - set(original) == {"README.md", "recipe.yaml"}
    card = downloaded["README.md"].decode()
    assert card.startswith("---\n") and "library_name: ganzoo" in card and "license: unknown" in card
    assert "- stargan_v2" in card and "## How to use" in card and "ganzoo pull org/tiny" in card and "cat, dog" in card

    loaded = load_in_subprocess("org/tiny", online(hf_home, mirror.endpoint))
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == ["stargan_v2", "cat,dog", "16"]
    src = image(tmp_path / "in" / "a.png")
    translated = run_cli("translate", "org/tiny@main", "-i", str(src), "-t", "dog", "-o", str(tmp_path / "out"),
                         env=online(hf_home, mirror.endpoint))
    assert translated.returncode == 0, translated.stderr
    assert Image.open(tmp_path / "out" / "a.png").size == (16, 16)

    # The server is gone: everything needed is in the cache.
    mirror.stop()
    loaded = load_in_subprocess("org/tiny", offline(hf_home))
    assert loaded.returncode == 0, loaded.stderr
    translated = run_cli("translate", "org/tiny", "-i", str(src), "-t", "cat", "-o", str(tmp_path / "out2"), env=offline(hf_home))
    assert translated.returncode == 0, translated.stderr
    assert (tmp_path / "out2" / "a.png").is_file()
    missing = run_cli("pull", "org/never-pulled", env=offline(hf_home))
    assert "HF_HUB_OFFLINE=1" in one_sentence_error(missing)


def test_push_to_a_branch_and_pull_that_revision(tmp_path, mirror, uploads):
    model = tiny_model_folder(tmp_path / "model")
    hf_home = tmp_path / "hf"
    for args in (("push", str(model), "org/branchy"), ("push", str(model), "org/branchy", "--revision", "v2", "--license", "mit")):
        result = run_cli(*args, env=online(hf_home, uploads.endpoint))
        assert result.returncode == 0, result.stderr
    pulled = run_cli("pull", "org/branchy@v2", env=online(hf_home, mirror.endpoint))
    assert pulled.returncode == 0, pulled.stderr
    snapshot = Path(pulled.stdout.strip().splitlines()[-1])
    assert "license: mit" in (snapshot / "README.md").read_text()
    assert (snapshot / "generator.ema.safetensors").read_bytes() == (model / "generator.ema.safetensors").read_bytes()


def test_hub_errors_are_one_sentence_and_leave_nothing(tmp_path, mirror):
    hf_home = tmp_path / "hf"
    git_repo(mirror.mirrors / "models/org/tiny", files_of(tiny_model_folder(tmp_path / "model")))
    git_repo(mirror.mirrors / "models/org/bert", {"config.json": json.dumps({"model_type": "bert"}), "model.safetensors": b"x" * 64})
    git_repo(mirror.mirrors / "models/org/notes", {"README.md": "just a readme\n"})
    env = online(hf_home, mirror.endpoint)
    cases = {
        ("pull", "org/nothing-here"): "was not found",
        ("pull", "org/tiny@no-such-branch"): "has no revision no-such-branch",
        ("pull", "org/bert", "--local-dir", str(tmp_path / "bert")): "is not a ganzoo model",
        ("pull", "org/notes"): "has no config.json",
        ("pull", "not-a-repo-id"): "is not a Hub repo id",
        ("pull", "stargan_v2.afhqq"): 'Did you mean "stargan_v2.afhq"',
    }
    for args, expected in cases.items():
        assert expected in one_sentence_error(run_cli(*args, env=env)), args
    assert not (tmp_path / "bert").exists()
    assert not list(hf_home.glob("hub/models--org--bert/snapshots/*/model.safetensors"))  # refused before the weights


# --------------------------------------------------------------------------- the pretrained zoo


def official_afhq_checkpoint(path: Path) -> Path:
    """A tiny checkpoint in the official StarGAN v2 layout ({role: state_dict}, random values)."""
    from ganzoo_stargan_v2.networks import Generator, MappingNetwork, StyleEncoder

    torch.manual_seed(1)
    nets = {"generator": Generator(16, 8, 16, 0, 8), "mapping_network": MappingNetwork(4, 8, 3, 16),
            "style_encoder": StyleEncoder(16, 8, 3, 16, 8)}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({role: net.state_dict() for role, net in nets.items()}, path)
    return path


def test_pretrained_release_is_verified_converted_cached(tmp_path):
    release = official_afhq_checkpoint(tmp_path / "www" / "100000_nets_ema.ckpt")
    digest = hashlib.sha256(release.read_bytes()).hexdigest()
    files = FileServer(tmp_path / "www")
    url = f"{files.endpoint}/100000_nets_ema.ckpt"
    entry = {"family": "stargan_v2", "description": "tiny AFHQ", "url": url, "converter": "stargan_v2",
             "options": {"domains": ["cat", "dog", "wild"]}, "license": "cc-by-nc-4.0", "datasets": ["afhq"]}
    index = tmp_path / "index.json"
    index.write_text(json.dumps({"stargan_v2.tiny_afhq": {**entry, "sha256": digest},
                                 "stargan_v2.tampered": {**entry, "sha256": "0" * 64},
                                 "stargan_v2.unhashed": {**entry, "sha256": None}}))
    hf_home = tmp_path / "hf"
    env = {**online(hf_home, "http://127.0.0.1:9"), "GANZOO_PRETRAINED_INDEX": str(index)}
    try:
        listed = run_cli("list", "--pretrained", env=env)
        assert listed.returncode == 0 and "stargan_v2.tiny_afhq" in listed.stdout, listed.stderr

        tampered = run_cli("pull", "stargan_v2.tampered", env=env)
        assert "sha256" in one_sentence_error(tampered)
        assert not [p for p in (hf_home / "ganzoo" / "stargan_v2.tampered").rglob("*") if p.is_file()]  # nothing kept

        pulled = run_cli("pull", "stargan_v2.tiny_afhq", env=env)
        assert pulled.returncode == 0, pulled.stderr
        folder = Path(pulled.stdout.strip().splitlines()[-1])
        assert folder == hf_home / "ganzoo" / "stargan_v2.tiny_afhq" / "model"
        card = (folder / "README.md").read_text()
        assert "license: cc-by-nc-4.0" in card and "Non-commercial" in card and "afhq" in card
        assert json.loads((folder / "source.json").read_text())["sha256"] == digest
        assert not (folder.parent / "download").exists()  # converted once; the raw release is not kept

        unhashed = run_cli("pull", "stargan_v2.unhashed", env=env)
        assert unhashed.returncode == 0 and "no sha256 is published" in unhashed.stderr, unhashed.stderr
    finally:
        files.stop()

    # The release server is gone and the Hub is off: the converted cache answers.
    env = {**offline(hf_home), "GANZOO_PRETRAINED_INDEX": str(index)}
    src = image(tmp_path / "in" / "a.png")
    translated = run_cli("translate", "stargan_v2.tiny_afhq", "-i", str(src), "-t", "wild", "-o", str(tmp_path / "out"), env=env)
    assert translated.returncode == 0, translated.stderr
    assert Image.open(tmp_path / "out" / "a.png").size == (16, 16)
    loaded = load_in_subprocess("stargan_v2.tiny_afhq", env)
    assert loaded.stdout.split() == ["stargan_v2", "cat,dog,wild", "16"], loaded.stderr


def test_packaged_index_names_every_family():
    from ganzoo.zoo import pretrained_index

    index = pretrained_index()
    for name in ("stargan.celeba_128", "stargan.celeba_256", "stargan_v2.celeba_hq", "stargan_v2.afhq",
                 "cyclegan.horse2zebra", "pix2pix.facades_label2photo"):
        assert name in index and index[name].family == name.split(".")[0]
    assert index["stargan_v2.afhq"].license == "cc-by-nc-4.0"
    assert "etwm810v25h42sn/100000_nets_ema.ckpt" in index["stargan_v2.afhq"].url


@pytest.mark.skipif(not os.environ.get("GANZOO_LIVE_HUB_REPO") or not os.environ.get("HF_TOKEN"),
                    reason="live Hub test: set HF_TOKEN and GANZOO_LIVE_HUB_REPO=org/name")
def test_live_hub_push_pull(tmp_path):
    model = tiny_model_folder(tmp_path / "model")
    repo = os.environ["GANZOO_LIVE_HUB_REPO"]
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "https://huggingface.co"}
    assert run_cli("push", str(model), repo, "--private", env=env).returncode == 0
    pulled = run_cli("pull", repo, env=env)
    assert pulled.returncode == 0, pulled.stderr
    snapshot = Path(pulled.stdout.strip().splitlines()[-1])
    assert (snapshot / "generator.safetensors").read_bytes() == (model / "generator.safetensors").read_bytes()


# --------------------------------------------------------------------------- Hub datasets

DATASET_SCRIPT = """
import random, sys
from ganzoo.recipe import load_recipe
from ganzoo.data_stream import build_dataset
recipe = load_recipe(sys.argv[1])
for split in ("train", "val"):
    ds = build_dataset(recipe, split)
    print(split, recipe.data.name, ",".join(ds.domains), len(ds), tuple(ds.load(0, random.Random(0)).shape))
"""


def test_recipe_data_hub_loads_through_the_mirror_then_offline(tmp_path, mirror):
    import yaml

    rng = np.random.default_rng(0)
    files = {}
    for split, count in (("train", 3), ("val", 1)):
        for domain in ("circle", "square"):
            for i in range(count):
                buffer = tmp_path / "png"
                Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(buffer, format="PNG")
                files[f"{split}/{domain}/{i}.png"] = buffer.read_bytes()
    # A dataset card, as Hub datasets have (olah answers a missing README.md as an unknown repo).
    files["README.md"] = "---\nlicense: mit\n---\nTiny shapes for ganzoo tests.\n"
    git_repo(mirror.mirrors / "datasets/org/shapes", files)
    recipe = tmp_path / "hub.yaml"
    recipe.write_text(yaml.safe_dump({**TINY_V2, "data": {"hub": "org/shapes", "image_size": 16, "batch_size": 2},
                                      "train": {**TINY_V2["train"], "steps": 2, "sample_every": 0}}))
    hf_home = tmp_path / "hf"

    def build(env):
        return subprocess.run([sys.executable, "-c", DATASET_SCRIPT, str(recipe)], capture_output=True, text=True,
                              timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1", **env})

    first = build(online(hf_home, mirror.endpoint))
    assert first.returncode == 0, first.stderr
    expected = ["train hub circle,square 6 (3, 16, 16)", "val hub circle,square 2 (3, 16, 16)"]
    assert first.stdout.splitlines() == expected
    mirror.stop()
    again = build(offline(hf_home))
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == expected
    trained = run_cli("run", str(recipe), "--out", str(tmp_path / "run"), "-q", env=offline(hf_home))
    assert trained.returncode == 0, trained.stderr
    assert (tmp_path / "run" / "latest.json").is_file()
