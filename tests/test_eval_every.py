"""eval.every: metrics on the val split while training, rows in metrics.jsonl, and the best/ model folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import ganzoo
from ganzoo.errors import RecipeError
from ganzoo.recipe import load_recipe
from ganzoo.trainer import Trainer

# content needs no weights; StarGAN v2 has two modes (latent, reference), so "content" is their mean.
EVAL = {"every": 2, "metrics": ["content"], "best": "content", "best_mode": "max", "outputs_per_input": 2}
RUN = {"train": {"sample_every": 0}, "eval": EVAL}


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def eval_rows(run_dir: Path) -> dict[int, dict]:
    found = [r for r in rows(run_dir) if "eval" in r]
    steps = [r["step"] for r in found]
    assert len(steps) == len(set(steps)), f"an eval step was logged twice: {steps}"
    return {r["step"]: r["eval"] for r in found}


def weights(model) -> dict[str, torch.Tensor]:
    return {f"{role}.{k}": v for group in (model.nets, model.ema_nets) for role, net in group.items()
            for k, v in net.state_dict().items()}


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """One 6-step run with eval every 2 steps (module-wide: the tests below compare with it)."""
    from tests.conftest import TINY_V2
    from ganzoo.recipe import deep_merge, recipe_from_dict

    run = tmp_path_factory.mktemp("eval") / "run"
    recipe = recipe_from_dict(deep_merge(TINY_V2, RUN), source="tiny.yaml")
    Trainer(recipe, run, quiet=True).run()
    return run


def test_eval_rows_land_at_every_nth_step_and_best_is_the_best_of_them(straight):
    evals = eval_rows(straight)
    assert sorted(evals) == [2, 4, 6]
    for values in evals.values():
        assert set(values) == {"content/latent", "content/reference"}
        assert all(isinstance(v, float) for v in values.values())
    mean = {step: (v["content/latent"] + v["content/reference"]) / 2 for step, v in evals.items()}
    best_step = max(mean, key=mean.get)
    info = json.loads((straight / "best" / "best.json").read_text())
    assert info["step"] == best_step and info["metric"] == "content" and info["mode"] == "max"
    assert info["value"] == pytest.approx(mean[best_step])
    model = ganzoo.load(str(straight / "best"))
    assert model.step == best_step
    # nothing but the model folder and its record: no image files unless samples are asked for
    assert not list(straight.rglob("*.png"))


def test_best_folder_holds_the_weights_it_was_measured_on(straight):
    from ganzoo.data_stream import build_dataset
    from ganzoo.metrics.evaluate import EvalData, EvalOptions, Translator, evaluate

    model = ganzoo.load(str(straight / "best"))
    info = json.loads((straight / "best" / "best.json").read_text())
    recipe = model.recipe
    data = EvalData.from_datasets(build_dataset(recipe, "val"), build_dataset(recipe, "train"), "shapes",
                                  seed=recipe.train.seed)
    again = evaluate(Translator([model]), data, ["content"], EvalOptions(outputs_per_input=2, seed=recipe.train.seed,
                                                                         device="cpu"))
    assert again.headline() == pytest.approx(info["eval"])


def test_eval_does_not_change_training(straight, tiny_recipe, tmp_path):
    plain = tmp_path / "plain"
    Trainer(load_recipe(tiny_recipe({"train": {"sample_every": 0}})), plain, quiet=True).run()
    assert not eval_rows(plain) and not (plain / "best").exists()
    a, b = weights(ganzoo.load(str(straight))), weights(ganzoo.load(str(plain)))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    losses = [{k: v for k, v in r.items() if k.startswith("loss/")} for r in rows(straight) if "eval" not in r]
    assert losses == [{k: v for k, v in r.items() if k.startswith("loss/")} for r in rows(plain)]


class Killed(BaseException):
    """Stands in for SIGKILL in-process: nothing catches it, nothing after it runs."""


def test_a_run_killed_after_an_eval_resumes_without_duplicate_rows(straight, tiny_recipe, tmp_path, monkeypatch):
    path = tiny_recipe(RUN)
    original = Trainer.save_checkpoint

    def die_at_6(self):
        if self.step == 6:  # after step 6's eval row and best/, before its checkpoint
            raise Killed
        return original(self)

    monkeypatch.setattr(Trainer, "save_checkpoint", die_at_6)
    run = tmp_path / "run"
    with pytest.raises(Killed):
        Trainer(load_recipe(path), run, quiet=True).run()
    monkeypatch.undo()
    assert sorted(eval_rows(run)) == [2, 4, 6]
    Trainer(load_recipe(run / "recipe.yaml"), run, resume=True, quiet=True).run()  # from step 3: evaluates 4 and 6 again
    assert eval_rows(run) == eval_rows(straight)
    assert json.loads((run / "best" / "best.json").read_text()) == json.loads((straight / "best" / "best.json").read_text())
    a, b = weights(ganzoo.load(str(straight))), weights(ganzoo.load(str(run)))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("changes, message", [
    ({"metrics": ["contnet"]}, r'eval\.metrics: unknown metric "contnet"\. Did you mean "content"\?'),
    ({"metrics": ["content"], "best": "fid"}, r'eval\.best: "fid" is not among the metrics evaluated \(content\)'),
    ({"every": 0, "best": "content"}, r"eval\.best is content but eval\.every is 0"),
    ({"best_mode": "lowest"}, r"eval\.best_mode: Input should be 'min' or 'max'"),
])
def test_bad_eval_config_is_one_sentence(tiny_recipe, changes, message):
    with pytest.raises(RecipeError, match=message) as info:
        load_recipe(tiny_recipe({"eval": {**EVAL, **changes}}))
    assert "\n" not in str(info.value)


def test_named_metric_that_cannot_run_stops_before_the_run_directory(tiny_recipe, tmp_path, monkeypatch):
    monkeypatch.setenv("GANZOO_FID_WEIGHTS", str(tmp_path / "missing.pth"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    recipe = load_recipe(tiny_recipe({"eval": {"every": 2, "metrics": ["fid"]}}))
    with pytest.raises(RecipeError, match=r"eval\.metrics: fid cannot run here \(") as info:
        Trainer(recipe, tmp_path / "run", quiet=True).run()
    assert "\n" not in str(info.value) and not (tmp_path / "run").exists()


def test_eval_without_a_val_split_stops_before_the_run_directory(tmp_path):
    import shutil

    from ganzoo.data.shapes import export_folder
    from ganzoo.recipe import deep_merge, recipe_from_dict
    from tests.conftest import TINY_V2

    root = tmp_path / "data"
    export_folder(root, image_size=16, num_train=4, num_val=1)
    shutil.rmtree(root / "val")
    doc = deep_merge(TINY_V2, {"data": {"name": "imagefolder", "root": str(root)}, "eval": {"every": 2}})
    for key in ("num_train", "num_val"):
        doc["data"].pop(key)
    with pytest.raises(RecipeError, match=r"eval\.every is 2 but the data has no val split .*; add one .* or set "
                                          r"eval\.every=0\.$"):
        Trainer(recipe_from_dict(doc, source="tiny.yaml"), tmp_path / "run", quiet=True).run()
    assert not (tmp_path / "run").exists()
