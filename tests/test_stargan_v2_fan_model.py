"""StarGAN v2 with w_hpf > 0 (the CelebA-HQ model): the FAN's masks in training and inference, the FAN saved in
the model folder, the refusal without FAN weights, and the official release converted whole (FAN included).

The FANs here have random weights (full official size: its input is always 256 px); images are 32 px, the smallest
size at which the generator's masked skip runs (official: at 32, 64 and 128 px).
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
import yaml
from safetensors.torch import save_file

import ganzoo
from ganzoo.errors import CheckpointError, RecipeError
from ganzoo.recipe import deep_merge, load_recipe
from ganzoo.trainer import Trainer
from ganzoo_stargan_v2.fan import FAN
from ganzoo_stargan_v2.model import StarGANv2
from ganzoo_stargan_v2.networks import Generator, MappingNetwork, StyleEncoder
from tests.conftest import TINY_V2

def assert_near(actual: torch.Tensor, expected: torch.Tensor, atol: float) -> None:
    """Largest absolute difference at most ``atol`` (torch.testing's first call imports for seconds)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    diff = (actual.float() - expected.float()).abs().max().item()
    assert diff <= atol, f"largest difference {diff:.3g} > {atol:g}"



def random_fan(seed: int) -> FAN:
    torch.manual_seed(seed)
    fan = FAN()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so loading them matters
        for m in fan.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return fan


@pytest.fixture(scope="module")
def fan_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("fan") / "fan.safetensors"
    fan = random_fan(3)
    save_file({k: v.contiguous() for k, v in fan.state_dict().items()}, str(path))
    return path, fan.state_dict()


def masked_recipe(tmp_path, fan_path, **train):
    doc = deep_merge(TINY_V2, {
        "networks": {"generator": {"w_hpf": 1}},
        "losses": {"ds_decay_steps": 10},
        "data": {"image_size": 32, "batch_size": 1, "num_train": 4, "num_val": 2},
        "train": {"steps": 2, "checkpoint_every": 1, "sample_every": 0, "ema": 0.9,
                  **({"frozen_weights": {"fan": str(fan_path)}} if fan_path else {}), **train},
    })
    path = tmp_path / "masked.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_w_hpf_recipe_without_fan_weights_refuses_with_how_to_get_them(tmp_path):
    with pytest.raises(RecipeError) as info:
        Trainer(load_recipe(masked_recipe(tmp_path, None)), tmp_path / "run", quiet=True).run()
    message = str(info.value)
    assert "train.frozen_weights.fan" in message and "ganzoo pull stargan_v2.celeba_hq" in message
    assert "wing.ckpt" in message and "\n" not in message


def test_w_hpf_zero_never_builds_a_fan(tiny_recipe):
    from ganzoo_stargan_v2.model import StarGANv2

    model = StarGANv2(load_recipe(tiny_recipe()), ["red", "green", "blue"])
    model.build()
    assert model.frozen_nets == {} and model.w_hpf == 0


def test_masks_reach_d_g_and_cycle_and_resume_is_exact(tmp_path, fan_file, monkeypatch):
    fan_path, fan_state = fan_file
    recipe = masked_recipe(tmp_path, fan_path)

    # Every FAN call: which image it saw, so each generator call can be matched to the masks it was given.
    made = {}
    original = FAN.get_heatmap

    def recording(self, images):
        masks = original(self, images)
        made[id(masks[0])] = (images.detach().clone(), masks)  # the masks kept alive, so ids stay unique
        return masks

    monkeypatch.setattr(FAN, "get_heatmap", recording)
    calls = []
    original_forward = Generator.forward

    def own_masks(x, masks):
        """Whether ``masks`` are the FAN's masks of ``x``: of one recorded FAN input, or of it stacked k times
        (one generator call for several styles of the same batch)."""
        for images, made_masks in made.values():
            k = x.shape[0] // images.shape[0]
            tile = (k, 1, 1, 1)
            if (k * images.shape[0] == x.shape[0] and torch.equal(images.repeat(tile), x.detach())
                    and all(torch.equal(m.repeat(tile), given) for m, given in zip(made_masks, masks))):
                return True
        return False

    def generator_call(self, x, s, masks=None):
        calls.append((masks is not None, masks is not None and own_masks(x, masks)))
        return original_forward(self, x, s, masks=masks)

    monkeypatch.setattr(Generator, "forward", generator_call)
    batches = []
    step = StarGANv2.train_step

    def remember(self, batch, step_, ctx):
        batches.append(batch["x"].clone())
        return step(self, batch, step_, ctx)

    monkeypatch.setattr(StarGANv2, "train_step", remember)
    straight = Trainer(load_recipe(recipe), tmp_path / "straight", quiet=True)
    straight.run()
    monkeypatch.setattr(StarGANv2, "train_step", step)
    monkeypatch.setattr(Generator, "forward", original_forward)

    # the trial step and 2 steps; per iteration: the latent fake (D's first step and G's first step), the reference
    # fake of D's second step with G's first diversity fake (one call), G's first cycle, then G's reference step
    # (x_fake, x_fake2, cycle)
    assert len(batches) == 3 and len(calls) == 3 * 6
    assert all(given for given, _ in calls), "a generator call ran without masks"
    # each call got the masks of its own input image: the real batch for D and G, x_fake for the cycle term
    assert all(own for _, own in calls)
    fed_real = sum(any(torch.equal(src, x) for x in batches) for src, _ in made.values())
    assert fed_real == 3 and len(made) == 3 * 3  # real masks once per step, fake masks for both cycles

    # the FAN is saved in the model folder, untouched by training, and comes back with it
    folder = tmp_path / "straight" / "checkpoints" / "step_00000002"
    assert json.loads((folder / "config.json").read_text())["frozen"] == ["fan"]
    loaded = ganzoo.load(str(tmp_path / "straight"))
    assert set(loaded.frozen_nets) == {"fan"} and "fan" not in loaded.nets and "fan" not in loaded.ema_nets
    for key, value in loaded.frozen_nets["fan"].state_dict().items():
        assert torch.equal(value, fan_state[key]), key
    assert "fan" not in straight.optimizers

    # resume from the straight run's first checkpoint (a copy of the run, rolled back to step 1): the second step
    # gives the same weights as the straight run
    import shutil

    shutil.copytree(tmp_path / "straight", tmp_path / "resumed")
    shutil.rmtree(tmp_path / "resumed" / "checkpoints" / "step_00000002")
    (tmp_path / "resumed" / "latest.json").write_text(json.dumps({"step": 1, "path": "checkpoints/step_00000001"}))
    Trainer(load_recipe(tmp_path / "resumed" / "recipe.yaml"), tmp_path / "resumed", resume=True, quiet=True).run()
    resumed = ganzoo.load(str(tmp_path / "resumed"))
    assert resumed.step == 2
    for group in ("nets", "ema_nets", "frozen_nets"):
        for role, net in getattr(loaded, group).items():
            other = getattr(resumed, group)[role].state_dict()
            for key, value in net.state_dict().items():
                assert torch.equal(value, other[key]), f"{group}.{role}.{key}"

    # inference uses the masks; a folder without fan.safetensors refuses in one sentence
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    out = loaded.translate(x, torch.tensor([1]), reference=x)
    (folder / "fan.safetensors").unlink()
    bare = ganzoo.load(str(folder))
    with pytest.raises(CheckpointError, match="ganzoo convert stargan_v2_fan wing.ckpt"):
        bare.translate(x, torch.tensor([1]), reference=x)
    assert out.shape == x.shape


# --------------------------------------------------------------------------- the official release, converted


def official_shift(x: torch.Tensor, n: int) -> torch.Tensor:
    """Official ``shift`` (positive n: up), written with a permutation of rows as the official code does."""
    h = x.size(2)
    if n >= 0:
        perm = torch.cat([torch.arange(n, h), torch.arange(n)])
    else:
        perm = torch.cat([torch.arange(h + n, h), torch.arange(h + n)])
    return x[:, :, perm, :]


def official_masks(fan: FAN, x: torch.Tensor):
    """The official ``FAN.get_heatmap`` (core/wing.py), written out here step by step for the comparison."""
    x = F.interpolate(x, size=256, mode="bilinear")
    hm = fan(x * 0.5 + 0.5)[:, :-1]
    hm = F.interpolate(hm, scale_factor=x.size(2) // hm.size(2), mode="bilinear", align_corners=True)
    hm = torch.where(hm < 0.1, torch.zeros_like(hm), hm)
    n, c, h, w = hm.shape
    flat = hm.reshape(n * c, -1)
    hm = ((flat - flat.min(1, keepdim=True)[0]) / (flat.max(1, keepdim=True)[0] - flat.min(1, keepdim=True)[0] + 1e-6)).view(n, c, h, w)
    for (s, e), n_shift, p in [((8, 25), 0, 3), ((33, 51), -7, 2), ((55, 60), 8, 4), ((77, 82), -8, 4),
                               ((83, 88), 8, 4), ((88, 96), -2, 3)]:
        hm[:, s:e] = official_shift(hm[:, s:e], n_shift) ** p
    hm[:, list(range(0, 8)) + list(range(25, 33)) + [33, 46, 76, 82]] = 0
    hm[:, 52:55] = official_shift(hm[:, 52:55], 4)
    hm[:, 60:76] = official_shift(hm[:, 60:76], -8) ** 3 + official_shift(hm[:, 60:76], -24)
    hm2 = hm.clone()
    hm2[:, 8:25] = 0
    hm2[:, 76:96] = 0
    hm2[:, 33:51] = 0
    return hm.sum(1, keepdim=True).clamp(0, 1), hm2.sum(1, keepdim=True).clamp(0, 1)


def test_converted_celeba_hq_release_keeps_its_fan_and_matches_the_official_masked_forward(tmp_path):
    from ganzoo_stargan_v2.convert import convert_fan_to_folder, convert_to_folder

    torch.manual_seed(0)
    size, style_dim = 32, 16
    generator = Generator(img_size=size, style_dim=style_dim, max_conv_dim=32, w_hpf=1, dim_in=16)
    mapping = MappingNetwork(latent_dim=4, style_dim=style_dim, num_domains=2, hidden_dim=16)
    encoder = StyleEncoder(img_size=size, style_dim=style_dim, num_domains=2, max_conv_dim=32, dim_in=16)
    with torch.no_grad():  # non-zero affine and AdaIN weights everywhere
        for net in (generator, mapping, encoder):
            for p in net.parameters():
                p.normal_(0, 0.2)
    fan = random_fan(7)
    # as the release: nets_ema holds the FAN under "fan" (the official build_model puts it there)
    ckpt = tmp_path / "100000_nets_ema.ckpt"
    torch.save({"generator": generator.state_dict(), "mapping_network": mapping.state_dict(),
                "style_encoder": encoder.state_dict(), "fan": fan.state_dict()}, ckpt)
    folder = convert_to_folder([ckpt], tmp_path / "model")
    assert (folder / "fan.safetensors").is_file()
    model = ganzoo.load(str(folder))

    torch.manual_seed(1)
    x = torch.rand(2, 3, size, size) * 2 - 1
    ref = torch.rand(2, 3, size, size) * 2 - 1
    y = torch.tensor([1, 0])
    ours = model.translate(x, y, reference=ref)
    with torch.no_grad():
        s = encoder(ref, y)
        expected = generator(x, s, masks=official_masks(fan, x)).clamp(-1, 1)
        unmasked = generator(x, s).clamp(-1, 1)
    assert_near(ours, expected, 1e-5)
    assert (ours - unmasked).abs().max() > 1e-3  # the masks change the output: the test can fail

    # the separate wing release ({'state_dict': ...}) converts to the same FAN
    wing = tmp_path / "wing.ckpt"
    torch.save({"state_dict": fan.state_dict(), "epoch": 0}, wing)
    out = convert_fan_to_folder([wing], tmp_path / "fan")
    from safetensors.torch import load_file

    converted = load_file(str(out / "fan.safetensors"))
    assert all(torch.equal(converted[k], v) for k, v in fan.state_dict().items())
    # a file that holds no FAN gets one sentence
    torch.save({"generator": generator.state_dict()}, tmp_path / "nofan.ckpt")
    with pytest.raises(CheckpointError, match="holds no FAN weights"):
        convert_fan_to_folder([tmp_path / "nofan.ckpt"], tmp_path / "fan2")
