"""UNIT (plugins/ganzoo_unit): the official networks' keys, shapes and sizes; the official losses, schedule and
defaults; and the converter for official ``gen_*.pt`` / ``dis_*.pt`` files, checked against a reference forward
written here from the raw official-layout tensors (not with our modules).

Facts from mingyuliutw/UNIT (networks.py, trainer.py, utils.py, configs/unit_*.yaml) are data below. Official-size
networks are only built on the meta device.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import ganzoo
from ganzoo.errors import CheckpointError, GanzooError, RecipeError
from ganzoo_unit.networks import LayerNorm, MultiScaleDiscriminator, VAEGenerator
from tests import families

#: Official VAEGen(3, gen) with every config's gen (dim 64, n_downsample 2, n_res 4): parameters, state-dict entries
#: and representative keys with shapes.
OFFICIAL_GENERATOR_PARAMETERS = 11_140_483  # encoder 5,385,856 + decoder 5,754,627
OFFICIAL_GENERATOR_KEYS = 48
OFFICIAL_GENERATOR_SHAPES = {
    "enc.model.0.conv.weight": (64, 3, 7, 7),
    "enc.model.1.conv.weight": (128, 64, 4, 4),
    "enc.model.2.conv.weight": (256, 128, 4, 4),
    "enc.model.3.model.3.model.1.conv.weight": (256, 256, 3, 3),
    "dec.model.0.model.0.model.0.conv.bias": (256,),
    "dec.model.2.conv.weight": (128, 256, 5, 5),
    "dec.model.2.norm.gamma": (128,),
    "dec.model.2.norm.beta": (128,),
    "dec.model.4.conv.weight": (64, 128, 5, 5),
    "dec.model.4.norm.gamma": (64,),
    "dec.model.5.conv.weight": (3, 64, 7, 7),
    "dec.model.5.conv.bias": (3,),
}
#: Official MsImageDis(3, dis) with every config's dis (dim 64, n_layer 4, num_scales 3, norm none).
OFFICIAL_DISCRIMINATOR_PARAMETERS = 8_271_171  # 3 scales x 2,757,057
OFFICIAL_DISCRIMINATOR_KEYS = 30
OFFICIAL_DISCRIMINATOR_SHAPES = {
    "cnns.0.0.conv.weight": (64, 3, 4, 4),
    "cnns.1.1.conv.weight": (128, 64, 4, 4),
    "cnns.2.3.conv.weight": (512, 256, 4, 4),
    "cnns.2.4.weight": (1, 512, 1, 1),
    "cnns.2.4.bias": (1,),
}
#: configs/unit_summer2winter_yosemite256_folder.yaml (the losses of every config; gta2city alone has vgg_w 1)
OFFICIAL_LOSSES = {"gan_w": 1.0, "recon_x_w": 10.0, "recon_kl_w": 0.01, "recon_x_cyc_w": 10.0, "recon_kl_cyc_w": 0.01,
                   "vgg_w": 0.0, "gan_mode": "lsgan"}
OFFICIAL_OPTIM = {"lr": 1e-4, "betas": [0.5, 0.999], "weight_decay": 1e-4, "lr_policy": "step", "step_size": 100_000,
                  "gamma": 0.5}


def _count(net) -> int:
    return sum(p.numel() for p in net.parameters())


def test_official_networks_have_the_official_keys_shapes_and_sizes():
    with torch.device("meta"):
        generator, discriminator = VAEGenerator(), MultiScaleDiscriminator()
    g, d = generator.state_dict(), discriminator.state_dict()
    assert _count(generator) == OFFICIAL_GENERATOR_PARAMETERS and len(g) == OFFICIAL_GENERATOR_KEYS
    assert _count(discriminator) == OFFICIAL_DISCRIMINATOR_PARAMETERS and len(d) == OFFICIAL_DISCRIMINATOR_KEYS
    assert {k: tuple(g[k].shape) for k in OFFICIAL_GENERATOR_SHAPES} == OFFICIAL_GENERATOR_SHAPES
    assert {k: tuple(d[k].shape) for k in OFFICIAL_DISCRIMINATOR_SHAPES} == OFFICIAL_DISCRIMINATOR_SHAPES
    # the official VAEGen has no buffers (instance norm without running statistics)
    assert not list(generator.buffers()) and not list(discriminator.buffers())


def test_the_two_vaes_share_no_weights_as_in_the_official_pytorch_code():
    # The current official code builds gen_a and gen_b as two separate VAEGen: the latent space is shared through
    # the losses only, and a UNIT model holds two full generators.
    model = _tiny_model()
    a, b = model.nets["generator_a"], model.nets["generator_b"]
    assert not {id(p) for p in a.parameters()} & {id(p) for p in b.parameters()}


def test_layer_norm_is_the_official_one():
    norm = LayerNorm(3)
    x = torch.randn(2, 3, 4, 5)
    flat = x.reshape(2, -1)
    mean, std = flat.mean(1), flat.std(1, unbiased=True)  # eps added to the std, not the variance
    expected = (x - mean.view(2, 1, 1, 1)) / (std.view(2, 1, 1, 1) + 1e-5)
    expected = expected * norm.gamma.view(1, 3, 1, 1) + norm.beta.view(1, 3, 1, 1)
    assert torch.allclose(norm(x), expected, atol=1e-6)
    assert ((norm.gamma >= 0) & (norm.gamma <= 1)).all() and (norm.beta == 0).all()


def test_the_defaults_are_the_official_settings():
    from ganzoo.recipe import load_recipe
    from ganzoo.recipe_names import find_recipe

    cls = families.model_class("unit")
    assert cls.pairwise and not cls.paired and cls.license == "cc-by-nc-sa-4.0"
    assert cls.recipes == {"small": "unit_shapes", "official": "unit_summer2winter_yosemite256"}
    recipe = load_recipe(find_recipe("unit_summer2winter_yosemite256"), ["data.num_workers=0"])
    assert {k: recipe.losses[k] for k in OFFICIAL_LOSSES} == OFFICIAL_LOSSES
    assert {k: recipe.optim[k] for k in OFFICIAL_OPTIM} == OFFICIAL_OPTIM
    assert recipe.data.image_size == 256 and recipe.data.batch_size == 1 and recipe.train.steps == 1_000_000
    assert recipe.data.name == "unaligned" and recipe.train.ema == 0.0
    defaults = cls.default_recipe()
    assert defaults["networks"]["generator_a"] == {"name": "unit.vae_generator", "dim": 64, "n_downsample": 2, "n_res": 4,
                                                   "activ": "relu", "pad_type": "reflect"}
    assert defaults["networks"]["discriminator_b"] == {"name": "unit.ms_discriminator", "dim": 64, "n_layer": 4,
                                                       "num_scales": 3, "norm": "none", "activ": "lrelu", "pad_type": "reflect"}


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_step_decay_follows_the_official_step_lr():
    model = _tiny_model("optim.step_size=3")
    # official loop: StepLR(step_size=3, gamma=0.5), scheduler.step() before every iteration
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
    official = []
    for _ in range(10):
        scheduler.step()
        official.append(optimizer.param_groups[0]["lr"])
    assert [model.step_decay(i) for i in range(10)] == official


def test_the_trained_optimisers_step_at_the_decayed_rate(tmp_path, monkeypatch):
    from ganzoo.step_context import StepContext
    from ganzoo.trainer import Trainer

    seen = []
    original = StepContext.optimize

    def recording(self, loss, *roles):
        seen.append([self.optimizers[r].param_groups[0]["lr"] for r in roles])
        return original(self, loss, *roles)

    monkeypatch.setattr(StepContext, "optimize", recording)
    recipe = families.tiny_recipe("unit", "optim.step_size=1", "optim.gamma=0.5", "train.steps=2",
                                  "train.checkpoint_every=2")
    Trainer(recipe, tmp_path / "run", quiet=True).run()
    lr = recipe.optim["lr"]
    assert seen[-4:] == [[lr * 0.5]] * 2 + [[lr * 0.25]] * 2  # iterations 0 and 1: D then G each


def test_losses_are_the_official_objective():
    from ganzoo.api import StepContext

    model = _tiny_model()
    ctx = StepContext(torch.device("cpu"), "fp32", {})
    x_a, x_b = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    torch.manual_seed(3)
    loss, logs = model.generator_loss(x_a, x_b, ctx)
    # The official gen_update, written out (same noise draws: codes of a and b, then the re-encoded codes).
    ga, gb, da, db = (model.nets[r] for r in ("generator_a", "generator_b", "discriminator_a", "discriminator_b"))
    torch.manual_seed(3)
    h_a, h_b = ga.enc(x_a), gb.enc(x_b)
    n_a, n_b = torch.randn_like(h_a), torch.randn_like(h_b)
    x_a_recon, x_b_recon = ga.dec(h_a + n_a), gb.dec(h_b + n_b)
    x_ba, x_ab = ga.dec(h_b + n_b), gb.dec(h_a + n_a)
    h_b_recon, h_a_recon = ga.enc(x_ba), gb.enc(x_ab)
    x_aba = ga.dec(h_a_recon + torch.randn_like(h_a_recon))
    x_bab = gb.dec(h_b_recon + torch.randn_like(h_b_recon))
    l1 = lambda x, y: (x - y).abs().mean()  # noqa: E731
    kl = lambda h: h.pow(2).mean()  # noqa: E731
    gan = lambda outs: sum(((o - 1) ** 2).mean() for o in outs)  # noqa: E731
    official = (1 * gan(da(x_ba)) + 1 * gan(db(x_ab)) + 10 * l1(x_a_recon, x_a) + 0.01 * kl(h_a)
                + 10 * l1(x_b_recon, x_b) + 0.01 * kl(h_b) + 10 * l1(x_aba, x_a) + 0.01 * kl(h_a_recon)
                + 10 * l1(x_bab, x_b) + 0.01 * kl(h_b_recon))
    assert torch.allclose(loss, official, rtol=1e-5, atol=1e-5)
    assert set(logs) == {"adv_a", "adv_b", "recon_x_a", "recon_x_b", "kl_a", "kl_b", "cyc_x_a", "cyc_x_b",
                         "kl_cyc_aba", "kl_cyc_bab"}
    torch.manual_seed(4)
    d_loss, _ = model.discriminator_loss(x_a, x_b, ctx)
    torch.manual_seed(4)
    with torch.no_grad():
        h_a, h_b = ga.enc(x_a), gb.enc(x_b)
        fake_ba, fake_ab = ga.dec(h_b + torch.randn_like(h_b)), gb.dec(h_a + torch.randn_like(h_a))
    official_d = sum((f ** 2).mean() + ((r - 1) ** 2).mean() for f, r in zip(da(fake_ba), da(x_a)))
    official_d = official_d + sum((f ** 2).mean() + ((r - 1) ** 2).mean() for f, r in zip(db(fake_ab), db(x_b)))
    assert torch.allclose(d_loss, official_d, rtol=1e-5, atol=1e-6)


def test_the_generator_step_shares_batches_without_changing_losses_or_gradients(monkeypatch):
    """Six encoder/decoder calls instead of eight (inputs whose source is ready share a call), noises drawn in the
    official order: the same losses and gradients as every call on its own."""
    import ganzoo_unit.model as unit_model
    from tests.shared_batches import assert_shared_equals_separate

    model = _tiny_model()
    assert unit_model.per_image(model.nets["generator_a"])  # else nothing would be shared
    assert_shared_equals_separate(model, unit_model, monkeypatch)


def test_training_steps_encoding_once_for_both_steps_equal_separate_calls(monkeypatch):
    """train_step encodes a and b once for the D and G steps (and shares batches): three iterations in fp64 give
    the weights of every call on its own, as the official code runs them."""
    import copy

    import ganzoo_unit.model as unit_model
    from ganzoo.api import StepContext

    base = _tiny_model()
    for net in base.nets.values():
        net.double()
    gen = torch.Generator().manual_seed(0)
    batch = {k: torch.rand(2, 3, 16, 16, generator=gen, dtype=torch.float64) * 2 - 1 for k in ("a", "b")}

    def train(shared: bool):
        monkeypatch.setattr(unit_model, "per_image", lambda net: shared)
        model = copy.deepcopy(base)
        ctx = StepContext(torch.device("cpu"), "fp32", model.build_optimizers())
        encodes = []
        hooks = [model.nets[r].enc.register_forward_hook(lambda *_: encodes.append(1)) for r in ("generator_a", "generator_b")]
        torch.manual_seed(1)
        for step in range(3):
            model.train_step(batch, step, ctx)
        for hook in hooks:
            hook.remove()
        return {f"{r}.{k}": p.detach().clone() for r, net in model.nets.items() for k, p in net.named_parameters()}, len(encodes)

    (shared, shared_encodes), (separate, separate_encodes) = train(True), train(False)
    assert (shared_encodes, separate_encodes) == (3 * 4, 3 * 6)  # per iteration: 2 + 2 encoder calls vs 2 + 4
    for key in shared:
        # atol: biases just before an instance norm get zero gradients up to rounding (~1e-17), which Adam scales up
        torch.testing.assert_close(shared[key], separate[key], rtol=1e-9, atol=1e-9, msg=lambda m: f"{key}: {m}")


def test_translation_decodes_the_other_domains_code_without_noise():
    model = _tiny_model()
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    out = model.translate(x, torch.tensor([1, 0, 1]))
    ga, gb = model.nets["generator_a"], model.nets["generator_b"]
    with torch.no_grad():
        assert torch.allclose(out[[0, 2]], gb.dec(ga.enc(x[[0, 2]])).clamp(-1, 1), atol=1e-6)
        assert torch.allclose(out[[1]], ga.dec(gb.enc(x[[1]])).clamp(-1, 1), atol=1e-6)


@pytest.mark.parametrize("override, fragment", [("losses.vgg_w=1", "losses.vgg_w"),
                                                ("data.domains=[red,green,blue]", "exactly two domains"),
                                                ("optim.schedule=linear", "optim.schedule")])
def test_unsupported_settings_are_one_recipe_error(override, fragment):
    with pytest.raises(RecipeError) as info:
        _tiny_model(override)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def _tiny_model(*overrides: str):
    from ganzoo.trainer import build_dataset

    recipe = families.tiny_recipe("unit", *overrides)
    model = families.model_class("unit")(recipe, build_dataset(recipe, "train").domains)
    model.build()
    return model


# --------------------------------------------------------------------------- the converter

TINY_GEN = {"input_dim": 3, "dim": 4, "n_downsample": 2, "n_res": 1}
TINY_DIS = {"input_dim": 3, "dim": 4, "n_layer": 2, "num_scales": 2}


def official_generator_state(dim: int, n_down: int, n_res: int, seed: int) -> dict[str, torch.Tensor]:
    """Random weights under the official VAEGen keys (written from the official module tree, not from ours)."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}

    def conv(key, cin, cout, k):
        state[f"{key}.conv.weight"] = torch.randn(cout, cin, k, k, generator=g) / math.sqrt(cin * k * k)
        state[f"{key}.conv.bias"] = torch.randn(cout, generator=g) * 0.1

    conv("enc.model.0", 3, dim, 7)
    for i in range(n_down):
        conv(f"enc.model.{i + 1}", dim, dim * 2, 4)
        dim *= 2
    for prefix in (f"enc.model.{n_down + 1}", "dec.model.0"):
        for j in range(n_res):
            for half in (0, 1):
                conv(f"{prefix}.model.{j}.model.{half}", dim, dim, 3)
    for i in range(n_down):
        key = f"dec.model.{2 * i + 2}"  # nn.Upsample at 2i+1, then the conv block
        conv(key, dim, dim // 2, 5)
        state[f"{key}.norm.gamma"] = torch.rand(dim // 2, generator=g)
        state[f"{key}.norm.beta"] = torch.randn(dim // 2, generator=g) * 0.1
        dim //= 2
    conv(f"dec.model.{2 * n_down + 1}", dim, 3, 7)
    return state


def official_discriminator_state(dim: int, n_layer: int, num_scales: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for s in range(num_scales):
        width, cin = dim, 3
        for i in range(n_layer):
            out = dim if i == 0 else cin * 2
            state[f"cnns.{s}.{i}.conv.weight"] = torch.randn(out, cin, 4, 4, generator=g) * 0.1
            state[f"cnns.{s}.{i}.conv.bias"] = torch.randn(out, generator=g) * 0.1
            cin = width = out
        state[f"cnns.{s}.{n_layer}.weight"] = torch.randn(1, width, 1, 1, generator=g) * 0.1
        state[f"cnns.{s}.{n_layer}.bias"] = torch.randn(1, generator=g) * 0.1
    return state


def _conv(x, state, key, stride=1, pad=0):
    x = F.pad(x, (pad,) * 4, mode="reflect") if pad else x
    return F.conv2d(x, state[f"{key}.conv.weight"], state[f"{key}.conv.bias"], stride)


def _layer_norm(x, gamma, beta):
    flat = x.reshape(x.shape[0], -1)
    x = (x - flat.mean(1).view(-1, 1, 1, 1)) / (flat.std(1).view(-1, 1, 1, 1) + 1e-5)
    return x * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


def reference_encode(state, x, n_down, n_res):
    x = F.relu(F.instance_norm(_conv(x, state, "enc.model.0", 1, 3)))
    for i in range(n_down):
        x = F.relu(F.instance_norm(_conv(x, state, f"enc.model.{i + 1}", 2, 1)))
    return _reference_residuals(state, x, f"enc.model.{n_down + 1}", n_res)


def _reference_residuals(state, x, prefix, n_res):
    for j in range(n_res):
        y = F.relu(F.instance_norm(_conv(x, state, f"{prefix}.model.{j}.model.0", 1, 1)))
        x = x + F.instance_norm(_conv(y, state, f"{prefix}.model.{j}.model.1", 1, 1))
    return x


def reference_decode(state, h, n_down, n_res):
    x = _reference_residuals(state, h, "dec.model.0", n_res)
    for i in range(n_down):
        key = f"dec.model.{2 * i + 2}"
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = F.relu(_layer_norm(_conv(x, state, key, 1, 2), state[f"{key}.norm.gamma"], state[f"{key}.norm.beta"]))
    return torch.tanh(_conv(x, state, f"dec.model.{2 * n_down + 1}", 1, 3))


def reference_discriminate(state, x, n_layer, num_scales):
    outputs = []
    for s in range(num_scales):
        y = x
        for i in range(n_layer):
            y = F.leaky_relu(_conv(y, state, f"cnns.{s}.{i}", 2, 1), 0.2)
        outputs.append(F.conv2d(y, state[f"cnns.{s}.{n_layer}.weight"], state[f"cnns.{s}.{n_layer}.bias"]))
        x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    return outputs


@pytest.fixture
def official_files(tmp_path):
    gen = {side: official_generator_state(4, 2, 1, seed) for side, seed in (("a", 1), ("b", 2))}
    dis = {side: official_discriminator_state(4, 2, 2, seed) for side, seed in (("a", 3), ("b", 4))}
    saved_gen = {side: dict(state) for side, state in gen.items()}
    # A PyTorch 0.3 file: instance norms carried running statistics (official pytorch03_to_pytorch04 drops them).
    saved_gen["a"]["enc.model.0.norm.running_mean"] = torch.zeros(4)
    saved_gen["a"]["enc.model.0.norm.running_var"] = torch.ones(4)
    torch.save(saved_gen, tmp_path / "gen_00010000.pt")
    torch.save(dis, tmp_path / "dis_00010000.pt")
    return tmp_path, gen, dis


def test_ganzoo_convert_unit_gives_the_official_forward(official_files):
    from typer.testing import CliRunner

    from ganzoo.cli import app

    folder, gen, dis = official_files
    out = folder / "converted"
    result = CliRunner().invoke(app, ["convert", "unit", str(folder / "gen_00010000.pt"), str(folder / "dis_00010000.pt"),
                                      str(out), "--image-size", "16", "--domains", "summer,winter"])
    assert result.exit_code == 0, result.output
    model = ganzoo.load(str(out))
    assert model.name == "unit" and model.domains == ["summer", "winter"] and set(model.nets) == set(model.network_roles)
    assert model.network_specs["generator_a"]["kwargs"] == {**TINY_GEN, "activ": "relu", "pad_type": "reflect"}
    assert model.network_specs["discriminator_b"]["kwargs"] == {**TINY_DIS, "norm": "none", "activ": "lrelu",
                                                                "pad_type": "reflect"}
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        a2b = reference_decode(gen["b"], reference_encode(gen["a"], x, 2, 1), 2, 1)
        b2a = reference_decode(gen["a"], reference_encode(gen["b"], x, 2, 1), 2, 1)
        assert torch.allclose(model.translate(x, torch.tensor([1, 1])), a2b.clamp(-1, 1), atol=1e-5)
        assert torch.allclose(model.translate(x, torch.tensor([0, 0])), b2a.clamp(-1, 1), atol=1e-5)
        for side in "ab":
            ours = model.nets[f"discriminator_{side}"](x)
            expected = reference_discriminate(dis[side], x, 2, 2)
            assert len(ours) == 2 and all(torch.allclose(o, e, atol=1e-5) for o, e in zip(ours, expected))


def test_the_converter_refuses_what_is_not_an_official_file(official_files):
    from ganzoo_unit.convert import convert_unit

    folder, gen, _ = official_files
    torch.save({"gen": {}, "dis": {}}, folder / "optimizer.pt")
    torch.save({"a": {"conv.weight": torch.zeros(1)}, "b": {"conv.weight": torch.zeros(1)}}, folder / "other.pt")
    broken = {side: dict(state) for side, state in gen.items()}
    broken["b"]["dec.model.2.conv.weight"] = torch.zeros(8, 16, 3, 3)
    torch.save(broken, folder / "gen_bad.pt")
    cases = [([folder / "optimizer.pt"], CheckpointError, "optimizer.pt"),
             ([folder / "other.pt"], CheckpointError, "neither"),
             ([folder / "gen_bad.pt"], CheckpointError, "dec.model.2.conv.weight"),
             ([folder / "dis_00010000.pt"], CheckpointError, "No gen_*.pt"),
             ([folder / "gen_00010000.pt", folder / "gen_00010000.pt"], CheckpointError, "Two files"),
             ([folder / "gen_00010000.pt"], GanzooError, "options are")]
    for index, (paths, error, fragment) in enumerate(cases):
        options = {"colour": 1} if fragment == "options are" else {}
        with pytest.raises(error) as info:
            convert_unit(paths, folder / f"out{index}", **options)
        assert fragment in str(info.value) and "\n" not in str(info.value), str(info.value)
