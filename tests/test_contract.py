"""The contract every model family keeps, checked for every registered model (built-in or third-party).

The models come from the registry at collection time (``get_registry().names("models")``, as timm parametrises
over ``list_models()``), and each trains from what its class declares: ``recipes["small"]`` with its ``tiny``
overrides (see tests/families.py). A new family is covered without editing this file, and a family that declares no
small recipe or no usable tiny overrides fails here with a sentence saying what to add.

For each model: the tiny recipe loads and builds small networks; two CPU steps through the real Trainer; save ->
load gives bit-identical weights and translations; 2 straight steps equal 1 step + Ctrl-C + resume bit for bit; one
``ganzoo bench`` step; no device->host readback in the train step; and a bad network argument (unknown name, wrong
type) is one RecipeError sentence naming the dotted key.
"""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import pytest
import torch

import ganzoo
from ganzoo.errors import GanzooError, RecipeError
from ganzoo.trainer import Trainer, build_dataset
from tests import families
from tests.host_sync import ONLY_AT_THE_END, Detector, assert_no_readback_in_the_step, train

MODELS = families.model_names()
#: A tiny recipe's networks together hold at most this many values (parameters and buffers): seconds per step.
TINY_VALUES = 2_000_000
#: and its images are at most this large
TINY_IMAGE_SIZE = 32
#: The contract's runs: two steps, logging every step, a checkpoint after each.
RUN = ["train.steps=2", "train.checkpoint_every=1", "train.log_every=1", "train.keep_checkpoints=2"]

parametrize = pytest.mark.parametrize("model", MODELS)


def tiny(model: str, *extra: str):
    """The model's tiny recipe; a family that does not declare one fails the contract with the reason."""
    try:
        return families.tiny_recipe(model, *extra)
    except families.NotDeclared as exc:
        pytest.fail(str(exc), pytrace=False)


def weights(model) -> dict[str, torch.Tensor]:
    return {f"{role}.{k}": v for group in (model.nets, model.ema_nets) for role, net in group.items()
            for k, v in net.state_dict().items()}


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def losses_by_step(run_dir: Path) -> dict[int, dict]:
    lines = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines() if l.strip()]
    return {r["step"]: {k: v for k, v in r.items() if k.startswith("loss/")} for r in lines}


def translations(model, image_size: int) -> list[torch.Tensor]:
    """The model's translation of fixed images into every target of its sheets, with seeded noise."""
    x = torch.rand(2, 3, image_size, image_size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return [model.translate_to(x, index, generator=torch.Generator().manual_seed(1)) for _, index in model.sheet_targets()]


_straight: dict[str, tuple[Trainer, object]] = {}


@pytest.fixture
def straight(model, tmp_path_factory):
    """The model trained 2 steps without interruption (one run per model, shared by the tests that read it)."""
    if model not in _straight:
        trainer = Trainer(tiny(model, *RUN), tmp_path_factory.mktemp(f"{model}-straight") / "run", quiet=True)
        _straight[model] = (trainer, trainer.run())
    return _straight[model]


# --------------------------------------------------------------------------- the declarations


def test_every_registered_model_is_collected():
    # The parametrisation is the registry itself: nothing is listed by hand, so nothing can be forgotten.
    assert MODELS == sorted(families.registry().names("models")) and len(MODELS) >= 4


def test_a_model_without_declarations_fails_the_contract_with_a_sentence(monkeypatch):
    from ganzoo.model import GANModel

    class Undeclared(GANModel):
        network_roles = {"generator": "stargan.generator"}

    class NoTiny(GANModel, recipes={"small": "stargan_shapes"}):
        pass

    class Unresolved(GANModel, recipes={"small": "no_such_recipe"}, tiny={"data.image_size": 16}):
        pass

    classes = {"undeclared": Undeclared, "no_tiny": NoTiny, "unresolved": Unresolved, "borrowed": type(
        "Borrowed", (GANModel,), {}, recipes={"small": "stargan_shapes"}, tiny={"data.image_size": 16})}
    monkeypatch.setattr(families, "model_class", classes.__getitem__)
    expected = {"undeclared": 'declares no recipes["small"]', "no_tiny": "declares no tiny overrides",
                "unresolved": '"no_such_recipe", which does not resolve', "borrowed": 'trains "stargan" instead'}
    for name, fragment in expected.items():
        with pytest.raises(pytest.fail.Exception) as info:
            tiny(name)
        assert fragment in str(info.value) and f'model "{name}"' in str(info.value) and "\n" not in str(info.value)


@parametrize
def test_declares_a_tiny_recipe_that_builds_small_networks(model):
    recipe = tiny(model)
    cls = families.model_class(model)
    assert recipe.data.image_size <= TINY_IMAGE_SIZE, f"{model}'s tiny recipe trains at {recipe.data.image_size} px"
    dataset = build_dataset(recipe, "train")
    built = cls(recipe, dataset.domains)
    built.build()
    assert set(built.nets) == set(cls.network_roles)
    assert set(built.ema_nets) <= set(built.nets)
    values = sum(t.numel() for net in (*built.nets.values(), *built.ema_nets.values())
                 for t in (*net.parameters(), *net.buffers()))
    assert values <= TINY_VALUES, f"{model}'s tiny recipe builds {values:,} values; shrink its tiny overrides"


# --------------------------------------------------------------------------- training, saving, resuming


@parametrize
def test_trains_two_steps_on_cpu(model, straight):
    trainer, result = straight
    assert result.step == 2 and not result.interrupted
    assert result.losses and all(math.isfinite(v) for v in result.losses.values()), result.losses
    assert sorted(losses_by_step(result.run_dir)) == [1, 2]
    assert sorted(p.name for p in (result.run_dir / "checkpoints").iterdir()) == ["step_00000001", "step_00000002"]
    assert all(torch.isfinite(t).all() for t in weights(trainer.model).values())


@parametrize
def test_save_then_load_gives_the_same_weights_and_translations(model, straight, tmp_path):
    trainer, result = straight
    loaded = ganzoo.load(str(result.run_dir))
    assert loaded.name == model and loaded.step == 2 and loaded.domains == trainer.model.domains
    assert_same_weights(weights(loaded), weights(trainer.model))  # the checkpoint is the model in memory
    again = ganzoo.load(str(loaded.save_pretrained(tmp_path / "saved")))
    assert again.step == 2
    assert_same_weights(weights(again), weights(loaded))
    size = trainer.recipe.data.image_size
    first, second = translations(loaded, size), translations(again, size)
    assert first and len(first) == len(second)
    for a, b in zip(first, second):
        assert a.shape == (2, 3, size, size) and torch.isfinite(a).all()
        assert torch.equal(a, b)


def ctrl_c_then_resume(model: str, run_dir: Path, monkeypatch, *extra: str):
    """The tiny recipe's run stopped by a real Ctrl-C during its first step, then resumed to the end: both results."""
    from ganzoo.trainer import StepContext

    cls = families.model_class(model)
    original = cls.train_step

    def interrupting(self, batch, step, ctx):
        if step == 0 and type(ctx) is StepContext:  # not the setup probe
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C: the step in hand finishes, then a checkpoint
        return original(self, batch, step, ctx)

    monkeypatch.setattr(cls, "train_step", interrupting)
    first = Trainer(tiny(model, *RUN, *extra), run_dir, quiet=True).run()
    monkeypatch.setattr(cls, "train_step", original)
    second = Trainer(tiny(model, *RUN, *extra), run_dir, resume=True, quiet=True).run()
    return first, second


@parametrize
def test_resume_after_ctrl_c_is_bit_identical_to_the_straight_run(model, straight, tmp_path, monkeypatch):
    _, done = straight
    first, second = ctrl_c_then_resume(model, tmp_path / "run", monkeypatch)
    assert first.interrupted and first.step == 1
    assert second.step == 2 and not second.interrupted
    assert losses_by_step(tmp_path / "run") == losses_by_step(done.run_dir)
    assert_same_weights(weights(ganzoo.load(str(tmp_path / "run"))), weights(ganzoo.load(str(done.run_dir))))


@parametrize
def test_a_channels_last_run_saves_plain_weights_and_resumes_bit_identically(model, tmp_path, monkeypatch):
    """train.channels_last (several shapes recipes set it: faster on a CPU there): weights and optimiser states in
    that layout are saved as ordinary tensors, load into a model that translates, and a resumed run continues exactly
    (the optimiser states come back in the parameters' layout)."""
    layout = "train.channels_last=true"
    straight = Trainer(tiny(model, *RUN, layout), tmp_path / "straight", quiet=True)
    straight.run()
    assert any(p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
               for net in straight.model.nets.values() for p in net.parameters()), "no parameter was in channels_last"
    assert all(p.is_contiguous(memory_format=torch.channels_last)  # the moving averages in the same layout
               for net in straight.model.ema_nets.values() for p in net.parameters() if p.dim() == 4)
    first, second = ctrl_c_then_resume(model, tmp_path / "run", monkeypatch, layout)
    assert first.step == 1 and second.step == 2
    assert losses_by_step(tmp_path / "run") == losses_by_step(tmp_path / "straight")
    loaded = ganzoo.load(str(tmp_path / "run"))
    assert_same_weights(weights(loaded), weights(ganzoo.load(str(tmp_path / "straight"))))
    assert all(torch.isfinite(t).all() for t in translations(loaded, straight.recipe.data.image_size))


# --------------------------------------------------------------------------- speed


@parametrize
def test_one_bench_step(model):
    """`ganzoo bench MODEL` measures the declared official recipe (else the small one) shrunk to the tiny networks,
    on synthetic stand-in data where the official data is missing."""
    from ganzoo.bench import run_bench
    from ganzoo.recipe import load_recipe
    from ganzoo.recipe_names import find_recipe

    tiny(model)  # fails with the reason when the family declares no tiny recipe
    size, sets = families.bench_settings(model)
    r = run_bench(model, img_size=size, batch=2, precision="fp32", device="cpu", steps=1, warmup=1, overrides=sets)
    declared = families.model_class(model).recipes
    assert r["model"] == model and r["device"] == "cpu" and r["batch"] == 2 and r["precision"] == "fp32"
    assert r["recipe"] == str(find_recipe(declared.get("official") or declared["small"])) and r["img_size"] == size
    # the recipe's own data where it is there, else the small recipe's (synthetic) data standing in
    try:
        build_dataset(load_recipe(r["recipe"], ["data.num_workers=0"]), "train")
        own = True
    except GanzooError:
        own = False
    assert ("synthetic" in r["data"]) != own, r["data"]
    for key in ("train_img_per_s", "infer_img_per_s", "train_flops_per_iter", "infer_flops_per_img", "achieved_tflops"):
        assert r[key] > 0, key
    assert r["peak_mem_mb"] >= 0 and r["peak_mem_kind"]
    assert r["mfu"] is None and "n/a" in r["peak_source"]
    # a training iteration does at least one generator forward per image (inference does exactly that)
    assert r["train_flops_per_iter"] > r["infer_flops_per_img"] * r["batch"]


@parametrize
def test_no_host_readback_in_the_train_step(model, tmp_path, monkeypatch):
    detector = Detector()
    recipe = tiny(model, "train.steps=2", *ONLY_AT_THE_END)
    _, steps = train(recipe, tmp_path / "run", detector, monkeypatch)
    assert [s for s, _ in steps] == [0, 1]
    assert_no_readback_in_the_step(detector)


# --------------------------------------------------------------------------- bad configs


@parametrize
def test_a_bad_network_argument_is_one_recipe_error_naming_the_key(model):
    from ganzoo.recipe import load_recipe

    tiny(model)
    cls = families.model_class(model)
    path, overrides = families.small_recipe(model), [*families.tiny_overrides(model), *families.TEST_SETTINGS]
    role = sorted(cls.network_roles)[0]
    with pytest.raises(RecipeError) as info:
        load_recipe(path, [*overrides, f"networks.{role}.no_such_argument=3"])
    message = str(info.value)
    assert f"networks.{role}.no_such_argument" in message and "\n" not in message, message

    sizes = families.network_size_keys(model)
    assert sizes, f"{model}'s tiny recipe sets no integer network argument (a width) to check"
    key = ".".join(sizes[0])
    with pytest.raises(RecipeError) as info:
        load_recipe(path, [*overrides, f"{key}=wide"])
    message = str(info.value)
    assert key in message and "\n" not in message, message
