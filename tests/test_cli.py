"""The CLI end to end, in subprocesses, as users run it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny StarGAN v2 trained for 2 steps through `ganzoo run` (shared by the tests below)."""
    from tests.conftest import TINY_V2, run_cli
    import yaml

    tmp = tmp_path_factory.mktemp("cli")
    recipe = tmp / "tiny.yaml"
    doc = {**TINY_V2, "train": {**TINY_V2["train"], "steps": 2, "sample_every": 0}}
    recipe.write_text(yaml.safe_dump(doc))
    result = run_cli("run", str(recipe), "--out", str(tmp / "run"), "-q")
    assert result.returncode == 0, result.stderr
    assert "done: step 2" in result.stderr
    return tmp / "run"


def write_images(folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / "b.jpg")
    Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(folder / "gray.png")
    (folder / "broken.png").write_bytes(b"not an image at all")
    return ["a.png", "b.jpg", "gray.png"]


def test_translate_a_folder_keeps_file_names_and_skips_unreadable(trained_run, tmp_path, cli):
    names = write_images(tmp_path / "in")
    result = cli("translate", str(trained_run), "--input", str(tmp_path / "in"), "--target", "blue", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(names)
    assert Image.open(tmp_path / "out" / "a.png").size == (16, 16)
    assert "skipped 1 unreadable" in result.stderr and "broken.png" in result.stderr


def test_translate_numbered_variants_are_deterministic(trained_run, tmp_path, cli):
    write_images(tmp_path / "in")
    for out in ("o1", "o2"):
        r = cli("translate", str(trained_run), "-i", str(tmp_path / "in" / "a.png"), "-t", "green", "--num", "3",
                "--seed", "4", "-o", str(tmp_path / out))
        assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "o1").iterdir()) == ["a_0.png", "a_1.png", "a_2.png"]
    for name in ("a_0.png", "a_2.png"):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "o1" / name)), np.asarray(Image.open(tmp_path / "o2" / name)))
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "o1" / "a_0.png")), np.asarray(Image.open(tmp_path / "o1" / "a_1.png")))


def test_translate_with_a_reference_image(trained_run, tmp_path, cli):
    write_images(tmp_path / "in")
    r = cli("translate", str(trained_run), "-i", str(tmp_path / "in" / "a.png"), "-t", "red",
            "--reference", str(tmp_path / "in" / "b.jpg"), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "a.png").is_file()


@pytest.mark.parametrize("args, needle", [
    (["--target", "blu"], 'Target domain "blu" is not one of this model\'s domains (red, green, blue). Did you mean "blue"?'),
    (["--target", "red", "--input", "/nonexistent/x.png"], "does not exist"),
])
def test_translate_errors_are_one_sentence(trained_run, tmp_path, cli, args, needle):
    write_images(tmp_path / "in")
    base = ["translate", str(trained_run), "--out", str(tmp_path / "out")]
    if "--input" not in args:
        base += ["--input", str(tmp_path / "in")]
    r = cli(*base, *args)
    assert r.returncode == 2
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_translate_refuses_a_folder_that_is_not_a_model(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    r = cli("translate", str(tmp_path / "empty"), "-i", str(tmp_path / "empty"), "-t", "red", "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "no config.json" in r.stderr and "Traceback" not in r.stderr


def test_missing_official_data_says_where_to_get_it_and_writes_nothing(tmp_path, cli):
    r = cli("run", str(ROOT / "recipes" / "stargan_v2_afhq.yaml"), "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert r.returncode == 2
    assert "data/afhq/train" in r.stderr and "download.sh afhq-dataset" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()


def test_info_and_list(cli):
    r = cli("info", "stargan_v2")
    assert r.returncode == 0 and "mapping_lr" not in r.stderr and "default recipe" in r.stdout
    r = cli("info", "stargan_v2.generatr")
    assert r.returncode == 2 and 'Did you mean "stargan_v2.generator"?' in r.stderr
    r = cli("list", "modelz")
    assert r.returncode == 2 and 'Did you mean "models"?' in r.stderr


def test_every_recipe_in_the_repo_validates():
    # In-process (typer's runner): the same command code, without one interpreter start per recipe.
    from typer.testing import CliRunner

    from ganzoo.cli import app

    recipes = sorted((ROOT / "recipes").glob("*.yaml"))
    assert len(recipes) >= 10
    for recipe in recipes:
        r = CliRunner().invoke(app, ["config", "show", str(recipe)])
        assert r.exit_code == 0, f"{recipe.name}: {r.output}"
        assert "model:" in r.output
