"""Bounded work for any input: alias bombs, deep nesting, huge sizes and host memory exhaustion end in one sentence
within seconds, never a hang, a RecursionError or gigabytes allocated.

Recipes (each file of a ``base:`` chain, each ``--set`` value) nest at most 32 levels and hold at most 100,000
values once YAML aliases are expanded; our JSON files (config.json, latest.json, state.json) at most 32 levels;
a model folder's networks together at most 2^31 values, EMA copies included; one activation of one image at most 2^30.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from ganzoo.errors import CheckpointError, GanzooError
from tests.reliability.helpers import BAD_INPUT, assert_one_sentence, cli_error, save_png, tiny_doc, tiny_model_folder, tree, write_recipe

pytestmark = pytest.mark.reliability

#: Seconds any of these may take (they take well under one; a hang or an expansion would take minutes).
BOUND_S = 10.0


def _laughs(levels: int = 9, prefix: str = "") -> str:
    """The "billion laughs": 9 aliases of 9 aliases ... (9^9 = 387 M values in 10 lines)."""
    lines = [f"{prefix}l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"{prefix}l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model_folder(tmp_path_factory.mktemp("bounds") / "model")


def timed_cli_error(*args) -> str:
    start = time.perf_counter()
    message = cli_error(*args)
    assert time.perf_counter() - start < BOUND_S, message
    return message


def timed_load_error(folder: Path) -> str:
    """``ganzoo.load(folder)``'s refusal: one sentence, within the bound."""
    import ganzoo

    start = time.perf_counter()
    with pytest.raises(CheckpointError) as info:
        ganzoo.load(str(folder))
    assert time.perf_counter() - start < BOUND_S
    message = str(info.value)
    assert_one_sentence(message)
    return message


RECIPES = {
    "alias bomb in a recipe": ("losses:\n" + _laughs(prefix="  "), "YAML aliases"),
    "recipe nested 5000 deep": ("losses: " + "[" * 5000 + "]" * 5000, "nested more than 32 levels"),
    "aliases nesting past the limit": ("a: &a [[[[[[[[[[1]]]]]]]]]]\nb: &b [[[[[[[[[[*a]]]]]]]]]]\nc: &c [[[[[[[[[[*b]]]]]]]]]]\n"
                                       "losses: {x: [[[[[[[[[[*c]]]]]]]]]]}", "nested more than 32 levels"),
}


@BAD_INPUT
@pytest.mark.parametrize("name", RECIPES)
def test_recipe_documents_are_bounded(name, tmp_path):
    text, culprit = RECIPES[name]
    path = write_recipe(tmp_path / "recipe.yaml", "model: stargan_v2\n" + text + "\n")
    message = timed_cli_error("run", str(path), "--out", str(tmp_path / "run"), "-q")
    assert str(path) in message and culprit in message, message
    assert tree(tmp_path) == ["recipe.yaml"]


@BAD_INPUT
def test_an_alias_bomb_in_a_base_file_is_bounded(tmp_path):
    write_recipe(tmp_path / "base.yaml", "model: stargan_v2\nlosses:\n" + _laughs(prefix="  ") + "\n")
    path = write_recipe(tmp_path / "recipe.yaml", {"base": "base.yaml", **tiny_doc()})
    message = timed_cli_error("config", "show", str(path))
    assert "base.yaml" in message and "YAML aliases" in message, message


SETS = {
    "--set value alias bomb": ("losses.x={" + _laughs().replace("\n", ", ") + "}", "YAML aliases"),
    "--set value nested 5000 deep": ("losses.x=" + "[" * 5000 + "]" * 5000, "nested more than 32 levels"),
    "--set key 5000 levels deep": ("train." + ".".join(["x"] * 5000) + "=1", "more than 32 levels deep"),
}


@BAD_INPUT
@pytest.mark.parametrize("name", SETS)
def test_set_overrides_are_bounded(name, tmp_path):
    override, culprit = SETS[name]
    path = write_recipe(tmp_path / "recipe.yaml", tiny_doc())
    message = timed_cli_error("config", "show", str(path), "--set", override)
    assert "--set" in message and culprit in message, message


def _deep_json(depth: int) -> str:
    return '{"format": "ganzoo-model", "model": ' + "[" * depth + "]" * depth + "}"


@BAD_INPUT
@pytest.mark.parametrize("depth", [100_000, 40], ids=["config.json 100000 deep", "config.json 40 deep"])
def test_config_json_nesting_is_bounded(depth, model, tmp_path):
    folder = Path(shutil.copytree(model, tmp_path / "model"))
    (folder / "config.json").write_text(_deep_json(depth))
    save_png(tmp_path / "a.png", size=(16, 16))
    message = timed_cli_error("translate", str(folder), "-i", str(tmp_path / "a.png"), "-t", "red", "-o", str(tmp_path / "out"))
    assert str(folder / "config.json") in message and "nested more than 32 levels" in message, message
    assert not (tmp_path / "out").exists()


@BAD_INPUT
def test_latest_json_nesting_is_bounded(model, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(model, run / "checkpoints" / "step_00000001")
    (run / "latest.json").write_text('{"step": 1, "path": ' + "[" * 100_000 + "]" * 100_000 + "}")
    (run / "checkpoints" / "step_00000001" / "config.json").unlink()  # nothing else to fall back on
    from ganzoo.checkpoint import resolve_model_folder

    start = time.perf_counter()
    with pytest.raises(GanzooError) as info:
        resolve_model_folder(run)
    assert time.perf_counter() - start < BOUND_S
    assert_one_sentence(str(info.value))


@BAD_INPUT
def test_state_json_nesting_is_bounded(model, tmp_path):
    from ganzoo.checkpoint import read_train_state

    folder = Path(shutil.copytree(model, tmp_path / "step"))
    (folder / "train_state").mkdir()
    (folder / "train_state" / "state.json").write_text('{"step": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(CheckpointError) as info:
        read_train_state(folder)
    message = str(info.value)
    assert_one_sentence(message)
    assert "state.json" in message and "nested more than 32 levels" in message


@BAD_INPUT
def test_all_networks_together_are_bounded(model, tmp_path):
    # Each network under the 2^30 per-network limit, together (with EMA copies) over 4 G values: 16 GB in fp32.
    folder = Path(shutil.copytree(model, tmp_path / "model"))
    config = json.loads((folder / "config.json").read_text())
    for role in ("generator", "style_encoder", "discriminator"):
        config["networks"][role]["kwargs"].update(dim_in=1536, max_conv_dim=6144)
    (folder / "config.json").write_text(json.dumps(config))
    message = timed_load_error(folder)
    assert "config.json" in message and "together" in message and "2,147,483,648" in message, message


@BAD_INPUT
@pytest.mark.parametrize("size", ["100000", "4097"])
def test_make_shapes_image_size_is_bounded(size, tmp_path):
    message = timed_cli_error("make-shapes", str(tmp_path / "shapes"), "--img-size", size, "--train", "1", "--val", "1")
    assert f"--img-size {size}" in message and "4096" in message, message
    assert not (tmp_path / "shapes").exists()


@BAD_INPUT
def test_host_memory_exhaustion_is_one_sentence(model, tmp_path, monkeypatch):
    # What PIL or numpy raise when the host cannot give them the memory (the decoder asks for it per image).
    import ganzoo.data.images as images

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(images, "read_image", out_of_memory)
    save_png(tmp_path / "a.png", size=(16, 16))
    message = timed_cli_error("translate", str(model), "-i", str(tmp_path / "a.png"), "-t", "red", "-o", str(tmp_path / "out"))
    assert "host memory" in message and "ganzoo translate" in message, message


@BAD_INPUT
def test_image_size_times_width_is_bounded_before_any_activation(tmp_path):
    # Weights that load (5 M values) but a 4096 px image through 128 channels: 2^31 values in one activation, 8 GiB
    # in fp32 per image, found on the meta device when the folder is loaded, not at the first translation.
    from ganzoo.plugins import get_registry
    from ganzoo.recipe import deep_merge, recipe_from_dict
    from tests.conftest import TINY_V2

    doc = deep_merge(TINY_V2, {"data": {"image_size": 4096}, "networks": {"generator": {"dim_in": 128, "max_conv_dim": 128}}})
    model = get_registry().get("models", "stargan_v2")(recipe_from_dict(doc, source="wide", check_data=False), ["red", "blue"])
    model.build()
    folder = model.save_pretrained(tmp_path / "wide")
    message = timed_load_error(folder)
    assert "4096x4096" in message and "2,147,483,648 values in its generator" in message, message
