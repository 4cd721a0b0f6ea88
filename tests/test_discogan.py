"""DiscoGAN: the official layouts, the official iteration (losses, curriculum, alternation), the [0, 1] boundary,
inference, the recipes and the data-folder command.

The official facts are data here: every state_dict key and shape of SKTBrain/DiscoGAN's ``Generator()``,
``Generator(extra_layers=True)`` and ``Discriminator()`` (64 px, as PyTorch builds them today: with
``num_batches_tracked``, which files saved in 2017 lack), and its training iteration, transcribed below with the
official criteria (``BCELoss`` on the sigmoid, ``HingeEmbeddingLoss`` for feature matching, ``MSELoss``) and the
official habit of back-propagating one loss through all four networks and stepping one optimiser. The official
repository publishes no trained weights, so there is nothing to convert.
"""

from __future__ import annotations

import copy
import itertools
import random
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

import ganzoo
from ganzoo import checkpoint
from ganzoo.errors import RecipeError
from ganzoo.recipe import load_recipe
from ganzoo.recipe_names import find_recipe
from ganzoo.step_context import StepContext
from ganzoo.trainer import Trainer
from ganzoo_discogan.folders import resize_like_opencv, thicken_lines
from ganzoo_discogan.model import DiscoGAN, from_network_range, to_network_range
from ganzoo_discogan.networks import Discriminator, Generator, init_as_official
from tests import families


def _bn(prefix: str, c: int) -> list[tuple[str, tuple[int, ...]]]:
    return [(f"{prefix}.weight", (c,)), (f"{prefix}.bias", (c,)), (f"{prefix}.running_mean", (c,)),
            (f"{prefix}.running_var", (c,)), (f"{prefix}.num_batches_tracked", ())]


# The official modules' state_dict()s, in order (keys and shapes read off the official model.py's classes).
OFFICIAL_GENERATOR = [
    ("main.0.weight", (64, 3, 4, 4)),
    ("main.2.weight", (128, 64, 4, 4)), *_bn("main.3", 128),
    ("main.5.weight", (256, 128, 4, 4)), *_bn("main.6", 256),
    ("main.8.weight", (512, 256, 4, 4)), *_bn("main.9", 512),
    ("main.11.weight", (512, 256, 4, 4)), *_bn("main.12", 256),
    ("main.14.weight", (256, 128, 4, 4)), *_bn("main.15", 128),
    ("main.17.weight", (128, 64, 4, 4)), *_bn("main.18", 64),
    ("main.20.weight", (64, 3, 4, 4)),
]
OFFICIAL_GENERATOR_EXTRA_LAYERS = [
    ("main.0.weight", (64, 3, 4, 4)),
    ("main.2.weight", (128, 64, 4, 4)), *_bn("main.3", 128),
    ("main.5.weight", (256, 128, 4, 4)), *_bn("main.6", 256),
    ("main.8.weight", (512, 256, 4, 4)), *_bn("main.9", 512),
    ("main.11.weight", (100, 512, 4, 4)), *_bn("main.12", 100),
    ("main.14.weight", (100, 512, 4, 4)), *_bn("main.15", 512),
    ("main.17.weight", (512, 256, 4, 4)), *_bn("main.18", 256),
    ("main.20.weight", (256, 128, 4, 4)), *_bn("main.21", 128),
    ("main.23.weight", (128, 64, 4, 4)), *_bn("main.24", 64),
    ("main.26.weight", (64, 3, 4, 4)),
]
OFFICIAL_DISCRIMINATOR = [
    ("conv1.weight", (64, 3, 4, 4)),
    ("conv2.weight", (128, 64, 4, 4)), *_bn("bn2", 128),
    ("conv3.weight", (256, 128, 4, 4)), *_bn("bn3", 256),
    ("conv4.weight", (512, 256, 4, 4)), *_bn("bn4", 512),
    ("conv5.weight", (1, 512, 4, 4)),
]
#: parameters of the official modules (no biases anywhere)
OFFICIAL_PARAMETERS = {"generator": 5_513_856, "generator_extra_layers": 7_153_480, "discriminator": 2_765_568}


def layout(net: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(key, tuple(t.shape)) for key, t in net.state_dict().items()]


@pytest.mark.parametrize("build, official, count", [
    (lambda: Generator(), OFFICIAL_GENERATOR, "generator"),
    (lambda: Generator(extra_layers=True), OFFICIAL_GENERATOR_EXTRA_LAYERS, "generator_extra_layers"),
    (lambda: Discriminator(), OFFICIAL_DISCRIMINATOR, "discriminator"),
], ids=["generator", "generator_extra_layers", "discriminator"])
def test_state_dict_layout_equals_the_official_modules(build, official, count):
    with torch.device("meta"):
        net = build()
    assert layout(net) == official
    assert sum(p.numel() for p in net.parameters()) == OFFICIAL_PARAMETERS[count]


def test_networks_shapes_ranges_and_features():
    g, d = Generator(conv_dim=4, image_size=32), Discriminator(conv_dim=4, image_size=32)
    x = torch.rand(3, 3, 32, 32)
    y = g(x)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1  # the sigmoid: images in [0, 1]
    logits, feats = d(x)
    assert logits.shape == (3,)
    assert [tuple(f.shape) for f in feats] == [(3, 8, 8, 8), (3, 16, 4, 4), (3, 32, 2, 2)]
    with pytest.raises(ValueError, match="multiple of 16"):
        Generator(image_size=40)


def test_initialisation_is_pytorch_0_1_defaults():
    torch.manual_seed(0)
    g = Generator(conv_dim=8, image_size=16)
    g.apply(init_as_official)
    up = g.main[11]  # ConvTranspose2d(64, 32): the 2017 bound used its 64 input channels, today's its 32 outputs
    assert isinstance(up, nn.ConvTranspose2d)
    bound = 1 / (64 * 16) ** 0.5
    assert up.weight.abs().max() <= bound and up.weight.abs().max() > 0.9 * bound
    bn = g.main[3]
    assert 0 <= bn.weight.min() and bn.weight.max() <= 1 and bn.weight.std() > 0.1 and not bn.bias.any()


# --------------------------------------------------------------------------- the official iteration


def official_iteration(nets: dict, optim_gen, optim_dis, A, B, iters, *, curriculum, starting_rate, default_rate):
    """One iteration of the official training loop (images in [0, 1]), with its criteria."""
    generator_B, generator_A = nets["generator_a2b"], nets["generator_b2a"]  # generator_B maps A to B
    discriminator_A, discriminator_B = nets["discriminator_a"], nets["discriminator_b"]
    for net in nets.values():
        net.zero_grad()

    def official_d(d, x):  # the official discriminator ends in a sigmoid
        logit, feats = d(x)
        return torch.sigmoid(logit), feats

    def gan_loss(dis_real, dis_fake):
        bce = nn.BCELoss()
        dis = bce(dis_real, torch.ones_like(dis_real)) * 0.5 + bce(dis_fake, torch.zeros_like(dis_fake)) * 0.5
        return dis, bce(dis_fake, torch.ones_like(dis_fake))

    def fm_loss(real_feats, fake_feats):
        total = 0
        for real, fake in zip(real_feats, fake_feats):
            l2 = (real.mean(0) - fake.mean(0)) * (real.mean(0) - fake.mean(0))
            total += nn.HingeEmbeddingLoss()(l2, torch.ones(l2.size()))
        return total

    AB, BA = generator_B(A), generator_A(B)
    ABA, BAB = generator_A(AB), generator_B(BA)
    recon_loss_A, recon_loss_B = nn.MSELoss()(ABA, A), nn.MSELoss()(BAB, B)
    A_dis_real, A_feats_real = official_d(discriminator_A, A)
    A_dis_fake, A_feats_fake = official_d(discriminator_A, BA)
    dis_loss_A, gen_loss_A = gan_loss(A_dis_real, A_dis_fake)
    fm_loss_A = fm_loss(A_feats_real, A_feats_fake)
    B_dis_real, B_feats_real = official_d(discriminator_B, B)
    B_dis_fake, B_feats_fake = official_d(discriminator_B, AB)
    dis_loss_B, gen_loss_B = gan_loss(B_dis_real, B_dis_fake)
    fm_loss_B = fm_loss(B_feats_real, B_feats_fake)
    rate = starting_rate if iters < curriculum else default_rate
    gen_loss_A_total = (gen_loss_B * 0.1 + fm_loss_B * 0.9) * (1. - rate) + recon_loss_A * rate
    gen_loss_B_total = (gen_loss_A * 0.1 + fm_loss_A * 0.9) * (1. - rate) + recon_loss_B * rate
    if iters % 3 == 0:
        (dis_loss_A + dis_loss_B).backward()
        optim_dis.step()
    else:
        (gen_loss_A_total + gen_loss_B_total).backward()
        optim_gen.step()
    return {"G/gan_a2b": gen_loss_B, "G/gan_b2a": gen_loss_A, "G/fm_a2b": fm_loss_B, "G/fm_b2a": fm_loss_A,
            "G/rec_a": recon_loss_A, "G/rec_b": recon_loss_B, "D/a": dis_loss_A, "D/b": dis_loss_B}


def tiny_model(*extra: str) -> DiscoGAN:
    recipe = families.tiny_recipe("discogan", *extra)
    model = DiscoGAN(recipe, list(recipe.data.domains))
    model.build()
    return model


def state(nets: dict) -> dict[str, torch.Tensor]:
    return {f"{role}.{k}": v.clone() for role, net in nets.items() for k, v in net.state_dict().items()}


def test_train_steps_equal_the_official_iterations():
    # A curriculum of 2 iterations: r = 0.01 for iterations 0 and 1, 0.5 from 2 on. Iterations 0 and 3 step D.
    model = tiny_model("losses.gan_curriculum=2", "networks.generator_a2b.conv_dim=8", "networks.discriminator_b.conv_dim=8",
                       "optim.lr=2e-4")  # the official rate, which the reference optimisers below use
    # fp64: Adam divides by a gradient's running size, so a gradient near zero passes its float noise on to the
    # weight at up to lr per step. In fp32 on an AVX2-only CPU one weight of 32,768 (a different one each run)
    # came out 7e-6 apart from the official loop's.
    for net in model.nets.values():
        net.double()
    reference = {role: copy.deepcopy(net) for role, net in model.nets.items()}
    official_gen = torch.optim.Adam(itertools.chain(reference["generator_b2a"].parameters(), reference["generator_a2b"].parameters()),
                                    lr=2e-4, betas=(0.5, 0.999), weight_decay=0.00001)
    official_dis = torch.optim.Adam(itertools.chain(reference["discriminator_a"].parameters(), reference["discriminator_b"].parameters()),
                                    lr=2e-4, betas=(0.5, 0.999), weight_decay=0.00001)
    ctx = StepContext(torch.device("cpu"), "fp32", model.build_optimizers())
    g = torch.Generator().manual_seed(3)
    generators, discriminators = ("generator_a2b", "generator_b2a"), ("discriminator_a", "discriminator_b")
    for step in range(5):
        a, b = (torch.rand(4, 3, 16, 16, generator=g, dtype=torch.float64) * 2 - 1 for _ in range(2))
        before = {role: copy.deepcopy(net.state_dict()) for role, net in model.nets.items()}
        ours = model.train_step({"a": a, "b": b}, step, ctx)
        theirs = official_iteration(reference, official_gen, official_dis, (a + 1) / 2, (b + 1) / 2, step,
                                    curriculum=2, starting_rate=0.01, default_rate=0.5)
        assert ours.keys() == theirs.keys()
        for key in ours:
            torch.testing.assert_close(ours[key].double(), theirs[key].detach(), rtol=1e-6, atol=1e-7, msg=key)  # reduced in fp32
        mine, official = state(model.nets), state(reference)
        for key in official:
            torch.testing.assert_close(mine[key], official[key], rtol=1e-5, atol=1e-6, msg=f"step {step}: {key}")  # fp64: measured max 1.5e-7
        # Which side stepped: the discriminators on iterations 0 and 3, the generators on the others.
        stepped = {role for role, net in model.nets.items()
                   if any(not torch.equal(p, before[role][name]) for name, p in net.named_parameters())}
        assert stepped == set(discriminators if step % 3 == 0 else generators), step
    assert [model.reconstruction_rate(s) for s in (0, 1, 2, 9999)] == [0.01, 0.01, 0.5, 0.5]
    assert [s for s in range(10) if model.discriminator_turn(s)] == [0, 3, 6, 9]


def test_official_defaults():
    recipe = families.tiny_recipe("discogan")
    defaults = DiscoGAN.default_recipe()
    assert defaults["data"] == {"image_size": 64, "batch_size": 64} and defaults["train"]["ema"] == 0.0
    o, l = DiscoGAN.OptimConfig(), DiscoGAN.LossConfig()
    assert (o.lr, tuple(o.betas), o.weight_decay, o.update_interval, o.schedule) == (2e-4, (0.5, 0.999), 1e-5, 3, "constant")
    assert (l.gan_mode, l.gan, l.feature_matching, l.starting_rate, l.default_rate, l.gan_curriculum) == \
        ("vanilla", 0.1, 0.9, 0.01, 0.5, 10000)
    model = DiscoGAN(recipe, ["red", "blue"])
    model.build()
    assert set(model.build_optimizers()) == {"generators", "discriminators"}
    # moving averages of the generators only, kept when train.ema > 0 (the trainer drops them at the official 0)
    assert set(model.ema_nets) == {"generator_a2b", "generator_b2a"}


def test_a_critic_loss_and_a_third_domain_are_recipe_errors():
    recipe = families.tiny_recipe("discogan", "losses.gan_mode=wgangp")
    with pytest.raises(RecipeError, match="losses.gan_mode: wgangp is a critic loss"):
        DiscoGAN(recipe, ["red", "blue"])
    with pytest.raises(RecipeError, match="exactly two domains"):
        DiscoGAN(families.tiny_recipe("discogan"), ["red", "green", "blue"])


# --------------------------------------------------------------------------- the [0, 1] boundary and inference


def test_translate_maps_ganzoo_images_through_the_networks_unit_range():
    model = tiny_model()
    nets = model.inference_nets()  # what translate uses: the generators' EMA copies (built with the model)
    assert DiscoGAN.network_range == (0.0, 1.0)
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    assert torch.allclose(from_network_range(to_network_range(x)), x)
    for net in nets.values():  # batch statistics that differ from a fresh network's
        net(torch.rand(4, 3, 16, 16))
    buffers = state(nets)
    out = model.translate(x, torch.tensor([1, 0, 1]))
    assert out.shape == x.shape and -1 <= out.min() and out.max() <= 1
    g = nets["generator_a2b"].eval()
    expected = g(to_network_range(x[[0, 2]])) * 2 - 1
    g.train()
    torch.testing.assert_close(out[[0, 2]], expected)
    # eval mode: one image alone translates as it does within a batch; nothing is updated; modes come back
    torch.testing.assert_close(model.translate(x[:1], torch.tensor([1])), out[:1])
    assert all(torch.equal(v, buffers[k]) for k, v in state(nets).items())
    assert all(m.training for net in nets.values() for m in net.modules())


# --------------------------------------------------------------------------- recipes


RECIPES = ["discogan_shapes", "discogan_edges2shoes", "discogan_celeba_male", "discogan_celeba_hair"]


@pytest.mark.parametrize("name", RECIPES)
def test_recipes_ship_with_the_package_and_validate(name):
    path = find_recipe(name)
    assert path.parent.name == "recipes" and path.parent.parent.name == "ganzoo_discogan"
    recipe = load_recipe(path)
    assert recipe.model == "discogan"
    if name == "discogan_shapes":
        assert recipe.data.name == "shapes" and list(recipe.data.domains) == ["red", "blue"] and recipe.train.ema == 0.995
        assert recipe.train.channels_last  # the faster layout on a CPU; official layout NCHW
        return
    # the official settings, on the unaligned folders (the cyclegan plugin's dataset, by name); no moving average
    assert recipe.train.ema == 0.0 and not recipe.train.channels_last
    data = recipe.data.model_dump()
    assert (data["name"], data["image_size"], data["load_size"], data["flip"], data["batch_size"]) == ("unaligned", 64, 64, False, 64)
    assert recipe.losses == {"gan_mode": "vanilla", "gan": 0.1, "feature_matching": 0.9, "starting_rate": 0.01,
                             "default_rate": 0.5, "gan_curriculum": 10000}
    assert {k: recipe.optim[k] for k in ("lr", "betas", "weight_decay", "update_interval", "schedule")} == \
        {"lr": 2e-4, "betas": [0.5, 0.999], "weight_decay": 1e-5, "update_interval": 3, "schedule": "constant"}
    assert all(spec["conv_dim"] == 64 for spec in recipe.networks.values())
    assert "ganzoo discogan-folders" in data["download_hint"]


def test_missing_official_data_says_how_to_build_it(tmp_path):
    from ganzoo.errors import DataError
    from ganzoo.trainer import build_dataset

    recipe = load_recipe(find_recipe("discogan_edges2shoes"), [f"data.root={tmp_path / 'nothing'}"])
    with pytest.raises(DataError, match="ganzoo discogan-folders edges"):
        build_dataset(recipe, "train")


# --------------------------------------------------------------------------- ganzoo discogan-folders


def cli(*args: str):
    from typer.testing import CliRunner

    from ganzoo.cli import app

    return CliRunner().invoke(app, list(args))


def pixels(path: Path) -> torch.Tensor:
    import numpy as np

    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).copy())


def test_edge_preprocessing_matches_the_official_loader():
    import numpy as np

    edges = np.full((8, 8, 3), 255, np.uint8)
    edges[4, 4] = 0
    thick = thicken_lines(edges)
    assert (thick[3:6, 3:6] == 0).all() and (thick == 0).sum() == 27  # one black pixel -> a 3x3 block (per channel)
    # cv2.resize's bilinear at a 4x reduction: each output is the mean of input pixels 4i+1 and 4i+2 on both axes
    ramp = np.arange(64, dtype=np.uint8).reshape(8, 8)[:, :, None].repeat(3, 2)
    small = resize_like_opencv(ramp, 2)
    expected = [[ramp[[4 * i + 1, 4 * i + 2]][:, [4 * j + 1, 4 * j + 2], 0].mean() for j in range(2)] for i in range(2)]
    assert (small[:, :, 0] == np.round(expected)).all()


def test_edges_folders_split_and_preprocess_as_officially(tmp_path):
    source = tmp_path / "edges2shoes"
    for split, count in (("train", 5), ("val", 2)):
        (source / split).mkdir(parents=True)
        for i in range(count):
            image = Image.new("RGB", (16, 8), (255, 255, 255))
            image.paste((10 * i, 100, 200), (8, 0, 16, 8))  # the photo half
            image.putpixel((3, 3), (0, 0, 0))  # one edge pixel in the edge half
            image.save(source / split / f"{i + 1}_AB.png")
    out = tmp_path / "folders"
    result = cli("discogan-folders", "edges", str(source), str(out), "--size", "0", "--workers", "1")
    assert result.exit_code == 0, result.output
    names = {side: sorted(p.name for p in (out / side).iterdir()) for side in ("trainA", "trainB", "testA", "testB")}
    # disjoint training halves (first half edges, the rest photos); both test sides from every val file
    assert names == {"trainA": ["1_AB.png", "2_AB.png"], "trainB": ["3_AB.png", "4_AB.png", "5_AB.png"],
                     "testA": ["1_AB.png", "2_AB.png"], "testB": ["1_AB.png", "2_AB.png"]}
    edge = pixels(out / "trainA" / "1_AB.png")
    assert edge.shape == (8, 8, 3) and (edge[2:5, 2:5] == 0).all() and (edge == 0).sum() == 27
    assert (pixels(out / "trainB" / "4_AB.png") == torch.tensor([30, 100, 200], dtype=torch.uint8)).all()
    resized = tmp_path / "resized"
    assert cli("discogan-folders", "edges", str(source), str(resized), "--size", "4", "--workers", "1").exit_code == 0
    assert pixels(resized / "testB" / "2_AB.png").shape == (4, 4, 3)

    from ganzoo.plugins import get_registry

    unaligned = get_registry().get("datasets", "unaligned")
    data = unaligned(root=str(resized), split="train", image_size=4, load_size=4, flip=False, domains=["edges", "shoes"])
    assert len(data) == 5 and data.labels == [0, 0, 1, 1, 1]
    assert data.load(0, random.Random(0)).shape == (3, 4, 4)


def write_celeba(root: Path) -> None:
    # 8 images; attributes Male, Blond_Hair, Black_Hair
    rows = [("000001.jpg", 1, -1, 1), ("000002.jpg", -1, 1, -1), ("000003.jpg", -1, -1, 1), ("000004.jpg", 1, -1, -1),
            ("000005.jpg", -1, 1, -1), ("000006.jpg", -1, -1, 1), ("000007.jpg", 1, 1, -1), ("000008.jpg", -1, 1, -1)]
    (root / "img_align_celeba").mkdir(parents=True)
    lines = [str(len(rows)), "Male Blond_Hair Black_Hair"]
    for name, *values in rows:
        lines.append(f"{name}  " + " ".join(f"{v:2d}" for v in values))
        Image.new("RGB", (9, 11), (int(name[4:6]) * 20, 0, 0)).save(root / "img_align_celeba" / name)
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")


def test_celeba_folders_select_attributes_as_officially(tmp_path):
    source = tmp_path / "CelebA"
    write_celeba(source)

    def sides(out: Path) -> dict[str, list[str]]:
        return {side: sorted(p.stem for p in (out / side).iterdir()) for side in ("trainA", "trainB", "testA", "testB")}

    male = tmp_path / "male"
    result = cli("discogan-folders", "celeba", str(source), str(male), "--style-a", "Male", "--n-test", "1", "--workers", "1")
    assert result.exit_code == 0, result.output
    # A = Male, B = not Male; the last --n-test of each side (in the attribute file's order) are the test images
    assert sides(male) == {"trainA": ["000001", "000004"], "testA": ["000007"],
                           "trainB": ["000002", "000003", "000005", "000006"], "testB": ["000008"]}
    assert pixels(male / "trainA" / "000001.png").shape == (64, 64, 3)  # squeezed to 64x64, as officially

    hair = tmp_path / "hair"
    result = cli("discogan-folders", "celeba", str(source), str(hair), "--style-a", "Blond_Hair", "--style-b", "Black_Hair",
                 "--constraint", "Male", "--constraint-type", "-1", "--n-test", "1", "--size", "0", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert sides(hair) == {"trainA": ["000002", "000005"], "testA": ["000008"], "trainB": ["000003"], "testB": ["000006"]}
    assert (hair / "trainB" / "000003.jpg").is_symlink()  # --size 0 links the sources

    for args, fragment in ((["--style-a", "Blond_Hair", "--constraint", "Male"], "--constraint needs --constraint-type"),
                           (["--style-a", "Blonde_Hair"], 'Did you mean "Blond_Hair"?'),
                           ([], "needs --style-a")):
        result = cli("discogan-folders", "celeba", str(source), str(tmp_path / "bad"), *args, "--n-test", "1")
        assert result.exit_code == 2 and fragment in result.output, result.output
    result = cli("discogan-folders", "edgez", str(source), str(tmp_path / "bad2"))
    assert result.exit_code == 2 and 'Did you mean "edges"?' in result.output


def test_moving_averages_of_the_generators_are_saved_and_translate(tmp_path):
    """train.ema > 0 (the shapes recipe): EMA copies of both generators, not of the discriminators, are saved beside
    the trained networks, and the loaded model translates with them."""
    trainer = Trainer(families.tiny_recipe("discogan", "train.ema=0.5", "train.steps=4"), tmp_path / "run", quiet=True)
    trainer.run()
    folder = checkpoint.resolve_model_folder(tmp_path / "run")
    assert sorted(p.name for p in folder.glob("*.ema.safetensors")) == \
        ["generator_a2b.ema.safetensors", "generator_b2a.ema.safetensors"]
    model = ganzoo.load(str(tmp_path / "run"))
    live, ema = model.nets["generator_a2b"], model.inference_nets()["generator_a2b"]
    assert ema is not live
    assert any(not torch.equal(a, b) for a, b in zip(ema.parameters(), live.parameters()))
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        ema.eval()
        expected = from_network_range(ema(to_network_range(images)))
    assert torch.allclose(model.translate(images, torch.tensor([1, 1])), expected)
