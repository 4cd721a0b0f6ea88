"""StarGAN v2 networks: official parameter layout, block semantics, and checkpoint conversion.

The official layout (keys, order, shapes, parameter counts of clovaai/stargan-v2 @ 875b70a1) is
read from tests/data/stargan_v2_official_keys.json, so these tests run without the official code.
Everything that runs a forward pass uses narrow widths to stay fast on a CPU.
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import CheckpointError
from tests.conftest import CodeRunningPickle
from ganzoo_stargan_v2.convert import NETWORK_CLASSES, convert, infer_config, load_official
from ganzoo_stargan_v2.networks import (
    AdaIN,
    AdainResBlk,
    Discriminator,
    Generator,
    HighPass,
    MappingNetwork,
    ResBlk,
    StyleEncoder,
    he_init,
)

OFFICIAL = json.loads(
    (Path(__file__).parent / "data" / "stargan_v2_official_keys.json").read_text()
)["configs"]
ROLES = ("generator", "mapping_network", "style_encoder", "discriminator")


def official_networks(config: dict) -> dict[str, nn.Module]:
    """The four networks built with an official config, the way the official build_model does."""
    return {
        "generator": Generator(
            config["img_size"], config["style_dim"], config["max_conv_dim"], config["w_hpf"]
        ),
        "mapping_network": MappingNetwork(
            config["latent_dim"], config["style_dim"], config["num_domains"]
        ),
        "style_encoder": StyleEncoder(
            config["img_size"], config["style_dim"], config["num_domains"], config["max_conv_dim"]
        ),
        "discriminator": Discriminator(
            config["img_size"], config["num_domains"], config["max_conv_dim"]
        ),
    }


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    # torch.testing.assert_close costs seconds of one-off imports; float32 tolerances suffice here.
    assert actual.shape == expected.shape
    assert torch.allclose(actual, expected, rtol=1e-5, atol=1e-5), (actual - expected).abs().max()


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def randomize(net: nn.Module, seed: int) -> nn.Module:
    """He-init weights plus non-trivial biases and norm affines, so a wrong mapping shows."""
    torch.manual_seed(seed)
    net.apply(he_init)
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() == 1:
                p.normal_(0.0, 0.1)
    return net


# --------------------------------------------------------------------------------------------------
# Official layout
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["afhq", "celeba_hq"])
def test_official_state_dict_layout(dataset):
    official = OFFICIAL[dataset]
    with torch.device("meta"):  # layout only; no 40M-parameter init
        nets = official_networks(official["config"])
    for role in ROLES:
        expected = official["networks"][role]
        ours = [[k, list(v.shape)] for k, v in nets[role].state_dict().items()]
        assert ours == expected["state_dict"], role
        assert count_params(nets[role]) == expected["n_params"], role
        assert [k for k, _ in nets[role].named_buffers()] == expected["buffers"], role


def test_official_parameter_totals():
    # The published totals (OFFICIAL.md 2.1), asserted literally so the data file cannot drift.
    totals = {
        "afhq": (33_892_995, 3_259_072, 20_949_760, 20_852_803),
        "celeba_hq": (43_467_395, 2_438_272, 20_916_928, 20_852_290),
    }
    for dataset, expected in totals.items():
        with torch.device("meta"):
            nets = official_networks(OFFICIAL[dataset]["config"])
        assert tuple(count_params(nets[r]) for r in ROLES) == expected


def test_official_default_arguments_are_celeba_hq_layout():
    with torch.device("meta"):
        generator = Generator()
    assert generator.from_rgb.out_channels == 64  # 2**14 // 256
    assert len(generator.encode) == 5 + 2  # log2(256) - 4, +1 for w_hpf, + 2 bottleneck
    assert generator.state_dict().keys() == {
        k for k, _ in OFFICIAL["celeba_hq"]["networks"]["generator"]["state_dict"]
    }


def test_high_pass_kernel_values():
    generator = Generator(img_size=32, style_dim=8, max_conv_dim=32, w_hpf=2, dim_in=8)
    laplacian = torch.tensor([[-1.0, -1, -1], [-1, 8, -1], [-1, -1, -1]])
    assert torch.equal(generator.state_dict()["hpf.filter"], laplacian / 2)
    assert (
        "hpf.filter" not in Generator(img_size=32, max_conv_dim=32, w_hpf=0, dim_in=8).state_dict()
    )


# --------------------------------------------------------------------------------------------------
# Block semantics (formulas from OFFICIAL.md 2.1, written out with plain functional ops)
# --------------------------------------------------------------------------------------------------


def instance_norm(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + 1e-5)


def affine_instance_norm(x: torch.Tensor, norm: nn.InstanceNorm2d) -> torch.Tensor:
    return instance_norm(x) * norm.weight[None, :, None, None] + norm.bias[None, :, None, None]


def test_resblk_is_preactivation_with_learned_shortcut_and_sqrt2():
    block = randomize(ResBlk(4, 6, normalize=True, downsample=True), seed=0)
    x = torch.randn(2, 4, 8, 8)
    lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
    h = block.conv1(lrelu(affine_instance_norm(x, block.norm1)))
    h = F.avg_pool2d(h, 2)
    h = block.conv2(lrelu(affine_instance_norm(h, block.norm2)))
    shortcut = F.avg_pool2d(F.conv2d(x, block.conv1x1.weight), 2)
    assert_close(block(x), (shortcut + h) / math.sqrt(2))
    assert block.conv1x1.bias is None
    assert not hasattr(ResBlk(4, 4), "conv1x1") and not hasattr(ResBlk(4, 4), "norm1")


def test_adain_scales_normalised_features_by_one_plus_gamma():
    adain = randomize(AdaIN(style_dim=5, num_features=3), seed=1)
    x, s = torch.randn(2, 3, 4, 4), torch.randn(2, 5)
    gamma, beta = adain.fc(s).split(3, dim=1)
    expected = (1 + gamma[:, :, None, None]) * instance_norm(x) + beta[:, :, None, None]
    assert_close(adain(x, s), expected)


@pytest.mark.parametrize("w_hpf", [0, 1])
def test_adain_resblk_drops_the_skip_when_w_hpf_is_positive(w_hpf):
    block = randomize(AdainResBlk(6, 4, style_dim=5, w_hpf=w_hpf, upsample=True), seed=2)
    x, s = torch.randn(2, 6, 4, 4), torch.randn(2, 5)
    lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
    h = F.interpolate(lrelu(block.norm1(x, s)), scale_factor=2, mode="nearest")
    h = block.conv2(lrelu(block.norm2(block.conv1(h), s)))
    shortcut = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), block.conv1x1.weight)
    expected = h if w_hpf > 0 else (h + shortcut) / math.sqrt(2)
    out = block(x, s)
    assert out.shape == (2, 4, 8, 8)
    assert_close(out, expected)


def test_high_pass_is_depthwise_laplacian():
    hpf = HighPass(w_hpf=1)
    x = torch.randn(1, 3, 5, 5)
    out = hpf(x)
    centre = 8 * x[:, :, 2, 2] - (x[:, :, 1:4, 1:4].sum(dim=(2, 3)) - x[:, :, 2, 2])
    assert_close(out[:, :, 2, 2], centre)
    assert torch.allclose(hpf(torch.ones(1, 2, 5, 5))[:, :, 1:-1, 1:-1], torch.zeros(1, 2, 3, 3))


def test_mapping_network_and_heads_pick_domain_y():
    torch.manual_seed(3)
    mapping = MappingNetwork(latent_dim=4, style_dim=6, num_domains=3, hidden_dim=8)
    z, y = torch.randn(4, 4), torch.tensor([2, 0, 1, 2])
    s = mapping(z, y)
    assert s.shape == (4, 6)
    for i in range(4):
        assert_close(s[i], mapping.unshared[int(y[i])](mapping.shared(z[i : i + 1]))[0])


def test_discriminator_returns_the_logit_of_domain_y():
    torch.manual_seed(4)
    disc = Discriminator(img_size=16, num_domains=3, max_conv_dim=16, dim_in=8)
    x, y = torch.randn(3, 3, 16, 16), torch.tensor([1, 2, 0])
    all_logits = disc.main(x).flatten(1)
    assert all_logits.shape == (3, 3)
    assert_close(disc(x, y), all_logits[torch.arange(3), y])


# --------------------------------------------------------------------------------------------------
# Forward passes at small sizes
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("img_size", [16, 32, 64, 128, 256])
@pytest.mark.parametrize("w_hpf", [0, 1])
def test_forward_shapes_with_narrow_widths(img_size, w_hpf):
    torch.manual_seed(5)
    n, style_dim, num_domains = 2, 8, 3
    generator = Generator(img_size, style_dim, max_conv_dim=32, w_hpf=w_hpf, dim_in=4)
    mapping = MappingNetwork(
        latent_dim=4, style_dim=style_dim, num_domains=num_domains, hidden_dim=16
    )
    encoder = StyleEncoder(img_size, style_dim, num_domains, max_conv_dim=32, dim_in=4)
    disc = Discriminator(img_size, num_domains, max_conv_dim=32, dim_in=4)
    x, y = torch.randn(n, 3, img_size, img_size), torch.tensor([0, 2])
    s = mapping(torch.randn(n, 4), y)
    assert s.shape == (n, style_dim)
    assert encoder(x, y).shape == (n, style_dim)
    assert disc(x, y).shape == (n,)
    fake = generator(x, s)
    assert fake.shape == x.shape and torch.isfinite(fake).all()
    # Official encoder depth for >= 32 px; at least one downsampling block below that.
    expected_down = max(1, int(math.log2(img_size)) - 4 + (w_hpf > 0))
    assert len(generator.encode) == expected_down + 2 and len(generator.decode) == expected_down + 2


def test_default_width_is_official_formula_capped_at_max_conv_dim():
    with torch.device("meta"):
        assert Generator(img_size=64).from_rgb.out_channels == 256  # 2**14 // 64, as official
        assert Generator(img_size=16).from_rgb.out_channels == 512  # 1024 capped
        assert StyleEncoder(img_size=16).shared[0].out_channels == 512
        assert Discriminator(img_size=128, max_conv_dim=64).main[0].out_channels == 64


@pytest.mark.parametrize("bad", [0, 8, 48, 100])
def test_image_size_must_be_power_of_two_from_16(bad):
    with pytest.raises(ValueError, match="power of two"):
        Generator(img_size=bad)
    with pytest.raises(ValueError, match="power of two"):
        Discriminator(img_size=bad)


def mask_pair(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, size, size, generator=g), torch.rand(n, 1, size, size, generator=g)


def test_mask_skip_path_at_32_64_128():
    torch.manual_seed(6)
    generator = randomize(
        Generator(img_size=128, style_dim=8, max_conv_dim=32, w_hpf=1, dim_in=4), seed=6
    )
    x, s = torch.randn(2, 3, 128, 128), torch.randn(2, 8)
    face, inner = mask_pair(2, 128, seed=7)
    zeros = torch.zeros_like(face)
    plain = generator(x, s)

    assert_close(generator(x, s, masks=(zeros, zeros)), plain)  # a zero mask adds 0
    assert not torch.allclose(generator(x, s, masks=(face, zeros)), plain)  # masks[0]: 32 px
    assert not torch.allclose(generator(x, s, masks=(zeros, inner)), plain)  # masks[1]: 64/128 px

    # Written out: cache features entering each block at 32/64/128 px, add hpf(mask * cache) after
    # the decoder block that outputs that size; masks resized bilinearly.
    h, cache = generator.from_rgb(x), {}
    for block in generator.encode:
        if h.size(2) in (32, 64, 128):
            cache[h.size(2)] = h
        h = block(h)
    assert sorted(cache) == [32, 64, 128]
    for block in generator.decode:
        h = block(h, s)
        size = h.size(2)
        if size in cache:
            mask = F.interpolate(
                face if size == 32 else inner, size=size, mode="bilinear", align_corners=False
            )
            h = h + generator.hpf(mask * cache[size])
    assert_close(generator(x, s, masks=(face, inner)), generator.to_rgb(h))


def test_masks_need_w_hpf():
    generator = Generator(img_size=32, style_dim=8, max_conv_dim=16, w_hpf=0, dim_in=4)
    masks = mask_pair(1, 32, seed=0)
    with pytest.raises(ValueError, match="w_hpf"):
        generator(torch.randn(1, 3, 32, 32), torch.randn(1, 8), masks=masks)


def test_he_init_zero_bias_and_fan_in_std():
    torch.manual_seed(8)
    nets = [
        Generator(img_size=32, style_dim=64, max_conv_dim=64, w_hpf=1, dim_in=32),
        MappingNetwork(hidden_dim=256),
    ]
    for net in nets:
        net.apply(he_init)
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                if module.weight.numel() >= 4096:  # enough samples for a tight std estimate
                    std = module.weight.std().item()
                    assert std == pytest.approx(math.sqrt(2 / fan_in), rel=0.1)
                if module.bias is not None:
                    assert torch.count_nonzero(module.bias) == 0
    # Norm affines and the high-pass buffer are left alone.
    assert torch.equal(nets[0].to_rgb[0].weight, torch.ones(32))
    assert nets[0].hpf.filter[1, 1] == 8


# --------------------------------------------------------------------------------------------------
# Conversion of official checkpoints
# --------------------------------------------------------------------------------------------------

SMALL_CONFIGS = {
    # w_hpf = 2 checks the filter-to-w_hpf inference; img 32 -> 2 downsampling blocks.
    "hpf_32": dict(
        img_size=32,
        style_dim=8,
        latent_dim=4,
        hidden_dim=16,
        num_domains=3,
        w_hpf=2,
        width=8,
        max_conv_dim=32,
    ),
    # 16 px without hpf has the same generator layout as 32 px; the style encoder must decide.
    "plain_16": dict(
        img_size=16,
        style_dim=6,
        latent_dim=5,
        hidden_dim=12,
        num_domains=2,
        w_hpf=0,
        width=4,
        max_conv_dim=16,
    ),
}


def small_networks(c: dict, seed: int) -> dict[str, nn.Module]:
    nets = {
        "generator": Generator(
            c["img_size"], c["style_dim"], c["max_conv_dim"], c["w_hpf"], c["width"]
        ),
        "mapping_network": MappingNetwork(
            c["latent_dim"], c["style_dim"], c["num_domains"], c["hidden_dim"]
        ),
        "style_encoder": StyleEncoder(
            c["img_size"], c["style_dim"], c["num_domains"], c["max_conv_dim"], c["width"]
        ),
        "discriminator": Discriminator(
            c["img_size"], c["num_domains"], c["max_conv_dim"], c["width"]
        ),
    }
    return {role: randomize(net, seed + i) for i, (role, net) in enumerate(nets.items())}


def outputs(nets: dict[str, nn.Module], c: dict) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    size, n = c["img_size"], 2
    x = torch.randn(n, 3, size, size, generator=g)
    z = torch.randn(n, c["latent_dim"], generator=g)
    y = torch.tensor([1, 0])
    result = {}
    with torch.no_grad():
        if "mapping_network" in nets:
            result["mapping_network"] = nets["mapping_network"](z, y)
        if "style_encoder" in nets:
            result["style_encoder"] = nets["style_encoder"](x, y)
        if "discriminator" in nets:
            result["discriminator"] = nets["discriminator"](x, y)
        s = torch.randn(n, c["style_dim"], generator=g)
        result["generator"] = nets["generator"](x, s)
        if c["w_hpf"] > 0:
            result["generator_masks"] = nets["generator"](x, s, masks=mask_pair(n, size, seed=9))
    return result


def rebuild(config: dict, state_dicts: dict) -> dict[str, nn.Module]:
    nets = {}
    for role, sd in state_dicts.items():
        net = NETWORK_CLASSES[role](**config[role])
        net.load_state_dict(sd, strict=True)
        nets[role] = net
    return nets


@pytest.mark.parametrize("name", sorted(SMALL_CONFIGS))
@pytest.mark.parametrize("prefix", ["", "module."])
def test_convert_round_trip(tmp_path, name, prefix):
    c = SMALL_CONFIGS[name]
    nets = small_networks(c, seed=10)
    checkpoint = {
        role: {prefix + k: v for k, v in net.state_dict().items()} for role, net in nets.items()
    }
    checkpoint["fan"] = {"conv1.weight": torch.zeros(2, 2)}  # the FAN rides along in official files
    path = tmp_path / "100000_nets.ckpt"
    torch.save(checkpoint, path)

    config, state_dicts = convert(path)

    assert sorted(state_dicts) == sorted(ROLES)
    assert config["num_domains"] == c["num_domains"]
    assert config["generator"]["img_size"] == c["img_size"]
    assert config["generator"]["w_hpf"] == c["w_hpf"]
    assert config["mapping_network"] == {
        "latent_dim": c["latent_dim"],
        "style_dim": c["style_dim"],
        "num_domains": c["num_domains"],
        "hidden_dim": c["hidden_dim"],
    }
    assert json.loads(json.dumps(config)) == config  # goes into config.json as is
    rebuilt = rebuild(config, state_dicts)
    expected, got = outputs(nets, c), outputs(rebuilt, c)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


def test_convert_ema_file_without_discriminator(tmp_path):
    c = SMALL_CONFIGS["hpf_32"]
    nets = small_networks(c, seed=20)
    del nets["discriminator"]
    path = tmp_path / "100000_nets_ema.ckpt"
    torch.save({role: net.state_dict() for role, net in nets.items()}, path)
    config, state_dicts = convert(path)
    assert "discriminator" not in config and sorted(state_dicts) == [
        "generator",
        "mapping_network",
        "style_encoder",
    ]
    got = outputs(rebuild(config, state_dicts), c)
    for key, value in outputs(nets, c).items():
        assert torch.equal(value, got[key]), key


def test_convert_bare_generator_state_dict(tmp_path):
    generator = randomize(
        Generator(img_size=64, style_dim=8, max_conv_dim=32, w_hpf=1, dim_in=8), seed=30
    )
    path = tmp_path / "generator.pt"
    torch.save(generator.state_dict(), path)
    config, state_dicts = convert(path)
    assert config == {
        "generator": {"img_size": 64, "style_dim": 8, "max_conv_dim": 32, "w_hpf": 1.0, "dim_in": 8}
    }


@pytest.mark.parametrize("dataset", ["afhq", "celeba_hq"])
def test_infer_config_on_official_layouts(dataset):
    official = OFFICIAL[dataset]
    state_dicts = {
        role: {
            k: torch.empty(shape, device="meta")
            for k, shape in official["networks"][role]["state_dict"]
        }
        for role in ROLES
    }
    if "hpf.filter" in state_dicts["generator"]:
        state_dicts["generator"]["hpf.filter"] = HighPass(official["config"]["w_hpf"]).filter
    c = official["config"]
    config = infer_config(state_dicts)
    assert config == {
        "generator": {
            "img_size": 256,
            "style_dim": 64,
            "max_conv_dim": 512,
            "w_hpf": c["w_hpf"],
            "dim_in": 64,
        },
        "mapping_network": {
            "latent_dim": 16,
            "style_dim": 64,
            "num_domains": c["num_domains"],
            "hidden_dim": 512,
        },
        "style_encoder": {
            "img_size": 256,
            "style_dim": 64,
            "num_domains": c["num_domains"],
            "max_conv_dim": 512,
            "dim_in": 64,
        },
        "discriminator": {
            "img_size": 256,
            "num_domains": c["num_domains"],
            "max_conv_dim": 512,
            "dim_in": 64,
        },
        "num_domains": c["num_domains"],
    }


# --------------------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------------------


def test_malicious_pickle_is_refused_and_not_run(tmp_path):
    # Control: the payload really does run when unpickled the unsafe way.
    control = tmp_path / "control_ran"
    pickle.loads(pickle.dumps(CodeRunningPickle(control), protocol=2))
    assert control.exists()

    marker = tmp_path / "payload_ran"
    payload = {"generator": CodeRunningPickle(marker)}
    raw_pickle = tmp_path / "raw.ckpt"
    raw_pickle.write_bytes(pickle.dumps(payload, protocol=2))
    torch_zip = tmp_path / "zip.ckpt"
    torch.save(payload, torch_zip)  # pickles the payload inside torch's zip format
    for path in (raw_pickle, torch_zip):
        with pytest.raises(CheckpointError, match="Refusing to load"):
            load_official(path)
    assert not marker.exists()


def test_unreadable_files_raise_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_official(tmp_path / "missing.ckpt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_official(tmp_path)  # a folder is not a checkpoint file
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n" * 20)
    good = tmp_path / "good.ckpt"
    torch.save({"generator": {"from_rgb.weight": torch.zeros(1)}}, good)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[:64])
    for path in (text, truncated):
        with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
            load_official(path)


def test_checkpoints_without_usable_generator_are_refused(tmp_path):
    cases = {
        "tensor.ckpt": torch.zeros(3),
        "no_generator.ckpt": {"mapping_network": MappingNetwork(hidden_dim=8).state_dict()},
        # What an official *_optims.ckpt holds under "generator": an Adam state_dict.
        "optimizer.ckpt": {
            "generator": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0]}]}
        },
    }
    messages = {
        "tensor.ckpt": "not a dict",
        "no_generator.ckpt": "no StarGAN v2 generator",
        "optimizer.ckpt": "optimizer",
    }
    for filename, content in cases.items():
        path = tmp_path / filename
        torch.save(content, path)
        with pytest.raises(CheckpointError, match=messages[filename]):
            load_official(path)


def test_mismatched_layouts_are_refused(tmp_path):
    c = SMALL_CONFIGS["hpf_32"]
    nets = small_networks(c, seed=40)
    checkpoint = {role: net.state_dict() for role, net in nets.items()}

    wrong_shape = {role: dict(sd) for role, sd in checkpoint.items()}
    wrong_shape["generator"]["to_rgb.2.bias"] = torch.zeros(4)
    torch.save(wrong_shape, tmp_path / "shape.ckpt")
    with pytest.raises(CheckpointError, match="to_rgb.2.bias"):
        convert(tmp_path / "shape.ckpt")

    other_domains = dict(checkpoint)
    other_domains["style_encoder"] = StyleEncoder(
        32, c["style_dim"], 5, c["max_conv_dim"], c["width"]
    ).state_dict()
    torch.save(other_domains, tmp_path / "domains.ckpt")
    with pytest.raises(CheckpointError, match="number of domains"):
        convert(tmp_path / "domains.ckpt")

    no_hpf = {role: dict(sd) for role, sd in checkpoint.items()}
    del no_hpf["generator"]["hpf.filter"]  # w_hpf > 0 encoder depth without the filter
    torch.save(no_hpf, tmp_path / "no_hpf.ckpt")
    with pytest.raises(CheckpointError, match="generator"):
        convert(tmp_path / "no_hpf.ckpt")


def test_cli_convert_then_load_and_translate(tmp_path, cli):
    """`ganzoo convert stargan_v2` writes a model folder holding exactly the official tensors."""
    import numpy as np
    from PIL import Image

    import ganzoo

    c = SMALL_CONFIGS["hpf_32"]
    nets = small_networks(c, seed=30)
    ema_file = tmp_path / "100000_nets_ema.ckpt"
    from ganzoo_stargan_v2.fan import FAN

    # a w_hpf > 0 release holds its face-alignment network under "fan" (translate needs it for the masks)
    torch.save({**{r: nets[r].state_dict() for r in ("generator", "mapping_network", "style_encoder")},
                "fan": FAN().state_dict()}, ema_file)
    nets_file = tmp_path / "100000_nets.ckpt"
    torch.save({r: n.state_dict() for r, n in nets.items()}, nets_file)
    result = cli("convert", "stargan_v2", str(ema_file), str(nets_file), str(tmp_path / "model"),
                 "--domains", ",".join(f"d{i}" for i in range(c["num_domains"])))
    assert result.returncode == 0, result.stderr
    model = ganzoo.load(str(tmp_path / "model"))
    for role in ("generator", "mapping_network", "style_encoder"):
        for key, value in nets[role].state_dict().items():
            assert torch.equal(model.ema_nets[role].state_dict()[key], value), (role, key)
    for key, value in nets["discriminator"].state_dict().items():
        assert torch.equal(model.nets["discriminator"].state_dict()[key], value)
    Image.fromarray(np.full((24, 24, 3), 128, np.uint8)).save(tmp_path / "x.png")
    tr = cli("translate", str(tmp_path / "model"), "-i", str(tmp_path / "x.png"), "-t", "d1", "-o", str(tmp_path / "out"))
    assert tr.returncode == 0, tr.stderr
    assert Image.open(tmp_path / "out" / "x.png").size == (c["img_size"], c["img_size"])
    again = cli("convert", "stargan_v2", str(ema_file), str(tmp_path / "model"))
    assert again.returncode == 2 and "already exists" in again.stderr


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_nearest_upsampling_equals_interpolate_in_values_and_gradients(dtype):
    from ganzoo_stargan_v2.resampling import upsample_nearest2x

    x = torch.randn(3, 5, 7, 6, dtype=dtype, requires_grad=True)
    grad = torch.randn(3, 5, 14, 12, dtype=dtype)
    expected = F.interpolate(x, scale_factor=2, mode="nearest")
    got = upsample_nearest2x(x)
    assert torch.equal(got, expected)
    assert torch.equal(torch.autograd.grad(got, x, grad)[0], torch.autograd.grad(expected, x, grad)[0])


@pytest.mark.parametrize("size", [8, 32])  # both ways of computing conv-then-pool, at 2 images
@pytest.mark.parametrize("normalize", [False, True])
def test_downsampling_resblk_equals_the_official_order_in_values_and_gradients(size, normalize):
    """On a CPU, conv3x3 then pool runs as one stride-2 4x4 convolution for batches of enough pixels, and the
    shortcut pools before its 1x1 convolution: the same function, so outputs, parameter gradients and R1's double
    backward match the official order (conv, then pool, in both branches) to float rounding."""
    from ganzoo_stargan_v2.resampling import POOLED_CONV_MIN_PIXELS, by_stride

    assert by_stride(torch.empty(2, 4, size, size), POOLED_CONV_MIN_PIXELS) == (size == 32)
    block = randomize(ResBlk(4, 6, normalize=normalize, downsample=True), seed=2).double()
    lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731

    def official(x):
        h = affine_instance_norm(x, block.norm1) if normalize else x
        h = F.avg_pool2d(block.conv1(lrelu(h)), 2)
        h = affine_instance_norm(h, block.norm2) if normalize else h
        h = block.conv2(lrelu(h))
        return (F.avg_pool2d(F.conv2d(x, block.conv1x1.weight), 2) + h) / math.sqrt(2)

    params = list(block.parameters())
    results = []
    for forward in (block, official):
        x = torch.randn(2, 4, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
        x.requires_grad_(True)
        out = forward(x)
        (grad_x,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
        penalty = grad_x.square().sum()  # R1-like: differentiates the block twice
        results.append([out, grad_x, *torch.autograd.grad(penalty, params)])
    for got, expected in zip(*results):
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("size", [4, 16])  # both ways of computing upsample-then-conv, at 2 images
def test_upsampling_adain_resblk_equals_the_official_order_in_values_and_gradients(size):
    """On a CPU, nearest upsampling then conv3x3 runs as one stride-2 transposed convolution for inputs of enough
    pixels: the same function as the official order (interpolate, then conv, and the shortcut's interpolate, then
    conv1x1), in outputs, gradients of every parameter and the style, and a double backward."""
    from ganzoo_stargan_v2.resampling import UPSAMPLED_CONV_MIN_PIXELS, by_stride

    assert by_stride(torch.empty(2, 6, size, size), UPSAMPLED_CONV_MIN_PIXELS) == (size == 16)
    block = randomize(AdainResBlk(6, 4, style_dim=5, upsample=True), seed=4).double()
    lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
    up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")  # noqa: E731

    def official(x, s):
        h = block.conv1(up(lrelu(block.norm1(x, s))))
        h = block.conv2(lrelu(block.norm2(h, s)))
        return (h + block.conv1x1(up(x))) / math.sqrt(2)

    results = []
    for forward in (block, official):
        gen = torch.Generator().manual_seed(5)
        x = torch.randn(2, 6, size, size, dtype=torch.float64, generator=gen).requires_grad_(True)
        s = torch.randn(2, 5, dtype=torch.float64, generator=gen).requires_grad_(True)
        out = forward(x, s)
        (grad_x,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
        results.append([out, grad_x, *torch.autograd.grad(grad_x.square().sum(), [s, *block.parameters()])])
    for got, expected in zip(*results):
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-10)
