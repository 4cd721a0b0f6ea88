"""CycleGAN and pix2pix: official layouts, conversion, datasets, train steps and test-time behaviour.

The official layouts (keys, order, shapes, parameter counts of junyanz/pytorch-CycleGAN-and-pix2pix)
come from tests/data/cyclegan_pix2pix_official_keys.json, so nothing here needs the official code.
Full-size networks are only ever built on the meta device; everything that runs uses narrow widths.
"""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

import ganzoo
from ganzoo.errors import CheckpointError, DataError, GanzooError, RecipeError
from tests.conftest import CodeRunningPickle
from ganzoo.recipe import load_recipe, recipe_from_dict
from ganzoo_cyclegan.convert import convert_cyclegan, convert_pix2pix, infer_network, load_official
from ganzoo_cyclegan.data import UnalignedDataset
from ganzoo_cyclegan.model import CycleGAN, ImagePool, generate_as_official_test
from ganzoo_cyclegan.networks import (
    NLayerDiscriminator,
    PixelDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    generator_for_layout,
    init_normal,
)
from ganzoo_cyclegan.paired_data import AlignedDataset, ShapesPairsDataset
from ganzoo_cyclegan.pix2pix import Pix2Pix

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL = json.loads((Path(__file__).parent / "data" / "cyclegan_pix2pix_official_keys.json").read_text())["networks"]


def build_official(entry: dict) -> nn.Module:
    config = dict(entry["config"])
    net = config.pop("net")
    if net == "basic":
        return NLayerDiscriminator(**config)
    return generator_for_layout(net, **config)


def randomized(net: nn.Module, seed: int) -> nn.Module:
    """Random weights *and* batch-norm statistics, so conversion tests compare something non-trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=g) * 0.2 + (0.9 if name.endswith("running_var") else -0.1))
    return net


# --------------------------------------------------------------------------- official layouts


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_networks_match_official_keys_shapes_and_counts(name):
    entry = OFFICIAL[name]
    with torch.device("meta"):
        net = build_official(entry)
    layout = [[k, list(v.shape)] for k, v in net.state_dict().items()]
    assert layout == entry["state_dict"]  # same keys, same order, same shapes
    assert sum(p.numel() for p in net.parameters()) == entry["n_params"]
    assert [k for k, _ in net.named_buffers()] == entry["buffers"]


def test_other_official_layout_counts():
    with torch.device("meta"):
        assert sum(p.numel() for p in generator_for_layout("resnet_6blocks").parameters()) == 7_837_699
        assert sum(p.numel() for p in generator_for_layout("unet_128").parameters()) == 41_828_995


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_layout_is_inferred_from_official_shapes(name):
    entry = OFFICIAL[name]
    state = {k: torch.empty(shape, device="meta") for k, shape in entry["state_dict"]}
    registry_name, kwargs = infer_network(state, unet_dropout=True)
    expected = {k: v for k, v in entry["config"].items() if k != "net"}
    if entry["config"]["net"] == "resnet_9blocks":
        assert registry_name == "cyclegan.resnet_generator"
        assert kwargs == {**expected, "n_blocks": 9, "padding_type": "reflect"}
    elif entry["config"]["net"] == "unet_256":
        assert registry_name == "cyclegan.unet_generator"
        assert kwargs == {**expected, "num_downs": 8}
    else:
        assert registry_name == "cyclegan.nlayer_discriminator" and kwargs == expected


def test_norm_factory_and_bias_rule():
    instance, batch, plain = (ResnetGenerator(ngf=4, n_blocks=1, norm=n) for n in ("instance", "batch", "none"))
    assert all(m.affine is False and m.track_running_stats is False for m in instance.modules() if isinstance(m, nn.InstanceNorm2d))
    assert not list(instance.buffers())
    inner_convs = lambda net: [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))][:-1]  # noqa: E731
    assert all(c.bias is not None for c in inner_convs(instance))
    assert all(c.bias is None for c in inner_convs(batch)) and all(c.bias is None for c in inner_convs(plain))
    assert not any(isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d)) for m in plain.modules())
    # The last conv has no norm after it and always keeps its bias.
    for net in (instance, batch, plain):
        assert net.model[-2].bias is not None


def test_normal_init():
    torch.manual_seed(0)
    net = UnetGenerator(num_downs=5, ngf=32, norm="batch")
    net.apply(init_normal)
    big = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.weight.numel() > 20000]
    assert big and all(abs(m.weight.std().item() - 0.02) < 0.002 for m in big)
    assert all(m.bias is None or not m.bias.any() for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))
    norms = torch.cat([m.weight for m in net.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(norms.mean().item() - 1.0) < 0.01 and abs(norms.std().item() - 0.02) < 0.005


def test_forward_shapes():
    x = torch.randn(2, 3, 32, 32)
    assert ResnetGenerator(ngf=4, n_blocks=2)(x).shape == x.shape
    assert UnetGenerator(num_downs=5, ngf=4)(x).shape == x.shape
    assert NLayerDiscriminator(ndf=4, n_layers=3)(x).shape == (2, 1, 2, 2)
    assert PixelDiscriminator(ndf=4)(x).shape == (2, 1, 32, 32)
    # 70x70 PatchGAN: 30x30 logits for a 256 px image (the width does not change the geometry)
    assert NLayerDiscriminator(ndf=1)(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    with pytest.raises(ValueError, match="num_downs"):
        UnetGenerator(num_downs=4)


# --------------------------------------------------------------------------- conversion


def save(state: dict, path: Path, prefix: str = "") -> Path:
    torch.save({prefix + k: v for k, v in state.items()}, path)
    return path


def small_cyclegan(seed: int) -> dict[str, nn.Module]:
    nets = {
        "G_A": ResnetGenerator(ngf=4, n_blocks=2), "G_B": ResnetGenerator(ngf=4, n_blocks=2),
        "D_A": NLayerDiscriminator(ndf=4, n_layers=2), "D_B": NLayerDiscriminator(ndf=4, n_layers=2),
    }
    return {name: randomized(net, seed + i) for i, (name, net) in enumerate(nets.items())}


@pytest.mark.parametrize("prefix", ["", "module."])
def test_cyclegan_conversion_round_trip(tmp_path, prefix):
    nets = small_cyclegan(seed=1)
    files = [save(net.state_dict(), tmp_path / f"latest_net_{name}.pth", prefix) for name, net in nets.items()]
    folder = convert_cyclegan(files, tmp_path / "out", image_size=32, domains=["horse", "zebra"])
    model = ganzoo.load(folder)
    assert isinstance(model, CycleGAN) and model.domains == ["horse", "zebra"]
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    official_names = {"generator_a2b": "G_A", "generator_b2a": "G_B", "discriminator_b": "D_A", "discriminator_a": "D_B"}
    with torch.no_grad():
        for role, name in official_names.items():
            assert torch.equal(model.nets[role](x), nets[name](x)), role
        # into zebra (index 1) is G_A, into horse is G_B, chosen per sample
        out = model.translate(x, torch.tensor([1, 0]))
        assert torch.allclose(out[0], nets["G_A"](x[:1])[0]) and torch.allclose(out[1], nets["G_B"](x[1:])[0])


def test_old_instance_norm_statistics_are_dropped(tmp_path):
    generator = randomized(ResnetGenerator(ngf=4, n_blocks=1), seed=2)
    state = generator.state_dict()
    norms = [name for name, m in generator.named_modules() if isinstance(m, nn.InstanceNorm2d)]
    for name in norms:  # what pre-0.4 PyTorch saved for every InstanceNorm
        state[f"{name}.running_mean"] = torch.zeros(4)
        state[f"{name}.running_var"] = torch.ones(4)
        state[f"{name}.num_batches_tracked"] = torch.tensor(0)
    path = save(state, tmp_path / "old_net_G_A.pth")
    model = ganzoo.load(convert_cyclegan([path], tmp_path / "out", image_size=32))
    assert set(model.nets) == {"generator_a2b"}
    assert not any("running" in k for k in model.nets["generator_a2b"].state_dict())
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(model.nets["generator_a2b"](x), generator(x))


def test_converted_pretrained_generator_translates_a_png(tmp_path):
    from typer.testing import CliRunner

    from ganzoo.cli import app

    generator = randomized(ResnetGenerator(ngf=4, n_blocks=2), seed=3)
    checkpoint = save(generator.state_dict(), tmp_path / "latest_net_G.pth")
    out_dir = tmp_path / "horse2zebra"
    runner = CliRunner()
    result = runner.invoke(app, ["convert", "cyclegan", str(checkpoint), str(out_dir), "--net", "resnet_6blocks"])
    assert result.exit_code == 2 and "resnet_6blocks" in result.output  # the file has 2 blocks, not 6
    result = runner.invoke(app, ["convert", "cyclegan", str(checkpoint), str(out_dir), "--image-size", "32", "--domains", "horse,zebra"])
    assert result.exit_code == 0, result.output

    pixels = torch.Generator().manual_seed(4)
    image = Image.fromarray(torch.randint(0, 256, (32, 32, 3), generator=pixels, dtype=torch.uint8).numpy())
    image.save(tmp_path / "horse.png")
    result = runner.invoke(app, ["translate", str(out_dir), "--input", str(tmp_path / "horse.png"), "--target", "zebra",
                                 "--out", str(tmp_path / "zebras"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    written = torch.from_numpy(__import__("numpy").array(Image.open(tmp_path / "zebras" / "horse.png"))).float()
    x = torch.from_numpy(__import__("numpy").array(image)).permute(2, 0, 1).float()[None] / 127.5 - 1
    with torch.no_grad():
        expected = ((generator(x)[0].clamp(-1, 1) + 1) * 127.5).permute(1, 2, 0)
    assert (written - expected).abs().max() <= 1.0  # equal up to rounding to 8 bits

    # The release holds one direction only; the other is a clear error, not a crash.
    result = runner.invoke(app, ["translate", str(out_dir), "--input", str(tmp_path / "horse.png"), "--target", "horse",
                                 "--out", str(tmp_path / "horses"), "--device", "cpu"])
    assert result.exit_code == 2 and "generator_b2a" in result.output


def test_pix2pix_conversion_round_trip(tmp_path):
    generator = randomized(UnetGenerator(num_downs=5, ngf=4, norm="batch"), seed=5)
    discriminator = randomized(NLayerDiscriminator(input_nc=6, ndf=4, n_layers=2, norm="batch"), seed=6)
    files = [save(generator.state_dict(), tmp_path / "200_net_G.pth"), save(discriminator.state_dict(), tmp_path / "200_net_D.pth")]
    model = ganzoo.load(convert_pix2pix(files, tmp_path / "out", image_size=32, domains=["labels", "photo"], net=None))
    assert isinstance(model, Pix2Pix)
    assert model.network_specs["generator"]["kwargs"]["use_dropout"] is True  # not in the weights: the official default
    assert model.network_specs["discriminator"]["kwargs"]["input_nc"] == 6
    for ours, theirs in ((model.nets["generator"], generator), (model.nets["discriminator"], discriminator)):
        for key, value in theirs.state_dict().items():
            assert torch.equal(ours.state_dict()[key], value), key
    mismatched = save(NLayerDiscriminator(input_nc=4, ndf=4, n_layers=2, norm="batch").state_dict(), tmp_path / "x_net_D.pth")
    with pytest.raises(CheckpointError, match="input channels"):
        convert_pix2pix([files[0], mismatched], tmp_path / "out2")


def test_malicious_pickle_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "payload_ran"
    payload = {"model.1.weight": CodeRunningPickle(marker)}
    raw = tmp_path / "raw_net_G.pth"
    raw.write_bytes(pickle.dumps(payload, protocol=2))
    zipped = tmp_path / "zip_net_G.pth"
    torch.save(payload, zipped)
    for path in (raw, zipped):
        with pytest.raises(CheckpointError, match="Refusing to load"):
            load_official(path)
    assert not marker.exists()


def test_unusable_files_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_official(tmp_path / "missing.pth")
    (tmp_path / "notes.txt").write_text("not a checkpoint\n" * 10)
    with pytest.raises(CheckpointError, match="not a readable"):
        load_official(tmp_path / "notes.txt")
    torch.save({"state": {}, "param_groups": []}, tmp_path / "optim.pth")
    with pytest.raises(CheckpointError, match="bare state_dict"):
        load_official(tmp_path / "optim.pth")
    torch.save({"encoder.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not a CycleGAN/pix2pix"):
        convert_cyclegan([tmp_path / "other.pth"], tmp_path / "out")
    broken = ResnetGenerator(ngf=4, n_blocks=2).state_dict()
    broken["model.4.weight"] = torch.zeros(8, 4, 2, 2)
    with pytest.raises(CheckpointError, match="model.4.weight"):
        convert_cyclegan([save(broken, tmp_path / "bad_net_G_A.pth")], tmp_path / "out")


# --------------------------------------------------------------------------- datasets


def write_png(path: Path, array) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def test_unaligned_dataset(tmp_path):
    import numpy as np

    for side, colour in (("A", 200), ("B", 50)):
        for split in ("train", "test"):
            for i in range(2):
                write_png(tmp_path / f"{split}{side}" / f"{i}.png", np.full((20, 30, 3), colour, np.uint8))
    (tmp_path / "trainA" / "broken.jpg").write_bytes(b"")  # skipped at scan time
    data = UnalignedDataset(str(tmp_path), "train", image_size=16, load_size=18, domains=["horse", "zebra"])
    assert data.labels == [0, 0, 1, 1] and data.domains == ["horse", "zebra"]
    assert data.load(0, random.Random(0)).shape == (3, 16, 16)
    assert data.load(3).shape == (3, 16, 16)
    assert len(UnalignedDataset(str(tmp_path), "val", image_size=16)) == 4  # val reads testA/testB
    with pytest.raises(DataError, match=r"horse2zebra\.zip"):
        UnalignedDataset(str(tmp_path / "horse2zebra"))


def test_aligned_dataset_shares_crop_and_flip(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    half = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    write_png(tmp_path / "train" / "0.png", np.concatenate([half, 255 - half], axis=1))
    data = AlignedDataset(str(tmp_path), "train", image_size=16, load_size=20)
    for seed in range(6):  # crops at different places and both flip states
        source, target = data.load_pair(0, random.Random(seed))
        assert source.shape == (3, 16, 16) and torch.allclose(source, -target, atol=0.02)
    backwards = AlignedDataset(str(tmp_path), "train", image_size=16, direction="BtoA")
    assert backwards.domains == ["B", "A"]
    a, b = data.load_pair(0)
    b2, a2 = backwards.load_pair(0)
    assert torch.equal(a, a2) and torch.equal(b, b2)
    with pytest.raises(DataError, match=r"facades\.tar\.gz"):
        AlignedDataset(str(tmp_path / "facades"))


def test_shapes_pairs():
    data = ShapesPairsDataset("val", image_size=32, num_val=4)
    source, target = data.load_pair(1)
    mask = data.mask(1)
    assert source.shape == target.shape == (3, 32, 32)
    assert (source[0][mask] > 0).all() and (source[0][~mask] < 0).all()
    assert torch.equal(data.load(1), source)
    flipped = [data.load_pair(1, random.Random(s)) for s in range(8)]
    assert any(torch.equal(s, source.flip(-1)) and torch.equal(t, target.flip(-1)) for s, t in flipped)
    with pytest.raises(DataError, match="colour family"):
        ShapesPairsDataset(domains=["silhouette", "teal"])


# --------------------------------------------------------------------------- models


def test_image_pool_follows_official_rule_and_torch_rng():
    pool = ImagePool(2)
    first = torch.arange(2.0).view(2, 1)
    assert torch.equal(pool.query(first), first)  # not full: store and return
    torch.manual_seed(0)
    out1 = pool.query(torch.tensor([[5.0], [6.0], [7.0]]))
    stored = torch.cat(pool.images)
    pool2 = ImagePool(2)
    pool2.query(first)
    torch.manual_seed(0)
    assert torch.equal(pool2.query(torch.tensor([[5.0], [6.0], [7.0]])), out1)  # same torch RNG, same draws
    assert torch.equal(torch.cat(pool2.images), stored)
    assert set(out1.flatten().tolist()) <= {0.0, 1.0, 5.0, 6.0, 7.0}
    assert torch.equal(ImagePool(0).query(first), first)


def test_k_domain_counts():
    assert [CycleGAN.generators_for_domains(k) for k in (2, 3, 5)] == [2, 6, 20]
    assert CycleGAN.models_for_domains(5) == 10 and Pix2Pix.generators_for_domains(3) == 6


def tiny_run(tmp_path, recipe: str, *overrides: str):
    from ganzoo.trainer import Trainer

    resolved = load_recipe(ROOT / "recipes" / recipe, ["train.steps=2", "train.checkpoint_every=2", "train.sample_every=0", *overrides])
    return Trainer(resolved, tmp_path / "run", quiet=True).run()


def test_cyclegan_trains_two_steps_and_reloads(tmp_path):
    result = tiny_run(tmp_path, "cyclegan_shapes.yaml", "data.image_size=16", "data.batch_size=2", "data.num_train=8",
                      "losses.pool_size=3")
    assert result.step == 2 and all(torch.isfinite(torch.tensor(v)) for v in result.losses.values())
    assert {"G/cycle_a", "G/idt_b", "D/a", "D/b"} <= set(result.losses)
    model = ganzoo.load(tmp_path / "run")
    assert sorted(model.nets) == ["discriminator_a", "discriminator_b", "generator_a2b", "generator_b2a"]
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    assert model.translate(x, torch.tensor([0, 1, 1])).shape == x.shape


def test_cyclegan_resume_is_exact_with_its_image_pools(tmp_path):
    from ganzoo.trainer import Trainer

    settings = ["data.image_size=16", "data.batch_size=2", "data.num_train=8", "losses.pool_size=3",
                "train.checkpoint_every=2", "train.sample_every=0"]
    recipe = lambda steps: load_recipe(ROOT / "recipes" / "cyclegan_shapes.yaml", [*settings, f"train.steps={steps}"])  # noqa: E731
    Trainer(recipe(4), tmp_path / "straight", quiet=True).run()
    Trainer(recipe(2), tmp_path / "resumed", quiet=True).run()
    halfway = ganzoo.load(tmp_path / "resumed")
    assert halfway.step == 2
    Trainer(recipe(4), tmp_path / "resumed", resume=True, quiet=True).run()
    straight, resumed = ganzoo.load(tmp_path / "straight"), ganzoo.load(tmp_path / "resumed")
    for role, net in straight.nets.items():
        for (key, a), b in zip(net.state_dict().items(), resumed.nets[role].state_dict().values()):
            assert torch.equal(a, b), f"{role}.{key}"


def test_cyclegan_generator_step_leaves_discriminators_alone():
    recipe = load_recipe(ROOT / "recipes" / "cyclegan_shapes.yaml", ["losses.pool_size=0"])
    model = CycleGAN(recipe, ["red", "blue"])
    model.build()
    optimizers = model.build_optimizers()
    assert sorted(optimizers) == ["discriminators", "generators"]
    before = {r: [p.clone() for p in model.nets[r].parameters()] for r in model.nets}
    steps = []

    class Recorder:
        """A StepContext stand-in that notes which networks received gradients at each step."""

        def autocast(self):
            import contextlib

            return contextlib.nullcontext()

        def optimize(self, loss, *names):
            for opt in optimizers.values():
                opt.zero_grad(set_to_none=True)
            loss.backward()
            with_grads = sorted(r for r, net in model.nets.items() if any(p.grad is not None for p in net.parameters()))
            steps.append((list(names), with_grads))
            for n in names:
                optimizers[n].step()

    batch = {"a": torch.rand(2, 3, 32, 32) * 2 - 1, "b": torch.rand(2, 3, 32, 32) * 2 - 1}
    model.train_step(batch, 0, Recorder())
    # G first with both D frozen (no gradients computed for them), then D on detached fakes.
    assert steps == [(["generators"], ["generator_a2b", "generator_b2a"]), (["discriminators"], ["discriminator_a", "discriminator_b"])]
    assert all(p.requires_grad for net in model.nets.values() for p in net.parameters())  # unfrozen afterwards
    for role in ("generator_a2b", "generator_b2a", "discriminator_a", "discriminator_b"):
        assert any(not torch.equal(a, b) for a, b in zip(before[role], model.nets[role].parameters())), role


@pytest.mark.parametrize("identity", [0.5, 0.0])
def test_shared_batches_give_the_losses_and_gradients_of_separate_calls(monkeypatch, identity):
    """Generators (three calls: source, identity image and the other's fake share batches) and discriminators
    (real + fake) run on shared batches when their output for an image does not depend on its batch; the result
    must be that of separate calls, with and without the identity term."""
    import ganzoo_cyclegan.model as cyclegan_model
    from ganzoo.trainer import StepContext

    recipe = load_recipe(ROOT / "recipes" / "cyclegan_shapes.yaml", ["losses.pool_size=0", f"losses.identity={identity}"])
    model = CycleGAN(recipe, ["red", "blue"])
    torch.manual_seed(0)
    model.build()
    assert cyclegan_model.per_image(model.nets["generator_a2b"]) and cyclegan_model.per_image(model.nets["discriminator_a"])
    # fp64: the batched and separate calls are the same sums in another order, and in fp32 that order alone moves
    # gradients through the instance norms by up to 0.3 % of their largest value (measured without identity).
    for net in model.nets.values():
        net.double()
    batch = {"a": torch.rand(3, 3, 32, 32, dtype=torch.float64) * 2 - 1, "b": torch.rand(3, 3, 32, 32, dtype=torch.float64) * 2 - 1}

    def losses_and_grads():
        ctx = StepContext(torch.device("cpu"), "fp32", {})
        g_loss, fake_a, fake_b, logs = model.generator_loss(batch["a"], batch["b"], ctx)
        d_loss = model.discriminator_loss(model.nets["discriminator_a"], batch["a"], fake_a, ctx)
        for net in model.nets.values():
            net.zero_grad(set_to_none=True)
        (g_loss + d_loss).backward()
        grads = {f"{r}.{k}": p.grad.clone() for r, net in model.nets.items() for k, p in net.named_parameters() if p.grad is not None}
        return {**logs, "g": g_loss, "d": d_loss}, grads

    shared_logs, shared_grads = losses_and_grads()
    monkeypatch.setattr(cyclegan_model, "per_image", lambda net: False)
    separate_logs, separate_grads = losses_and_grads()
    assert shared_logs.keys() == separate_logs.keys() and shared_grads.keys() == separate_grads.keys()
    for k in shared_logs:
        torch.testing.assert_close(shared_logs[k], separate_logs[k], rtol=1e-10, atol=1e-12)
    for k in shared_grads:
        torch.testing.assert_close(shared_grads[k], separate_grads[k], rtol=1e-9, atol=1e-12)
    with_bn = CycleGAN(load_recipe(ROOT / "recipes" / "cyclegan_shapes.yaml",
                                   ["networks.discriminator_a.norm=batch"]), ["red", "blue"])
    with_bn.build()
    assert not cyclegan_model.per_image(with_bn.nets["discriminator_a"])  # batch statistics: calls stay separate


@pytest.mark.parametrize("mode", ["vanilla", "wgangp"])
def test_cyclegan_other_gan_modes_train(mode):
    from ganzoo.trainer import StepContext

    torch.manual_seed(0)
    recipe = load_recipe(ROOT / "recipes" / "cyclegan_shapes.yaml", [f"losses.gan_mode={mode}", "data.image_size=16"])
    model = CycleGAN(recipe, ["red", "blue"])
    model.build()
    ctx = StepContext(torch.device("cpu"), "fp32", model.build_optimizers())
    batch = {"a": torch.rand(2, 3, 16, 16) * 2 - 1, "b": torch.rand(2, 3, 16, 16) * 2 - 1}
    logs = model.train_step(batch, 0, ctx)
    assert all(torch.isfinite(v) for v in logs.values())


def test_cyclegan_needs_two_domains():
    recipe = recipe_from_dict({"model": "cyclegan", "data": {"domains": ["red", "green", "blue"]}}, check_data=False)
    with pytest.raises(RecipeError, match="exactly two domains"):
        CycleGAN(recipe, ["red", "green", "blue"])


def test_pix2pix_trains_two_steps(tmp_path):
    result = tiny_run(tmp_path, "pix2pix_shapes.yaml", "data.num_train=8", "data.batch_size=2")
    assert result.step == 2 and set(result.losses) == {"D/loss", "G/adv", "G/l1"}
    model = ganzoo.load(tmp_path / "run")
    assert model.network_specs["discriminator"]["kwargs"]["input_nc"] == 6


def test_pix2pix_keeps_dropout_on_at_test_time_without_side_effects():
    # Dropout lives in the 8ngf levels above the bottleneck: 6 levels (64 px) have one such level.
    recipe = load_recipe(ROOT / "recipes" / "pix2pix_shapes.yaml", ["networks.generator.num_downs=6", "data.image_size=64"])
    model = Pix2Pix(recipe, ["silhouette", "blue"])
    model.build()
    generator = model.nets["generator"]
    with torch.no_grad():  # give the batch norms non-trivial running statistics
        for _ in range(3):
            generator(torch.randn(4, 3, 64, 64))
    generator.eval()
    stats = {k: v.clone() for k, v in generator.state_dict().items()}
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    target = torch.tensor([1, 1, 0])
    one = model.translate(x, target, generator=torch.Generator().manual_seed(0))
    same = model.translate(x, target, generator=torch.Generator().manual_seed(0))
    other = model.translate(x, target, generator=torch.Generator().manual_seed(1))
    assert torch.equal(one, same) and not torch.equal(one[:2], other[:2])  # dropout is on, seeded by `generator`
    assert torch.equal(one[2], x[2])  # into the input domain: unchanged
    assert not generator.training and all(torch.equal(stats[k], v) for k, v in generator.state_dict().items())
    # Batch norm uses each image's own statistics: an image's output does not depend on its batch mates.
    alone = generate_as_official_test(generator, x[:1], torch.Generator().manual_seed(0))
    assert torch.equal(alone[0], one[0])


def test_official_recipes_validate_and_name_their_data():
    for name in ("cyclegan_horse2zebra.yaml", "pix2pix_facades.yaml", "cyclegan_shapes.yaml", "pix2pix_shapes.yaml"):
        recipe = load_recipe(ROOT / "recipes" / name)
        assert recipe.optim["lr"] == 2e-4 and tuple(recipe.optim["betas"]) == (0.5, 0.999)
    h2z = load_recipe(ROOT / "recipes" / "cyclegan_horse2zebra.yaml")
    official = {"gan_mode": "lsgan", "cycle_a": 10.0, "cycle_b": 10.0, "identity": 0.5, "pool_size": 50}
    assert {k: h2z.losses[k] for k in official} == official
    assert h2z.data.batch_size == 1 and h2z.optim["decay_start"] * 2 == h2z.train.steps
    from ganzoo.data_stream import build_dataset

    with pytest.raises(DataError, match="horse2zebra.zip"):
        build_dataset(load_recipe(ROOT / "recipes" / "cyclegan_horse2zebra.yaml", ["data.root=/nonexistent/horse2zebra"]), "train")
    with pytest.raises(GanzooError, match="facades.tar.gz"):
        build_dataset(load_recipe(ROOT / "recipes" / "pix2pix_facades.yaml", ["data.root=/nonexistent/facades"]), "train")
