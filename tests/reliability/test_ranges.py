"""Every value range-checked where the library would crash: Adam betas in [0, 1) (also where a family redeclares
them), a finite weight decay and learning rate, seeds from -2^63 to 2^64-1 (what torch.manual_seed takes) in run, translate, sample and eval."""

from __future__ import annotations

import pytest

from tests.reliability.helpers import BAD_INPUT, cli_error, save_png, tiny_doc, tiny_model_folder, tree, write_recipe

pytestmark = pytest.mark.reliability


RECIPE_VALUES = {
    "beta1 of 1.0": ({"optim": {"betas": [1.0, 0.99]}}, ("optim", "betas[0] is 1.0", "below 1")),
    "negative beta2": ({"optim": {"betas": [0.0, -0.5]}}, ("optim", "betas[1] is -0.5", "at least 0")),
    "beta2 above 1": ({"optim": {"betas": [0.5, 1.5]}}, ("betas[1] is 1.5",)),
    "infinite weight decay": ({"optim": {"weight_decay": float("inf")}}, ("weight_decay is inf", "finite")),
    "seed of 2^64": ({"train": {"seed": 2**64}}, ("train.seed", "18446744073709551615")),
    "seed below -2^63": ({"train": {"seed": -(2**63) - 1}}, ("train.seed", "-9223372036854775808")),
}


@BAD_INPUT
@pytest.mark.parametrize("name", RECIPE_VALUES)
def test_recipe_values_the_library_would_crash_on(name, tmp_path):
    change, culprit = RECIPE_VALUES[name]
    path = write_recipe(tmp_path / "recipe.yaml", tiny_doc(**change))
    message = cli_error("run", str(path), "--out", str(tmp_path / "run"), "-q")
    assert str(path) in message, message
    for needle in culprit:
        assert needle in message, (needle, message)
    assert tree(tmp_path) == ["recipe.yaml"]


def test_the_edges_of_the_ranges_are_accepted(tmp_path):
    from ganzoo.recipe import recipe_from_dict

    recipe = recipe_from_dict(tiny_doc(optim={"betas": [0.0, 0.999999], "weight_decay": 0.0}, train={"seed": 2**64 - 1}),
                              check_data=False)
    assert recipe_from_dict(tiny_doc(train={"seed": -(2**63)}), check_data=False).train.seed == -(2**63)
    assert recipe.train.seed == 2**64 - 1 and recipe.optim["betas"] == [0.0, 0.999999]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model_folder(tmp_path_factory.mktemp("ranges") / "model")


@BAD_INPUT
@pytest.mark.parametrize("command,seed", [("translate", str(2**64)), ("translate", str(-(2**63) - 1)), ("sample", str(2**70)),
                                          ("eval", str(2**64))])
def test_seed_options_are_range_checked(command, seed, model, tmp_path):
    image = save_png(tmp_path / "in" / "a.png", size=(16, 16))
    if command == "translate":
        args = ["translate", str(model), "-i", str(image), "-t", "red", "-o", str(tmp_path / "out")]
    elif command == "sample":
        args = ["sample", str(model), "-i", str(image), "-o", str(tmp_path / "out")]
    else:
        args = ["eval", str(model), "--data", str(tmp_path / "in"), "--metrics", "params"]
    message = cli_error(*args, "--seed", seed)
    assert f"--seed {seed} is out of range" in message and "-2^63 to 2^64-1" in message, message
    assert not (tmp_path / "out").exists()
