"""MUNIT (plugins/ganzoo_munit): official layout and parameter counts, the model's maths and modes, the recipes,
and the converter's parity with a reference forward of the official architecture.

Facts copied here as data from NVlabs/MUNIT (networks.py, trainer.py, configs/edges2shoes_folder.yaml); nothing
is downloaded. The reference forward below is written from the official op sequence (Conv2dBlock: pad, conv,
norm, activation; AdaIN as batch norm over a (1, B*C, H, W) view; the official LayerNorm with the unbiased std;
eval-mode instance norms on their running statistics, as the official test.py runs) straight on the state dicts.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

import ganzoo
from ganzoo.errors import CheckpointError, GanzooError, RecipeError

# configs/edges2shoes_folder.yaml: gen and dis
OFFICIAL_GEN = dict(input_dim=3, dim=64, style_dim=8, n_downsample=2, n_res=4, activ="relu", pad_type="reflect", mlp_dim=256)
OFFICIAL_DIS = dict(input_dim=3, dim=64, n_layer=4, norm="none", activ="lrelu", num_scales=3, pad_type="reflect")

# Parameter counts of the official AdaINGen / MsImageDis with that config (per domain).
OFFICIAL_COUNTS = {
    "generator": 15_026_187,
    "generator.enc_style": 2_764_936,
    "generator.enc_content": 5_385_856,
    "generator.dec": 5_754_627,
    "generator.mlp": 1_120_768,
    "discriminator": 8_271_171,
}
# state_dict entries (parameters + buffers) of the same networks, and a sample of official keys with their shapes
OFFICIAL_KEY_COUNTS = {"generator": 115, "discriminator": 30}
OFFICIAL_SHAPES = {
    "generator": {
        "enc_style.model.0.conv.weight": (64, 3, 7, 7),
        "enc_style.model.2.conv.weight": (256, 128, 4, 4),
        "enc_style.model.4.conv.weight": (256, 256, 4, 4),
        "enc_style.model.6.weight": (8, 256, 1, 1),
        "enc_content.model.0.conv.weight": (64, 3, 7, 7),
        "enc_content.model.0.norm.running_mean": (64,),
        "enc_content.model.0.norm.num_batches_tracked": (),
        "enc_content.model.2.conv.weight": (256, 128, 4, 4),
        "enc_content.model.3.model.3.model.1.conv.weight": (256, 256, 3, 3),
        "enc_content.model.3.model.3.model.1.norm.running_var": (256,),
        "dec.model.0.model.0.model.0.conv.weight": (256, 256, 3, 3),
        "dec.model.0.model.3.model.1.norm.running_mean": (256,),
        "dec.model.2.conv.weight": (128, 256, 5, 5),
        "dec.model.2.norm.gamma": (128,),
        "dec.model.4.norm.beta": (64,),
        "dec.model.5.conv.weight": (3, 64, 7, 7),
        "mlp.model.0.fc.weight": (256, 8),
        "mlp.model.1.fc.weight": (256, 256),
        "mlp.model.2.fc.weight": (4096, 256),   # 2 x 256 (mean, std) x 8 AdaIN layers
        "mlp.model.2.fc.bias": (4096,),
    },
    "discriminator": {
        "cnns.0.0.conv.weight": (64, 3, 4, 4),
        "cnns.1.1.conv.weight": (128, 64, 4, 4),
        "cnns.2.3.conv.weight": (512, 256, 4, 4),
        "cnns.2.4.weight": (1, 512, 1, 1),
        "cnns.2.4.bias": (1,),
    },
}


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_official_networks_have_the_official_keys_shapes_and_parameter_counts():
    from ganzoo_munit.networks import AdaINGenerator, MsImageDis

    with torch.device("meta"):
        gen, dis = AdaINGenerator(**OFFICIAL_GEN), MsImageDis(**OFFICIAL_DIS)
    counts = {"generator": _count(gen), "discriminator": _count(dis),
              **{f"generator.{name}": _count(getattr(gen, name)) for name in ("enc_style", "enc_content", "dec", "mlp")}}
    assert counts == OFFICIAL_COUNTS
    for name, net in (("generator", gen), ("discriminator", dis)):
        state = net.state_dict()
        assert len(state) == OFFICIAL_KEY_COUNTS[name]
        assert {k: tuple(state[k].shape) for k in OFFICIAL_SHAPES[name]} == OFFICIAL_SHAPES[name]


def test_the_official_recipe_builds_official_networks_and_the_paper_settings():
    from ganzoo.recipe import load_recipe
    from ganzoo_munit.model import MUNIT

    recipe = load_recipe("munit_edges2shoes")  # validating the data section reads no folder
    model = MUNIT(recipe, ["edges", "shoes"])
    with torch.device("meta"):
        model.build(init=False)
    assert {role: _count(net) for role, net in model.nets.items()} == {
        "generator_a": OFFICIAL_COUNTS["generator"], "generator_b": OFFICIAL_COUNTS["generator"],
        "discriminator_a": OFFICIAL_COUNTS["discriminator"], "discriminator_b": OFFICIAL_COUNTS["discriminator"]}
    assert recipe.losses == {"gan_mode": "lsgan", "gan_w": 1.0, "recon_x_w": 10.0, "recon_s_w": 1.0, "recon_c_w": 1.0,
                             "recon_x_cyc_w": 0.0, "vgg_w": 0.0, "vgg_weights": None}
    o = recipe.optim
    assert (o["lr"], tuple(o["betas"]), o["weight_decay"]) == (1e-4, (0.5, 0.999), 1e-4)
    assert (o["lr_policy"], o["step_size"], o["gamma"], o["init"]) == ("step", 100_000, 0.5, "kaiming")
    assert recipe.data.batch_size == 1 and recipe.data.image_size == 256 and recipe.data.name == "unaligned"
    assert recipe.train.steps == 1_000_000 and recipe.train.ema == 0.0
    assert model.latent_dim == 8


# --------------------------------------------------------------------------- a tiny model


TINY_GEN = dict(input_dim=3, dim=4, style_dim=3, n_downsample=2, n_res=2, activ="relu", pad_type="reflect", mlp_dim=8)
TINY_DIS = dict(input_dim=3, dim=4, n_layer=2, norm="none", activ="lrelu", num_scales=3, pad_type="reflect")


def tiny_model(*sets: str):
    from ganzoo.recipe import load_recipe
    from ganzoo_munit.model import MUNIT

    sets = [f"networks.generator_a.{k}={json.dumps(v)}" for k, v in TINY_GEN.items()] + \
           [f"networks.generator_b.{k}={json.dumps(v)}" for k, v in TINY_GEN.items()] + \
           [f"networks.discriminator_a.{k}={json.dumps(v)}" for k, v in TINY_DIS.items()] + \
           [f"networks.discriminator_b.{k}={json.dumps(v)}" for k, v in TINY_DIS.items()] + \
           ["data.image_size=16", "data.num_train=4", "data.num_val=2", "train.device=cpu", *sets]
    recipe = load_recipe("munit_shapes", sets)
    torch.manual_seed(0)
    model = MUNIT(recipe, ["red", "blue"])
    model.build()
    return model


def test_munit_is_a_pairwise_style_model_with_latent_and_reference_modes():
    from ganzoo.api import AttributeModel, StyleModel
    from ganzoo_munit.model import MUNIT

    assert issubclass(MUNIT, StyleModel) and not issubclass(MUNIT, AttributeModel)
    assert MUNIT.pairwise and not MUNIT.paired and MUNIT.license == "cc-by-nc-sa-4.0"
    assert MUNIT.recipes == {"small": "munit_shapes", "official": "munit_edges2shoes"}
    assert MUNIT.eval_modes == {"latent": True, "reference": True}
    assert MUNIT.sample_sheets[:2] == ("reference_grid", "latent_grid")
    assert MUNIT.generators_for_domains(3) == 6 and MUNIT.models_for_domains(3) == 3
    with pytest.raises(RecipeError, match="exactly two domains"):
        from ganzoo.recipe import load_recipe

        MUNIT(load_recipe("munit_shapes", ["data.domains=[red,green,blue]"]), ["red", "green", "blue"])


def test_official_initialisation_and_step_decay():
    model = tiny_model()
    conv = model.nets["generator_a"].enc_content.model[1].conv
    dis = model.nets["discriminator_b"].cnns[0][0].conv
    assert torch.all(conv.bias == 0) and torch.all(dis.bias == 0)
    fan_in = conv.weight[0].numel()
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.35)  # kaiming, fan_in, a=0
    assert dis.weight.std().item() == pytest.approx(0.02, rel=0.35)  # discriminators: gaussian 0.02
    # the official StepLR has stepped it + 1 times at iteration it: the rate halves at iteration step_size - 1
    step = model.optim.step_size
    assert [model.lr_factor(s) for s in (0, step - 2, step - 1, 2 * step - 1)] == [1.0, 1.0, 0.5, 0.25]


def test_the_train_step_decays_the_rate_only_inside_the_step_and_logs_every_official_term():
    from ganzoo.api import StepContext

    model = tiny_model("optim.step_size=1", "optim.lr=1e-4", "losses.recon_x_cyc_w=1")
    optimizers = model.build_optimizers()
    seen = []
    ctx = StepContext(torch.device("cpu"), "fp32", optimizers)
    original = ctx.optimize

    def optimize(loss, *roles):
        seen.append([optimizers[r].param_groups[0]["lr"] for r in roles])
        original(loss, *roles)

    ctx.optimize = optimize
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    logs = model.train_step({"a": x, "b": x.flip(0)}, 0, ctx)
    assert seen == [[0.5e-4], [0.5e-4]]  # iteration 0 with step_size 1: one decay already (StepLR semantics)
    assert all(g["lr"] == 1e-4 for opt in optimizers.values() for g in opt.param_groups)  # the trainer's rate is kept
    assert {k.split("/")[1] for k in logs} >= {"adv_a", "adv_b", "recon_x_a", "recon_x_b", "recon_s_a", "recon_s_b",
                                                "recon_c_a", "recon_c_b", "cyc_x_a", "cyc_x_b", "total"}
    assert all(torch.isfinite(v) for v in logs.values())


@pytest.mark.parametrize("cycle", [0, 1])
def test_decoders_and_discriminators_share_batches_without_changing_losses_or_gradients(monkeypatch, cycle):
    """Each decoder runs the within-domain reconstruction and the translation into its domain in one call, each
    discriminator scores fakes and reals in one; the encoders stay separate calls (their instance norms keep
    running statistics). The same losses and gradients as every call on its own."""
    import ganzoo_munit.model as munit_model
    from tests.shared_batches import assert_shared_equals_separate

    model = tiny_model(f"losses.recon_x_cyc_w={cycle}")
    gen = model.nets["generator_a"]
    assert munit_model.per_image(gen.dec) and not munit_model.per_image(gen.enc_content)
    assert_shared_equals_separate(model, munit_model, monkeypatch)


def test_the_generator_terms_are_the_official_gen_update():
    """Each logged term against the official ``gen_update`` written out call by call (random styles drawn first)."""
    from ganzoo.api import StepContext

    model = tiny_model("losses.recon_x_cyc_w=1")
    ga, gb, da, db = (model.nets[r] for r in ("generator_a", "generator_b", "discriminator_a", "discriminator_b"))
    x_a, x_b = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    torch.manual_seed(5)
    _, logs = model.generator_loss(x_a, x_b, StepContext(torch.device("cpu"), "fp32", {}))
    torch.manual_seed(5)
    s_a, s_b = torch.randn(2, ga.style_dim), torch.randn(2, gb.style_dim)
    (c_a, s_a_prime), (c_b, s_b_prime) = ga.encode(x_a), gb.encode(x_b)
    x_a_recon, x_b_recon = ga.decode(c_a, s_a_prime), gb.decode(c_b, s_b_prime)
    x_ba, x_ab = ga.decode(c_b, s_a), gb.decode(c_a, s_b)
    (c_b_recon, s_a_recon), (c_a_recon, s_b_recon) = ga.encode(x_ba), gb.encode(x_ab)
    x_aba, x_bab = ga.decode(c_a_recon, s_a_prime), gb.decode(c_b_recon, s_b_prime)
    l1 = lambda x, y: (x - y).abs().mean()  # noqa: E731
    gan = lambda outs: sum(((o - 1) ** 2).mean() for o in outs)  # noqa: E731
    official = {"adv_a": gan(da(x_ba)), "adv_b": gan(db(x_ab)), "recon_x_a": l1(x_a_recon, x_a),
                "recon_x_b": l1(x_b_recon, x_b), "recon_s_a": l1(s_a_recon, s_a), "recon_s_b": l1(s_b_recon, s_b),
                "recon_c_a": l1(c_a_recon, c_a), "recon_c_b": l1(c_b_recon, c_b), "cyc_x_a": l1(x_aba, x_a),
                "cyc_x_b": l1(x_bab, x_b)}
    assert official.keys() <= logs.keys()
    for key, value in official.items():
        torch.testing.assert_close(logs[key], value.detach(), rtol=1e-5, atol=1e-6, msg=lambda m: f"{key}: {m}")


def test_the_perceptual_loss_reads_official_vgg_weights_from_a_file_and_nothing_else(tmp_path):
    from ganzoo.api import StepContext
    from ganzoo_munit.perceptual import Vgg16

    x = torch.rand(2, 3, 16, 16) * 2 - 1
    batch = {"a": x, "b": x.flip(0)}
    model = tiny_model("losses.vgg_w=1")
    ctx = StepContext(torch.device("cpu"), "fp32", model.build_optimizers())
    with pytest.raises(RecipeError, match="vgg_weights"):
        model.train_step(batch, 0, ctx)
    with pytest.raises(RecipeError, match="does not exist"):
        tiny_model("losses.vgg_w=1", f"losses.vgg_weights={tmp_path / 'missing.weight'}").train_step(batch, 0, ctx)
    torch.manual_seed(0)
    torch.save(Vgg16().state_dict(), tmp_path / "vgg16.weight")
    model = tiny_model("losses.vgg_w=1", f"losses.vgg_weights={tmp_path / 'vgg16.weight'}")
    logs = model.train_step(batch, 0, StepContext(torch.device("cpu"), "fp32", model.build_optimizers()))
    assert torch.isfinite(logs["G/vgg_a"]) and logs["G/vgg_a"] > 0
    assert "_vgg" not in model.nets  # a fixed loss network, never saved with the model


def test_random_styles_differ_references_guide_and_codes_carry_their_domain():
    model = tiny_model()
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    target = torch.tensor([1, 1, 0])
    one = model.translate(x, target, generator=torch.Generator().manual_seed(0))
    again = model.translate(x, target, generator=torch.Generator().manual_seed(0))
    other = model.translate(x, target, generator=torch.Generator().manual_seed(1))
    assert torch.equal(one, again) and not torch.allclose(one, other)
    ref = torch.rand(3, 3, 16, 16) * 2 - 1
    guided = model.generate(x, 1, "reference", references=ref)
    assert torch.equal(guided, model.generate(x, 1, "reference", references=ref))
    codes = model.style_codes(torch.tensor([0, 1]), reference=ref[:2])
    assert codes.shape == (2, model.latent_dim + 2)
    mid = torch.lerp(codes[1], model.style_codes(torch.tensor([1]), z=torch.randn(1, 3))[0], 0.3)
    assert mid[-2:].tolist() == [0.0, 1.0]  # interpolating two codes of one domain keeps the domain
    # translating is side-effect free: eval mode for the official running statistics, modes and buffers restored
    before = {k: v.clone() for k, v in model.nets["generator_a"].state_dict().items()}
    model.translate(x, target)
    assert all(torch.equal(v, model.nets["generator_a"].state_dict()[k]) for k, v in before.items())
    assert all(m.training for m in model.nets["generator_a"].modules())


def test_the_latent_and_reference_sheets_draw():
    from ganzoo.sheets import SheetInputs, latent_grid, reference_grid

    model = tiny_model()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    inputs = SheetInputs(x, ["s1", "s2"], references=torch.rand(2, 3, 16, 16) * 2 - 1, reference_domains=[0, 1],
                         num_styles=2, seed=0)
    ref = reference_grid(model, inputs)
    lat = latent_grid(model, inputs)
    assert len(ref.cells) == 3 and len(ref.cells[1]) == 3
    assert len(lat.cells) == 2 and len(lat.cells[0]) == 1 + 2 * 2


# --------------------------------------------------------------------------- the converter


def official_layout(gen: dict, dis: dict) -> tuple[dict, dict]:
    """{key: shape} of the official AdaINGen and MsImageDis, listed from the official constructors (not our classes)."""
    g: dict[str, tuple] = {}

    def conv(prefix, cin, cout, k, norm=None):
        g[f"{prefix}.conv.weight"], g[f"{prefix}.conv.bias"] = (cout, cin, k, k), (cout,)
        if norm == "in":
            g[f"{prefix}.norm.running_mean"], g[f"{prefix}.norm.running_var"] = (cout,), (cout,)
            g[f"{prefix}.norm.num_batches_tracked"] = ()
        elif norm == "adain":
            g[f"{prefix}.norm.running_mean"], g[f"{prefix}.norm.running_var"] = (cout,), (cout,)
        elif norm == "ln":
            g[f"{prefix}.norm.gamma"], g[f"{prefix}.norm.beta"] = (cout,), (cout,)

    d, c = gen["dim"], gen["input_dim"]
    conv("enc_style.model.0", c, d, 7)
    conv("enc_style.model.1", d, 2 * d, 4)
    conv("enc_style.model.2", 2 * d, 4 * d, 4)
    conv("enc_style.model.3", 4 * d, 4 * d, 4)
    conv("enc_style.model.4", 4 * d, 4 * d, 4)
    g["enc_style.model.6.weight"], g["enc_style.model.6.bias"] = (gen["style_dim"], 4 * d, 1, 1), (gen["style_dim"],)
    conv("enc_content.model.0", c, d, 7, "in")
    width = d
    for i in range(gen["n_downsample"]):
        conv(f"enc_content.model.{i + 1}", width, 2 * width, 4, "in")
        width *= 2
    for prefix, norm in ((f"enc_content.model.{gen['n_downsample'] + 1}", "in"), ("dec.model.0", "adain")):
        for r in range(gen["n_res"]):
            for j in range(2):
                conv(f"{prefix}.model.{r}.model.{j}", width, width, 3, norm)
    for i in range(gen["n_downsample"]):
        conv(f"dec.model.{2 + 2 * i}", width, width // 2, 5, "ln")
        width //= 2
    conv(f"dec.model.{1 + 2 * gen['n_downsample']}", width, c, 7)
    adain = 2 * 2 * gen["n_res"] * d * 2 ** gen["n_downsample"]
    m = gen["mlp_dim"]
    for i, (cin, cout) in enumerate(((gen["style_dim"], m), (m, m), (m, adain))):
        g[f"mlp.model.{i}.fc.weight"], g[f"mlp.model.{i}.fc.bias"] = (cout, cin), (cout,)
    dd: dict[str, tuple] = {}
    for s in range(dis["num_scales"]):
        cin, cout = dis["input_dim"], dis["dim"]
        for i in range(dis["n_layer"]):
            dd[f"cnns.{s}.{i}.conv.weight"], dd[f"cnns.{s}.{i}.conv.bias"] = (cout, cin, 4, 4), (cout,)
            cin, cout = cout, cout * 2
        dd[f"cnns.{s}.{dis['n_layer']}.weight"], dd[f"cnns.{s}.{dis['n_layer']}.bias"] = (1, cin, 1, 1), (1,)
    return g, dd


def random_state(layout: dict, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in layout.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.3
    return state


# ---- the reference forward, written from the official op sequence on a state dict


def _block(state, prefix, x, k_pad, stride=1, norm=None, act="relu", adain=None):
    x = F.pad(x, [k_pad] * 4, mode="reflect") if k_pad else x
    x = F.conv2d(x, state[f"{prefix}.conv.weight"], state[f"{prefix}.conv.bias"], stride)
    if norm == "in":  # eval mode: the running statistics
        x = F.instance_norm(x, state[f"{prefix}.norm.running_mean"], state[f"{prefix}.norm.running_var"],
                            use_input_stats=False, eps=1e-5)
    elif norm == "adain":
        b, c = x.shape[:2]
        mean, std = adain
        x = F.batch_norm(x.contiguous().view(1, b * c, *x.shape[2:]), state[f"{prefix}.norm.running_mean"].repeat(b),
                         state[f"{prefix}.norm.running_var"].repeat(b), std.contiguous().view(-1),
                         mean.contiguous().view(-1), True, 0.1, 1e-5).view(b, c, *x.shape[2:])
    elif norm == "ln":
        shape = [-1, 1, 1, 1]
        mu = x.view(x.size(0), -1).mean(1).view(*shape)
        sd = x.view(x.size(0), -1).std(1).view(*shape)
        x = (x - mu) / (sd + 1e-5) * state[f"{prefix}.norm.gamma"].view(1, -1, 1, 1) + state[f"{prefix}.norm.beta"].view(1, -1, 1, 1)
    if act == "relu":
        x = F.relu(x)
    elif act == "lrelu":
        x = F.leaky_relu(x, 0.2)
    elif act == "tanh":
        x = torch.tanh(x)
    return x


def reference_style(state, x, gen):
    for i in range(5):
        x = _block(state, f"enc_style.model.{i}", x, 3 if i == 0 else 1, 1 if i == 0 else 2)
    x = x.mean((2, 3), keepdim=True)
    return F.conv2d(x, state["enc_style.model.6.weight"], state["enc_style.model.6.bias"])


def reference_content(state, x, gen):
    x = _block(state, "enc_content.model.0", x, 3, norm="in")
    for i in range(gen["n_downsample"]):
        x = _block(state, f"enc_content.model.{i + 1}", x, 1, 2, norm="in")
    p = f"enc_content.model.{gen['n_downsample'] + 1}"
    for r in range(gen["n_res"]):
        h = _block(state, f"{p}.model.{r}.model.0", x, 1, norm="in")
        x = x + _block(state, f"{p}.model.{r}.model.1", h, 1, norm="in", act=None)
    return x


def reference_decode(state, content, style, gen):
    h = style.view(style.size(0), -1)
    for i in range(3):
        h = F.linear(h, state[f"mlp.model.{i}.fc.weight"], state[f"mlp.model.{i}.fc.bias"])
        h = F.relu(h) if i < 2 else h
    x, n = content, content.shape[1]
    for r in range(gen["n_res"]):
        mean1, std1 = h[:, :n], h[:, n:2 * n]
        mean2, std2 = h[:, 2 * n:3 * n], h[:, 3 * n:4 * n]
        h = h[:, 4 * n:]
        y = _block(state, f"dec.model.0.model.{r}.model.0", x, 1, norm="adain", adain=(mean1, std1))
        x = x + _block(state, f"dec.model.0.model.{r}.model.1", y, 1, norm="adain", act=None, adain=(mean2, std2))
    for i in range(gen["n_downsample"]):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = _block(state, f"dec.model.{2 + 2 * i}", x, 2, norm="ln")
    return _block(state, f"dec.model.{1 + 2 * gen['n_downsample']}", x, 3, act="tanh")


def reference_discriminator(state, x, dis):
    outs = []
    for s in range(dis["num_scales"]):
        h = x
        for i in range(dis["n_layer"]):
            h = _block(state, f"cnns.{s}.{i}", h, 1, 2, act="lrelu")
        outs.append(F.conv2d(h, state[f"cnns.{s}.{dis['n_layer']}.weight"], state[f"cnns.{s}.{dis['n_layer']}.bias"]))
        x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    return outs


def test_ganzoo_convert_munit_reproduces_the_official_forward(tmp_path, cli):
    gen_layout, dis_layout = official_layout(TINY_GEN, TINY_DIS)
    gens = {"a": random_state(gen_layout, 1), "b": random_state(gen_layout, 2)}
    dises = {"a": random_state(dis_layout, 3), "b": random_state(dis_layout, 4)}
    torch.save(gens, tmp_path / "gen_00010000.pt")
    torch.save(dises, tmp_path / "dis_00010000.pt")
    out = tmp_path / "model"
    proc = cli("convert", "munit", str(tmp_path / "gen_00010000.pt"), str(tmp_path / "dis_00010000.pt"), str(out),
               "--domains", "edges,shoes", "--image-size", "16")
    assert proc.returncode == 0, proc.stderr[-2000:]
    model = ganzoo.load(str(out))
    assert model.name == "munit" and model.domains == ["edges", "shoes"]
    for role, state in (("generator_a", gens["a"]), ("generator_b", gens["b"]),
                        ("discriminator_a", dises["a"]), ("discriminator_b", dises["b"])):
        assert all(torch.equal(v, state[k]) for k, v in model.nets[role].state_dict().items())

    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(5)) * 2 - 1
    refs = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(6)) * 2 - 1
    z = torch.randn(2, TINY_GEN["style_dim"], generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        # a -> b with given styles, as the official test.py (--a2b 1): content of gen_a, decoded by gen_b
        expected = reference_decode(gens["b"], reference_content(gens["a"], x, TINY_GEN), z[:, :, None, None], TINY_GEN)
        got = model.translate(x, torch.tensor([1, 1]), z=z)
        assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
        # b -> a guided by references of a (--a2b 0 --style): style of gen_a's style encoder
        style = reference_style(gens["a"], refs, TINY_GEN)
        expected = reference_decode(gens["a"], reference_content(gens["b"], x, TINY_GEN), style, TINY_GEN)
        got = model.generate(x, 0, "reference", references=refs)
        assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
        for role, side in (("discriminator_a", "a"), ("discriminator_b", "b")):
            for ours, theirs in zip(model.nets[role](x), reference_discriminator(dises[side], x, TINY_DIS)):
                assert torch.allclose(ours, theirs, atol=1e-5)


def test_the_converter_refuses_what_is_not_an_official_file_in_one_sentence(tmp_path):
    from ganzoo_munit.convert import convert_munit

    gen_layout, _ = official_layout(TINY_GEN, TINY_DIS)
    state = random_state(gen_layout, 0)
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}  # a pre-0.4.1 file
    torch.save({"a": old, "b": old}, tmp_path / "old.pt")
    folder = convert_munit([tmp_path / "old.pt"], tmp_path / "old_model", domains=["x", "y"], image_size=16)
    assert set(ganzoo.load(str(folder)).nets) == {"generator_a", "generator_b"}

    cases = {
        "list.pt": [torch.zeros(2)],
        "other.pt": {"generator": state},
        "broken.pt": {"a": {**state, "mlp.model.2.fc.bias": torch.zeros(3)}, "b": state},
    }
    for name, payload in cases.items():
        torch.save(payload, tmp_path / name)
        with pytest.raises(CheckpointError) as info:
            convert_munit([tmp_path / name], tmp_path / f"out_{name}")
        assert name in str(info.value) and "\n" not in str(info.value)
        assert not (tmp_path / f"out_{name}").exists()
    with pytest.raises(GanzooError, match="pad_type"):
        convert_munit([tmp_path / "old.pt"], tmp_path / "o2", pad_type="circular")
