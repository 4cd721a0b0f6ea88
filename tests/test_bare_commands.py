"""Commands typed bare: `ganzoo compare A B` without --data, `ganzoo pull` without a name, and `ganzoo run --init-from`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from conftest import TINY_V2, run_cli
from families import TEST_SETTINGS, tiny_doc


def _tiny_folder(folder: Path, recipe_doc: dict, domains: list[str], seed: int) -> Path:
    from ganzoo.plugins import get_registry
    from ganzoo.recipe import recipe_from_dict

    torch.manual_seed(seed)
    recipe = recipe_from_dict(recipe_doc, source="tiny", check_data=False)
    model = get_registry().get("models", recipe.model)(recipe, domains)
    model.build()
    return model.save_pretrained(folder)


def test_compare_without_data_uses_the_builtin_set_written_once(tmp_path, monkeypatch):
    """No --data: the built-in shapes set is written to the cache once and both models are evaluated on it. The
    models are random tiny ones (--models): training on a compare's data is tested in test_metrics.py, and each
    training subprocess costs ~15 s on a shared 2-core machine."""
    from ganzoo.recipe import load_recipe

    docs = {name: load_recipe(tiny_doc_file(tmp_path, name), ["data.image_size=16"]).model_dump(mode="json")
            for name in ("stargan", "cyclegan")}
    domains = ["blue", "green", "red"]
    stargan = _tiny_folder(tmp_path / "sg", docs["stargan"], domains, seed=0)
    pairs = [("blue", "green"), ("blue", "red"), ("green", "red")]
    folders = [str(_tiny_folder(tmp_path / f"cg-{a}-{b}", docs["cyclegan"], [a, b], seed=i)) for i, (a, b) in enumerate(pairs)]
    env = {"GANZOO_CACHE": str(tmp_path / "cache")}
    args = ("compare", "stargan", "cyclegan", "--steps", "2", "--img-size", "16", "--models", f"stargan={stargan}",
            "--models", "cyclegan=" + ",".join(folders), "--metrics", "params", "-q")

    first = run_cli(*args, "--out", str(tmp_path / "cmp"), env=env)
    assert first.returncode == 0, first.stderr
    line = first.stderr.splitlines()[0]
    assert line.startswith("no --data given") and "built-in shapes set" in line and "written now" in line, line
    data = tmp_path / "cache" / "shapes-16px-200x50-seed0"
    assert sorted(p.name for p in (data / "train").iterdir()) == ["blue", "green", "red"]
    assert len(list((data / "val" / "red").glob("*.png"))) == 50
    report = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert report["data"] == str(data) and report["domains"] == ["blue", "green", "red"]
    assert report["models"]["stargan"]["generators"] == 1 and report["models"]["cyclegan"]["generators"] == 6
    for name in ("compare.md", "compare.png"):
        assert (tmp_path / "cmp" / name).is_file()
    assert "generators for k domains" in first.stdout

    # the next compare finds the set in the cache (its first line then says "written by an earlier compare")
    from ganzoo.compare import builtin_shapes

    stamp = (data / "train" / "red" / "00000.png").stat().st_mtime_ns
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    assert builtin_shapes(16) == (data, False)
    assert (data / "train" / "red" / "00000.png").stat().st_mtime_ns == stamp


def tiny_doc_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(tiny_doc(name)))
    return path


def test_bare_pull_lists_the_zoo_and_how_to_pull():
    result = run_cli("pull")
    assert result.returncode == 0, result.stderr
    assert "stargan_v2.afhq" in result.stdout and "cyclegan.horse2zebra" in result.stdout
    assert "ganzoo pull NAME" in result.stdout and "--full" in result.stdout and "ORG/REPO[@REVISION]" in result.stdout


def _tiny_v2(tmp_path: Path, **train) -> Path:
    doc = json.loads(json.dumps(TINY_V2))
    doc["train"].update(train)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_init_from_starts_a_new_run_from_a_model_folders_weights(tmp_path):
    from ganzoo.checkpoint import load_tensors
    from ganzoo.errors import CheckpointError
    from ganzoo.recipe import load_recipe
    from ganzoo.trainer import Trainer

    source = _tiny_folder(tmp_path / "source", TINY_V2, ["red", "green", "blue"], seed=7)
    recipe = load_recipe(_tiny_v2(tmp_path, steps=1, checkpoint_every=1, sample_every=0), TEST_SETTINGS)
    trainer = Trainer(recipe, tmp_path / "in-process", init_from=source, quiet=True)
    trainer._setup()
    for role, net in trainer.model.nets.items():
        saved = load_tensors(source / f"{role}.safetensors")
        assert all(torch.equal(saved[k], v) for k, v in net.state_dict().items()), role
    for role, net in trainer.model.ema_nets.items():
        saved = load_tensors(source / f"{role}.ema.safetensors")
        assert all(torch.equal(saved[k], v) for k, v in net.state_dict().items()), role
    # a folder of other domains, or of another model, is refused with one sentence
    from ganzoo.checkpoint import init_weights_from

    other = _tiny_folder(tmp_path / "other", TINY_V2, ["cat", "dog"], seed=7)
    with pytest.raises(CheckpointError, match="trained on the domains cat, dog"):
        init_weights_from(trainer.model, other)

    # the CLI (in-process): a weights-only folder (no discriminator) starts a run at step 0, its discriminator fresh
    from typer.testing import CliRunner

    from ganzoo.cli import app

    (source / "discriminator.safetensors").unlink()
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(_tiny_v2(tmp_path, steps=2, checkpoint_every=2, sample_every=0)),
                                      "--init-from", str(source), "--out", str(run_dir), "-q", "--set", "train.device=cpu"])
    assert result.exit_code == 0, result.output
    assert "initialised from" in result.output and "discriminator not in it" in result.output
    assert json.loads((run_dir / "init_from.json").read_text()) == {"init_from": str(source)}
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines() if '"step"' in line]
    assert steps[0] == 1  # a new run: its own step count, not the source's
    # a run killed before its first checkpoint starts over on --resume, from the same weights again
    killed = tmp_path / "killed"
    killed.mkdir()
    shutil.copy(run_dir / "init_from.json", killed / "init_from.json")
    again = Trainer(recipe, killed, resume=True, quiet=True)
    again._setup()
    saved = load_tensors(source / "generator.safetensors")
    assert all(torch.equal(saved[k], v) for k, v in again.model.nets["generator"].state_dict().items())
    both = CliRunner().invoke(app, ["run", "--resume", str(run_dir), "--init-from", str(source)])
    assert both.exit_code == 2 and "drop one of them" in both.output and "Traceback" not in both.output
