"""StarGAN v1: official layout, network semantics, the train step, datasets, conversion and the CLI.

The official layout (keys, order, shapes, parameter counts of yunjey/stargan @ 94dd002e) is read
from tests/data/stargan_v1_official_keys.json, so these tests run without the official code.
Forward passes use narrow widths and tiny images, except the conversion round trip at 128 px.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from typer.testing import CliRunner

import ganzoo
from ganzoo.cli import app
from ganzoo.errors import CheckpointError, DataError, GanzooError
from tests.conftest import CodeRunningPickle
from ganzoo.recipe import recipe_from_dict
from ganzoo_stargan.convert import discriminator_config, generator_config, load_state_dict
from ganzoo_stargan.data import CELEBA_ATTRIBUTES, RAFD_EXPRESSIONS, CelebADataset, CelebARaFDDataset, RaFDDataset
from ganzoo_stargan.model import StarGAN, gradient_penalty, parse_attribute_assignments
from ganzoo_stargan.networks import Discriminator, Generator, InstanceNorm

OFFICIAL = json.loads((Path(__file__).parent / "data" / "stargan_v1_official_keys.json").read_text())["configs"]
REPO = Path(__file__).resolve().parents[1]
ATTRS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]


def official_networks(config: dict) -> dict[str, torch.nn.Module]:
    return {
        "generator": Generator(config["g_conv_dim"], config["c_dim"], config["g_repeat_num"]),
        "discriminator": Discriminator(config["image_size"], config["d_conv_dim"], config["c_dim"], config["d_repeat_num"]),
    }


def official_random_state(layout: str, role: str, seed: int) -> dict[str, torch.Tensor]:
    """A state dict in the official layout with random values (running stats and counters included)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in OFFICIAL[layout]["networks"][role]["state_dict"]:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(12345, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.05
    return state


def tiny_model(label_kind_dataset: str = "shapes", domains=("red", "green", "blue"), n_critic: int = 2) -> StarGAN:
    recipe = recipe_from_dict(
        {
            "model": "stargan",
            "networks": {"generator": {"conv_dim": 8, "repeat_num": 1}, "discriminator": {"conv_dim": 8, "repeat_num": 3}},
            "data": {"name": label_kind_dataset, "image_size": 16, "domains": list(domains)},
            "optim": {"n_critic": n_critic},
        },
        check_data=False,
    )
    model = StarGAN(recipe, list(domains))
    model.build()
    return model


# --------------------------------------------------------------------------------------------------
# Official layout
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["celeba_128", "celeba_256"])
def test_official_state_dict_layout(layout):
    official = OFFICIAL[layout]
    with torch.device("meta"):  # layout only, no 45M-parameter init
        nets = official_networks(official["config"])
    for role, net in nets.items():
        expected = official["networks"][role]
        assert [[k, list(v.shape)] for k, v in net.state_dict().items()] == expected["state_dict"], role
        assert sum(p.numel() for p in net.parameters()) == expected["n_params"], role
        assert [k for k, _ in net.named_buffers()] == expected["buffers"], role


def test_official_parameter_totals():
    # OFFICIAL.md 1.1, literally, so the data file cannot drift.
    with torch.device("meta"):
        counts = {name: {r: sum(p.numel() for p in n.parameters()) for r, n in official_networks(OFFICIAL[name]["config"]).items()}
                  for name in OFFICIAL}
    assert counts["celeba_128"] == {"generator": 8_430_528, "discriminator": 44_762_048}
    assert counts["celeba_256"] == {"generator": 8_430_528, "discriminator": 44_884_928}


def test_shapes_are_inferred_back_from_official_layouts():
    for layout, official in OFFICIAL.items():
        c = official["config"]
        g = {k: torch.empty(s) for k, s in official["networks"]["generator"]["state_dict"]}
        d = {k: torch.empty(s) for k, s in official["networks"]["discriminator"]["state_dict"]}
        assert generator_config(g) == {"conv_dim": c["g_conv_dim"], "c_dim": c["c_dim"], "repeat_num": c["g_repeat_num"]}
        assert discriminator_config(d) == {"image_size": c["image_size"], "conv_dim": c["d_conv_dim"],
                                           "c_dim": c["c_dim"], "repeat_num": c["d_repeat_num"]}


# --------------------------------------------------------------------------------------------------
# Network semantics
# --------------------------------------------------------------------------------------------------


def test_instance_norm_uses_per_image_statistics_in_every_mode():
    torch.manual_seed(0)
    norm = InstanceNorm(4)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
        norm.running_mean.fill_(3.0)  # would change the output if eval mode used them
        norm.running_var.fill_(9.0)
    x = torch.randn(2, 4, 5, 5) * 2 + 1
    mean, var = x.mean((2, 3), keepdim=True), x.var((2, 3), keepdim=True, unbiased=False)
    expected = (x - mean) / torch.sqrt(var + 1e-5) * norm.weight.view(1, -1, 1, 1) + norm.bias.view(1, -1, 1, 1)
    assert torch.allclose(norm.train()(x), expected, atol=1e-5)
    assert torch.allclose(norm.eval()(x), expected, atol=1e-5)
    assert torch.equal(norm.running_mean, torch.full((4,), 3.0))  # carried along, never updated


def test_generator_eval_mode_equals_official_train_mode():
    torch.manual_seed(0)
    generator = Generator(conv_dim=8, c_dim=3, repeat_num=2)
    x, c = torch.rand(2, 3, 16, 16) * 2 - 1, torch.eye(3)[[0, 2]]
    with torch.no_grad():
        train_out = generator.train()(x, c)
        eval_out = generator.eval()(x, c)
    assert torch.equal(train_out, eval_out)
    assert train_out.shape == x.shape and train_out.abs().max() <= 1


def test_generator_sees_the_label_tiled_over_the_image():
    torch.manual_seed(0)
    generator = Generator(conv_dim=8, c_dim=3, repeat_num=1)
    x, c = torch.randn(2, 3, 8, 8), torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    tiled = torch.cat([x, c[:, :, None, None].expand(-1, -1, 8, 8)], dim=1)
    with torch.no_grad():
        assert torch.allclose(generator(x, c), generator.main(tiled))
        assert not torch.allclose(generator(x, c), generator(x, c.flip(0)))


def test_discriminator_heads_and_small_images():
    scores, logits = Discriminator(image_size=32, conv_dim=8, c_dim=4, repeat_num=4)(torch.randn(3, 3, 32, 32))
    assert scores.shape == (3, 1, 2, 2) and logits.shape == (3, 4)
    with pytest.raises(ValueError, match="repeat_num"):
        Discriminator(image_size=32, conv_dim=8, c_dim=4, repeat_num=6)


def test_gradient_penalty_of_a_linear_critic():
    # D(x) = <w, x> has gradient w everywhere, so the penalty is (|w| - 1)^2 exactly.
    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.full((1, 3, 2, 2), 0.5))

        def forward(self, x):
            return (x * self.w).sum((1, 2, 3)).view(-1, 1, 1, 1), None

    x = torch.randn(4, 3, 2, 2)
    penalty = gradient_penalty(Linear(), x, torch.randn(4, 3, 2, 2))
    assert torch.allclose(penalty, torch.tensor((0.5 * 12**0.5 - 1) ** 2))


# --------------------------------------------------------------------------------------------------
# Training algorithm
# --------------------------------------------------------------------------------------------------


class _Ctx:
    """The trainer's StepContext, minimal: fp32, one Adam per network."""

    def __init__(self, model):
        from ganzoo.trainer import StepContext

        self.inner = StepContext(torch.device("cpu"), "fp32", model.build_optimizers())

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _snapshot(net):
    return [p.detach().clone() for p in net.parameters()]


def _changed(before, net):
    return any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))


def _critic_gradients(model, batch, step: int) -> list[torch.Tensor]:
    """D's gradients in the critic step of iteration ``step``, before Adam (whose first step is about sign(grad)),
    from a fresh random state; ``model`` has no gradients yet."""
    ctx, grads = _Ctx(model), []

    def optimize(loss, *roles):
        loss.backward()
        grads.append([p.grad.clone() for p in model.nets["discriminator"].parameters()])
        raise StopIteration

    ctx.optimize = optimize
    torch.manual_seed(1)
    with pytest.raises(StopIteration):
        model.train_step(batch, step, ctx)
    return grads[0]


@pytest.mark.parametrize("dataset", ["shapes", "celeba"])
def test_critic_every_step_generator_every_n_critic(dataset):
    torch.manual_seed(0)
    if dataset == "celeba":
        model = tiny_model("celeba", ATTRS, n_critic=2)
        y = torch.tensor([[1, 0, 0, 1, 0], [0, 1, 0, 0, 1], [0, 0, 1, 1, 1], [1, 0, 0, 0, 0]])
    else:
        model = tiny_model(n_critic=2)
        y = torch.tensor([0, 1, 2, 1])
    assert model.label_kind == ("attributes" if dataset == "celeba" else "one-hot")
    ctx = _Ctx(model)
    batch = {"x": torch.rand(4, 3, 16, 16) * 2 - 1, "y": y}
    g, d = model.nets["generator"], model.nets["discriminator"]
    g0, d0 = _snapshot(g), _snapshot(d)
    logs = model.train_step(batch, 0, ctx)
    assert _changed(d0, d) and not _changed(g0, g)
    assert set(logs) == {"D/real", "D/fake", "D/cls", "D/gp"}
    d1 = _snapshot(d)
    logs = model.train_step(batch, 1, ctx)  # (step + 1) % n_critic == 0
    assert _changed(g0, g) and _changed(d1, d)
    assert {"G/adv", "G/cls", "G/rec"} <= set(logs)
    assert all(torch.isfinite(v) for v in logs.values())


def test_critic_on_real_and_fake_in_one_call_equals_two_calls(monkeypatch):
    """The critic has no batch statistics, so the D step scores real and fake in one call; its gradients must be
    those of separate calls (up to float rounding)."""
    import copy

    import ganzoo_stargan.model as stargan_model

    torch.manual_seed(0)
    base = tiny_model(n_critic=1)
    assert stargan_model.per_image(base.nets["discriminator"])
    batch = {"x": torch.rand(4, 3, 16, 16) * 2 - 1, "y": torch.tensor([0, 1, 2, 1])}

    def critic_step(shared: bool):
        monkeypatch.setattr(stargan_model, "per_image", lambda net: shared)
        return _critic_gradients(copy.deepcopy(base), batch, 0)

    for a, b in zip(critic_step(True), critic_step(False)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_the_generator_step_reusing_the_critic_steps_fake_trains_as_a_fresh_forward(monkeypatch):
    """On a generator iteration the D step's G(x, c_trg) keeps its graph for the G step (G does not change in between)
    instead of a second forward as officially: four iterations give the weights of the official double forward."""
    import copy

    import ganzoo_stargan.model as stargan_model

    torch.manual_seed(0)
    base = tiny_model(n_critic=2)
    assert stargan_model.forward_repeats_exactly(base.nets["generator"])
    batch = {"x": torch.rand(4, 3, 16, 16) * 2 - 1, "y": torch.tensor([0, 1, 2, 1])}

    def train(reuse: bool):
        monkeypatch.setattr(stargan_model, "forward_repeats_exactly", lambda net: reuse)
        model = copy.deepcopy(base)
        ctx, forwards = _Ctx(model), []
        hook = model.nets["generator"].register_forward_hook(lambda *_: forwards.append(1))
        torch.manual_seed(1)
        for step in range(4):
            model.train_step(batch, step, ctx)
        hook.remove()
        return _snapshot(model.nets["generator"]) + _snapshot(model.nets["discriminator"]), len(forwards)

    (reused, reused_forwards), (fresh, fresh_forwards) = train(True), train(False)
    assert (reused_forwards, fresh_forwards) == (6, 8)  # 4 critic steps, 2 generator steps: one forward fewer each
    for a, b in zip(reused, fresh):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    dropout = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.Dropout(0.5))
    assert not stargan_model.forward_repeats_exactly(dropout)  # a second forward draws other masks
    assert not stargan_model.forward_repeats_exactly(torch.nn.Sequential(torch.nn.BatchNorm2d(3)))


def test_a_lazy_gradient_penalty_weighs_k_times_on_every_kth_critic_step_and_is_absent_otherwise():
    import copy

    torch.manual_seed(0)
    base = tiny_model(n_critic=1)
    batch = {"x": torch.rand(4, 3, 16, 16) * 2 - 1, "y": torch.tensor([0, 1, 2, 1])}
    assert base.losses.gp_every == 1  # the official solver: the penalty on every critic step

    def gradients(step, **losses):
        model = copy.deepcopy(base)
        model.losses = model.losses.model_copy(update=losses)
        return _critic_gradients(model, batch, step)

    every, lazy_0, lazy_1 = gradients(0), gradients(0, gp_every=2), gradients(1, gp_every=2)
    doubled, without = gradients(0, gp=20.0), gradients(1, gp=0.0)
    for a, b in zip(lazy_0, doubled):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    for a, b in zip(lazy_1, without):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert any(not torch.allclose(a, b) for a, b in zip(every, doubled))  # the penalty's weight shows in D's gradients


def test_classification_losses_follow_the_official_solver():
    attr_model = tiny_model("celeba", ATTRS)
    logits, y = torch.randn(4, 5), torch.randint(0, 2, (4, 5))
    expected = F.binary_cross_entropy_with_logits(logits, y.float(), reduction="sum") / 4
    assert torch.allclose(attr_model.classification_loss(logits, y), expected)
    onehot_model = tiny_model()
    logits, y = torch.randn(4, 3), torch.tensor([0, 2, 1, 1])
    assert torch.allclose(onehot_model.classification_loss(logits, y), F.cross_entropy(logits, y))
    assert torch.equal(onehot_model.label_vectors(y), torch.eye(3)[[0, 2, 1, 1]])


def test_attribute_targets():
    model = tiny_model("celeba", ATTRS)
    source = torch.tensor([[1.0, 0, 0, 1, 0], [0, 0, 1, 0, 1]])
    # Official create_labels: hair colour set exclusively, other attributes flipped.
    official = model.official_attribute_target(source, torch.tensor([1, 3]))
    assert official.tolist() == [[0, 1, 0, 1, 0], [0, 0, 1, 1, 1]]
    edited = model.attribute_target(torch.zeros(2, 3, 16, 16), "Blond_Hair,Male=0", source_labels=source)
    assert edited.tolist() == [[0, 1, 0, 0, 0], [0, 1, 0, 0, 1]]
    assert parse_attribute_assignments("Young=0, Male", ATTRS) == {"Young": 0, "Male": 1}
    with pytest.raises(GanzooError, match="Blond_Hair"):
        parse_attribute_assignments("Blonde_Hair", ATTRS)
    with pytest.raises(GanzooError, match="0 or 1"):
        parse_attribute_assignments("Male=2", ATTRS)
    # Without given labels the sources' attributes come from D's classifier head.
    x = torch.rand(2, 3, 16, 16)
    predicted = (model.nets["discriminator"](x)[1] > 0).float()
    assert torch.equal(model.attribute_target(x, {"Young": 1}), torch.cat([predicted[:, :4], torch.ones(2, 1)], 1))


# --------------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------------


def _face(path: Path, seed: int, size=(178, 218)) -> None:
    gen = torch.Generator().manual_seed(seed)
    pixels = (torch.rand(size[1] // 8, size[0] // 8, 3, generator=gen) * 255).to(torch.uint8).numpy()
    Image.fromarray(pixels).resize(size).save(path, quality=90)


def make_celeba(root: Path, count: int = 8) -> Path:
    (root / "images").mkdir(parents=True)
    rng = random.Random(0)
    lines = [str(count), " ".join(CELEBA_ATTRIBUTES)]
    for i in range(count):
        name = f"{i + 1:06d}.jpg"
        _face(root / "images" / name, i)
        lines.append(name + " " + " ".join(rng.choice(["1", "-1"]) for _ in CELEBA_ATTRIBUTES))
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    return root


def test_celeba_dataset_follows_the_official_loader(tmp_path):
    root = make_celeba(tmp_path / "celeba")
    train = CelebADataset(str(root), "train", image_size=32, num_test=3)
    test = CelebADataset(str(root), "test", image_size=32, num_test=3)
    lines = (root / "list_attr_celeba.txt").read_text().splitlines()[2:]
    state = random.getstate()
    random.seed(1234)  # exactly what the official loader does
    random.shuffle(lines)
    random.setstate(state)
    assert test.files == [line.split()[0] for line in lines[:3]]
    assert train.files == [line.split()[0] for line in lines[3:]]
    names = CELEBA_ATTRIBUTES
    first = lines[3].split()
    assert train.labels[0] == [int(first[1 + names.index(a)] == "1") for a in ATTRS]
    image = train.load(0, random.Random(1))
    assert image.shape == (3, 32, 32) and -1 <= image.min() and image.max() <= 1
    assert train.indices_by_label() == [list(range(len(train)))]
    with pytest.raises(DataError, match="Blond_Hair"):
        CelebADataset(str(root), "train", domains=["Blonde_Hair"], num_test=3)


def test_celeba_missing_says_where_the_data_goes(tmp_path):
    with pytest.raises(DataError) as info:
        CelebADataset(str(tmp_path / "nowhere"))
    message = str(info.value)
    assert "images" in message and "list_attr_celeba.txt" in message and "download.sh" in message
    assert message.count(". ") == 0  # one sentence


def test_rafd_is_a_folder_per_expression(tmp_path):
    for split in ("train", "test"):
        for k, expression in enumerate(["angry", "happy"]):
            (tmp_path / split / expression).mkdir(parents=True)
            _face(tmp_path / split / expression / "a.jpg", k, size=(300, 400))
    train = RaFDDataset(str(tmp_path), "train", image_size=16)
    val = RaFDDataset(str(tmp_path), "val", image_size=16)  # reads ROOT/test
    assert train.domains == ["angry", "happy"] and train.labels == [0, 1]
    assert val.split == "test" and val.load(1).shape == (3, 16, 16)
    with pytest.raises(DataError, match="train/<expression>"):
        RaFDDataset(str(tmp_path / "none"))


# --------------------------------------------------------------------------------------------------
# CLI: training from recipes, conversion, translation
# --------------------------------------------------------------------------------------------------

TINY = ["--set", "networks.generator.conv_dim=8", "--set", "networks.generator.repeat_num=1",
        "--set", "networks.discriminator.conv_dim=8", "--set", "networks.discriminator.repeat_num=3",
        "--set", "data.image_size=32", "--set", "data.batch_size=2", "--set", "data.num_workers=0",
        "--set", "train.sample_every=0", "--set", "train.device=cpu"]


def invoke(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result


def test_celeba_recipe_trains_a_few_steps_and_translates_attributes(tmp_path):
    root = make_celeba(tmp_path / "celeba")
    run_dir = tmp_path / "run"
    result = invoke("run", REPO / "recipes/stargan_celeba.yaml", "--out", run_dir, "-q", *TINY,
                    "--set", f"data.root={root}", "--set", "data.num_test=2", "--set", "train.steps=3")
    assert result.exit_code == 0, result.output
    model = ganzoo.load(str(run_dir))
    assert model.label_kind == "attributes" and model.domains == ATTRS and model.step == 3
    out = tmp_path / "out"
    result = invoke("translate", run_dir, "--input", root / "images" / "000001.jpg", "--attrs", "Blond_Hair,Male=0", "--out", out)
    assert result.exit_code == 0, result.output
    assert Image.open(out / "000001.jpg").size == (32, 32)
    result = invoke("translate", run_dir, "--input", root / "images", "--out", out)
    assert result.exit_code == 2 and "--attrs" in result.output


def test_shapes_recipe_is_valid_and_trains(tmp_path):
    result = invoke("run", REPO / "recipes/stargan_shapes.yaml", "--out", tmp_path / "run", "-q",
                    "--set", "train.steps=2", "--set", "train.sample_every=2", "--set", "data.num_train=12")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "samples" / "step_00000002.png").is_file()


def test_every_stargan_recipe_resolves():
    from ganzoo.recipe import load_recipe

    for name in ("stargan_celeba", "stargan_rafd", "stargan_shapes", "stargan_celeba_rafd"):
        recipe = load_recipe(REPO / "recipes" / f"{name}.yaml")
        assert recipe.model == "stargan" and recipe.optim["n_critic"] >= 1


@pytest.mark.parametrize("layout", ["celeba_128", "celeba_256"])
def test_convert_official_checkpoints(tmp_path, layout):
    g_state = official_random_state(layout, "generator", 1)
    d_state = official_random_state(layout, "discriminator", 2)
    torch.save(g_state, tmp_path / "200000-G.ckpt")
    torch.save(d_state, tmp_path / "200000-D.ckpt")
    out = tmp_path / "converted"
    result = invoke("convert", "stargan", tmp_path / "200000-G.ckpt", tmp_path / "200000-D.ckpt", out)
    assert result.exit_code == 0, result.output
    model = ganzoo.load(str(out))
    size = OFFICIAL[layout]["config"]["image_size"]
    assert model.image_size == size and model.domains == ATTRS and model.label_kind == "attributes"
    for role, state in (("generator", g_state), ("discriminator", d_state)):
        loaded = model.nets[role].state_dict()
        assert list(loaded) == list(state)
        assert all(torch.equal(loaded[k], v) for k, v in state.items()), role
    del model, g_state, d_state
    if layout != "celeba_128":
        return  # one translation at full size is enough
    face = tmp_path / "face.png"
    _face(face, 7)
    for option in (["--attrs", "Blond_Hair,Young=0"], ["--target", "Male"]):
        result = invoke("translate", out, "--input", face, "--out", tmp_path / "out", "--device", "cpu", *option)
        assert result.exit_code == 0, result.output
        assert Image.open(tmp_path / "out" / "face.png").size == (size, size)


def test_convert_generator_only_and_options(tmp_path):
    g = Generator(conv_dim=8, c_dim=3, repeat_num=2).state_dict()
    torch.save(g, tmp_path / "G.ckpt")
    result = invoke("convert", "stargan", tmp_path / "G.ckpt", tmp_path / "nonames")
    assert result.exit_code == 2 and "--domains" in result.output
    result = invoke("convert", "stargan", tmp_path / "G.ckpt", tmp_path / "out", "--domains", "red,green,blue",
                    "--image-size", "32", "--option", "dataset=shapes")
    assert result.exit_code == 0, result.output
    model = ganzoo.load(str(tmp_path / "out"))
    assert list(model.nets) == ["generator"] and model.label_kind == "one-hot" and model.image_size == 32
    y = model.translate(torch.zeros(1, 3, 32, 32), torch.tensor([2]))
    assert y.shape == (1, 3, 32, 32)
    image = tmp_path / "shape.png"
    Image.new("RGB", (32, 32), (200, 30, 30)).save(image)
    result = invoke("translate", tmp_path / "out", "--input", image, "--attrs", "blue", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "--target" in result.output  # one-hot models take domains, not attributes
    result = invoke("translate", tmp_path / "out", "--input", image, "--target", "blue", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output


def test_malicious_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "G.ckpt"
    torch.save({"main.0.weight": torch.zeros(1), "payload": CodeRunningPickle(tmp_path / "pwned.txt")}, evil)
    with pytest.raises(CheckpointError, match="Refusing"):
        load_state_dict(evil)
    result = invoke("convert", "stargan", evil, tmp_path / "out")
    assert result.exit_code == 2 and "Refusing" in result.output
    assert not (tmp_path / "pwned.txt").exists() and not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------------
# Joint CelebA + RaFD training with the mask vector (official train_multi, --dataset Both)
# --------------------------------------------------------------------------------------------------

EXPRESSIONS = ["angry", "happy", "sad"]
JOINT = ATTRS + EXPRESSIONS  # D classifies these 8; G sees them plus the 2-dim mask


def make_rafd(root: Path, expressions=EXPRESSIONS, per_expression: int = 2) -> Path:
    for split in ("train", "test"):
        for k, expression in enumerate(expressions):
            (root / split / expression).mkdir(parents=True)
            for j in range(per_expression):
                _face(root / split / expression / f"{j}.jpg", 100 + 10 * k + j, size=(300, 400))
    return root


def test_joint_classification_loss_takes_only_the_active_part():
    torch.manual_seed(0)
    model = tiny_model("celeba_rafd", JOINT)
    assert model.label_kind == "joint" and model.num_attributes == 5 and model.attribute_names == ATTRS
    assert model.nets["generator"].c_dim == 10 and model.nets["discriminator"].conv2.out_channels == 8
    attrs = torch.tensor([[1, 0, 0, 1, 0], [0, 1, 0, 0, 1], [0, 0, 1, 1, 1]])
    y_celeba = model.joint_condition(attributes=attrs)
    y_rafd = model.joint_condition(expressions=torch.tensor([2, 0, 1]))
    assert y_celeba[0].tolist() == [1, 0, 0, 1, 0, 0, 0, 0, 1, 0]
    assert y_rafd[0].tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 0, 1]
    logits = torch.randn(3, 8)
    # The official values: BCE summed over the CelebA attributes / batch, cross-entropy over the expressions.
    celeba = model.classification_loss(logits, y_celeba)
    assert torch.allclose(celeba, F.binary_cross_entropy_with_logits(logits[:, :5], attrs.float(), reduction="sum") / 3)
    rafd = model.classification_loss(logits, y_rafd)
    assert torch.allclose(rafd, F.cross_entropy(logits[:, 5:], torch.tensor([2, 0, 1])))
    # The inactive part's logits do not enter the loss (nor its gradient).
    changed = logits.clone()
    changed[:, 5:] = torch.randn(3, 3) * 100
    assert torch.equal(model.classification_loss(changed, y_celeba), celeba)
    changed = logits.clone()
    changed[:, :5] = torch.randn(3, 5) * 100
    assert torch.equal(model.classification_loss(changed, y_rafd), rafd)
    leaf = logits.clone().requires_grad_(True)
    model.classification_loss(leaf, y_celeba).backward()
    assert leaf.grad[:, 5:].abs().sum() == 0 and leaf.grad[:, :5].abs().sum() > 0
    # A mixed batch: each set's loss over its own rows.
    mixed = model.classification_loss(torch.cat([logits, logits]), torch.cat([y_celeba, y_rafd]))
    assert torch.allclose(mixed, celeba + rafd)


def test_joint_step_alternates_the_datasets_like_train_multi():
    torch.manual_seed(0)
    model = tiny_model("celeba_rafd", JOINT, n_critic=2)
    attrs = torch.tensor([[1, 0, 0, 1, 0], [0, 1, 0, 0, 1], [0, 0, 1, 1, 1]])
    batch = {"x": torch.rand(3, 3, 16, 16) * 2 - 1, "y": model.joint_condition(attributes=attrs).long(),
             "x_rafd": torch.rand(3, 3, 16, 16) * 2 - 1, "y_rafd": model.joint_condition(expressions=torch.tensor([0, 1, 2])).long()}
    seen = []  # the conditions G gets, in order
    g, d = model.nets["generator"], model.nets["discriminator"]
    hook = g.register_forward_pre_hook(lambda _, args: seen.append(args[1][:, -2:].tolist()))
    ctx = _Ctx(model)
    g0, d0 = _snapshot(g), _snapshot(d)
    logs = model.train_step(batch, 0, ctx)
    assert _changed(d0, d) and not _changed(g0, g)
    assert set(logs) == {f"D/{k}_{s}" for k in ("real", "fake", "cls", "gp") for s in ("celeba", "rafd")}
    assert seen == [[[1, 0]] * 3, [[0, 1]] * 3]  # a CelebA D step, then a RaFD one, each with its own mask
    seen.clear()
    logs = model.train_step(batch, 1, ctx)  # (step + 1) % n_critic == 0: D, G on CelebA, then D, G on RaFD
    hook.remove()
    assert _changed(g0, g)
    assert {"G/adv_celeba", "G/rec_celeba", "G/cls_rafd", "G/rec_rafd"} <= set(logs)
    # G forwards per set: the fake (the D and G steps share it: G is unchanged in between), then the reconstruction,
    # all with that set's mask.
    assert seen == [[[1, 0]] * 3] * 2 + [[[0, 1]] * 3] * 2
    assert all(torch.isfinite(v) for v in logs.values())


def test_joint_dataset_labels_and_missing_data(tmp_path):
    celeba, rafd = make_celeba(tmp_path / "celeba"), make_rafd(tmp_path / "RaFD")
    ds = CelebARaFDDataset(str(celeba), str(rafd), image_size=16, num_test=2)
    assert ds.label_kind == "joint" and ds.domains == JOINT and ds.num_attributes == 5
    n = len(ds.celeba)
    assert len(ds) == n + 6 and ds.indices_by_label() == [list(range(n)), list(range(n, n + 6))]
    assert ds.labels[0] == ds.celeba.labels[0] + [0, 0, 0, 1, 0]
    assert ds.labels[n + 2] == [0] * 5 + [0, 1, 0] + [0, 1]  # the first "happy" image
    assert ds.load(n + 2).shape == (3, 16, 16)
    rng = random.Random(3)
    i_c, i_r = ds.joint_pair(1, rng)
    assert i_c == 1 and n <= i_r < n + 6
    i_c, i_r = ds.joint_pair(n + 4, rng)
    assert 0 <= i_c < n and i_r == n + 4
    with pytest.raises(DataError) as info:
        CelebARaFDDataset(str(tmp_path / "no_celeba"), str(tmp_path / "no_rafd"))
    message = str(info.value)
    assert "CelebA" in message and "RaFD" in message and "download.sh celeba" in message
    assert message.count(". ") == 0  # one sentence
    with pytest.raises(DataError, match="data.rafd_root"):
        CelebARaFDDataset(str(celeba), str(tmp_path / "no_rafd"), num_test=2)


def test_joint_recipe_trains_and_translates_both_parts(tmp_path):
    celeba, rafd = make_celeba(tmp_path / "celeba"), make_rafd(tmp_path / "RaFD")
    run_dir = tmp_path / "run"
    result = invoke("run", REPO / "recipes/stargan_celeba_rafd.yaml", "--out", run_dir, "-q", *TINY,
                    "--set", f"data.celeba_root={celeba}", "--set", f"data.rafd_root={rafd}", "--set", "data.num_test=2",
                    "--set", "train.steps=2", "--set", "train.sample_every=2", "--set", "optim.n_critic=2")
    assert result.exit_code == 0, result.output
    assert (run_dir / "samples" / "step_00000002.png").is_file()
    log = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"loss/G/cls_celeba", "loss/G/cls_rafd", "loss/D/cls_rafd"} <= set(log[-1])
    model = ganzoo.load(str(run_dir))
    assert model.label_kind == "joint" and model.domains == JOINT and model.step == 2
    assert model.nets["generator"].main[0].in_channels == 3 + 8 + 2 and model.nets["discriminator"].conv2.out_channels == 8
    # --target: an expression (RaFD part and mask) or a CelebA attribute (official edit, CelebA mask).
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    c = model.joint_target(x, torch.tensor([6, 3]), source_labels=torch.tensor([[1.0, 0, 0, 1, 0]] * 2))
    assert c.tolist() == [[0, 0, 0, 0, 0, 0, 1, 0, 0, 1], [1, 0, 0, 0, 0, 0, 0, 0, 1, 0]]
    c = model.attribute_target(x, "Blond_Hair,Male=0", source_labels=torch.tensor([[1.0, 0, 0, 1, 1]] * 2))
    assert c.tolist() == [[0, 1, 0, 0, 1, 0, 0, 0, 1, 0]] * 2
    face = celeba / "images" / "000001.jpg"
    for option in (["--target", "happy"], ["--target", "Male"], ["--attrs", "Blond_Hair,Male=0"]):
        out = tmp_path / ("out_" + option[1].replace(",", "_").replace("=", ""))
        result = invoke("translate", run_dir, "--input", face, "--out", out, *option)
        assert result.exit_code == 0, result.output
        assert Image.open(out / "000001.jpg").size == (32, 32)
    result = invoke("translate", run_dir, "--input", face, "--out", tmp_path / "o", "--attrs", "happy")
    assert result.exit_code == 2 and "Black_Hair" in result.output  # --attrs names CelebA attributes only


def _both_state(role: str, seed: int) -> dict[str, torch.Tensor]:
    """The official Both layout at 128 px: the CelebA layout with 5 + 8 + 2 label channels in G, 13 classes in D."""
    state = official_random_state("celeba_128", role, seed)
    gen = torch.Generator().manual_seed(seed)
    if role == "generator":
        state["main.0.weight"] = torch.randn(64, 3 + 15, 7, 7, generator=gen) * 0.05
    else:
        state["conv2.weight"] = torch.randn(13, 2048, 2, 2, generator=gen) * 0.05
    return state


def test_convert_official_joint_checkpoints(tmp_path):
    g_state, d_state = _both_state("generator", 3), _both_state("discriminator", 4)
    torch.save(g_state, tmp_path / "200000-G.ckpt")
    torch.save(d_state, tmp_path / "200000-D.ckpt")
    out = tmp_path / "both"
    result = invoke("convert", "stargan", tmp_path / "200000-G.ckpt", tmp_path / "200000-D.ckpt", out, "--option", "dataset=both")
    assert result.exit_code == 0, result.output
    model = ganzoo.load(str(out))
    assert model.label_kind == "joint" and model.domains == ATTRS + RAFD_EXPRESSIONS and model.num_attributes == 5
    assert model.image_size == 128 and model.condition_dim == 15
    for role, state in (("generator", g_state), ("discriminator", d_state)):
        loaded = model.nets[role].state_dict()
        assert list(loaded) == list(state) and all(torch.equal(loaded[k], v) for k, v in state.items()), role
    del model, d_state
    face = tmp_path / "face.png"
    _face(face, 7)
    for option in (["--target", "surprised"], ["--attrs", "Brown_Hair"]):
        result = invoke("translate", out, "--input", face, "--out", tmp_path / "out", "--device", "cpu", *option)
        assert result.exit_code == 0, result.output
        assert Image.open(tmp_path / "out" / "face.png").size == (128, 128)
    # G alone needs the option (15 labels are no known set); with it, the names default to the official ones.
    result = invoke("convert", "stargan", tmp_path / "200000-G.ckpt", tmp_path / "g_only")
    assert result.exit_code == 2 and "--domains" in result.output
    result = invoke("convert", "stargan", tmp_path / "200000-G.ckpt", tmp_path / "g_only", "--option", "dataset=both")
    assert result.exit_code == 0, result.output
    assert ganzoo.load(str(tmp_path / "g_only")).label_kind == "joint"
    # A D with 13 classes next to a G with 15 labels is a joint pair even without the option.
    result = invoke("convert", "stargan", tmp_path / "200000-G.ckpt", tmp_path / "200000-D.ckpt", tmp_path / "auto")
    assert result.exit_code == 0, result.output
    assert ganzoo.load(str(tmp_path / "auto")).label_kind == "joint"
    result = invoke("convert", "stargan", tmp_path / "200000-G.ckpt", tmp_path / "200000-D.ckpt", tmp_path / "bad",
                    "--option", "dataset=celeba")
    assert result.exit_code == 2 and "not one model" in result.output
