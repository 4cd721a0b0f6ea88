"""Recipes: inheritance, overrides, and one clear sentence for every mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ganzoo.errors import RecipeError
from ganzoo.recipe import load_recipe


def write(path: Path, doc) -> Path:
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


def test_model_defaults_base_and_overrides_resolve_in_order(tmp_path, tiny_recipe):
    base = tiny_recipe()
    child = write(tmp_path / "child.yaml", {"base": base.name, "train": {"steps": 9}, "losses": {"cyc": 3.0}})
    recipe = load_recipe(child, ["train.seed=5", "data.domains=[red,blue]"])
    assert recipe.train.steps == 9  # child over base
    assert recipe.train.seed == 5  # --set over child
    assert recipe.data.domains == ["red", "blue"]
    assert recipe.losses["cyc"] == 3.0
    assert recipe.networks["generator"]["dim_in"] == 8  # from base
    assert recipe.optim["mapping_lr"] == pytest.approx(1e-6)  # model default
    # model defaults fill what nobody set
    assert recipe.networks["generator"]["w_hpf"] == 0


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"train": {"stepz": 3}}, 'train.stepz: unknown key. Did you mean "steps"?'),
        ({"train": {"steps": "many"}}, "train.steps"),
        ({"train": {"steps": 0}}, "train.steps"),
        ({"data": {"batch_size": 0}}, "data.batch_size"),
        ({"optim": {"lr": -1.0}}, "optim.lr"),
        ({"losses": {"cycle": 1.0}}, 'losses.cycle: unknown key. Did you mean "cyc"?'),
        ({"networks": {"generator": {"dim_inn": 4}}}, 'networks.generator.dim_inn: unknown key. Did you mean "dim_in"?'),
        ({"networks": {"generatr": {}}}, 'networks.generatr: unknown network role'),
        ({"data": {"name": "shapez"}}, 'Did you mean "shapes"?'),
        ({"data": {"num_trian": 3}}, 'data.num_trian: unknown key. Did you mean "num_train"?'),
        ({"model": "stargan_v3"}, 'Did you mean "stargan_v2"?'),
        ({"trian": {}}, 'unknown top-level key "trian". Did you mean "train"?'),
    ],
)
def test_bad_recipes_name_the_file_and_dotted_key(tiny_recipe, change, needle):
    path = tiny_recipe(change)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    message = str(info.value)
    assert needle in message
    assert str(path) in message
    assert "\n" not in message


def test_yaml_syntax_error_names_line(tmp_path):
    path = write(tmp_path / "bad.yaml", "model: stargan_v2\ntrain: {steps: 3\n")
    with pytest.raises(RecipeError, match=r"bad.yaml line \d+, column \d+: YAML syntax error"):
        load_recipe(path)


def test_missing_file_and_missing_base(tmp_path):
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "nope.yaml")
    child = write(tmp_path / "child.yaml", {"base": "gone.yaml", "model": "stargan_v2"})
    with pytest.raises(RecipeError, match=r"gone.yaml does not exist \(named by base: in .*child.yaml\)"):
        load_recipe(child)


def test_circular_base(tmp_path):
    write(tmp_path / "a.yaml", {"base": "b.yaml", "model": "stargan_v2"})
    write(tmp_path / "b.yaml", {"base": "a.yaml"})
    with pytest.raises(RecipeError, match="cycle"):
        load_recipe(tmp_path / "a.yaml")


@pytest.mark.parametrize("override, needle", [
    ("train.steps", "dotted.key=value"),
    ("trainn.steps=3", 'Did you mean "train"?'),
    ("train.steps.x=3", "train.steps is a value, not a section"),
])
def test_bad_overrides(tiny_recipe, override, needle):
    with pytest.raises(RecipeError, match=needle.replace("(", r"\(").replace("?", r"\?")):
        load_recipe(tiny_recipe(), [override])


def test_config_show_cli_prints_resolved_recipe_and_exits_2_on_errors(tiny_recipe, cli):
    good = cli("config", "show", str(tiny_recipe()), "--set", "train.steps=42")
    assert good.returncode == 0, good.stderr
    shown = yaml.safe_load(good.stdout)
    assert shown["train"]["steps"] == 42 and shown["model"] == "stargan_v2"
    bad = cli("config", "show", str(tiny_recipe({"train": {"ema": 2.0}})))
    assert bad.returncode == 2
    assert "train.ema" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_a_network_that_cannot_be_built_is_one_sentence(tiny_recipe, cli, tmp_path):
    # StarGAN v2 networks need a power-of-two image size of at least 16
    r = cli("run", str(tiny_recipe({"data": {"image_size": 24}})), "--out", str(tmp_path / "run"))
    assert r.returncode == 2, r.stderr
    assert "networks.generator: stargan_v2.generator cannot be built" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()
