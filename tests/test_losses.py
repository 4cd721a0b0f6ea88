"""The shared GAN maths (ganzoo/losses.py) against independent computations, and recipes choosing losses by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from ganzoo import losses
from ganzoo.errors import RecipeError
from ganzoo.plugins import get_registry, reset
from ganzoo.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def logits():
    torch.manual_seed(0)
    return torch.randn(4, 1, 5, 5, dtype=torch.float64) * 3


# --------------------------------------------------------------------------- adversarial losses, written out


@pytest.mark.parametrize("real", [True, False])
def test_vanilla_is_binary_cross_entropy_on_logits(logits, real):
    p = torch.sigmoid(logits.double())
    expected = -(p.log() if real else (1 - p).log()).mean()
    got = losses.vanilla(logits.float(), real)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("real", [True, False])
def test_lsgan_is_the_mean_squared_distance_to_one_or_zero(logits, real):
    expected = ((logits - (1.0 if real else 0.0)) ** 2).mean()
    assert losses.lsgan(logits.float(), real).item() == pytest.approx(expected.item(), rel=1e-5)


def test_wgan_is_minus_or_plus_the_mean_score(logits):
    scores = logits.float()
    assert losses.wgan(scores, True).item() == pytest.approx(-logits.mean().item(), rel=1e-5)
    assert losses.wgan(scores, False).item() == pytest.approx(logits.mean().item(), rel=1e-5)


def test_hinge_differs_for_the_discriminator_and_the_generator(logits):
    scores = logits.float()
    on_real = sum(max(0.0, 1 - v) for v in logits.flatten().tolist()) / logits.numel()
    on_fake = sum(max(0.0, 1 + v) for v in logits.flatten().tolist()) / logits.numel()
    assert losses.hinge(scores, True).item() == pytest.approx(on_real, rel=1e-5)
    assert losses.hinge(scores, False).item() == pytest.approx(on_fake, rel=1e-5)
    assert losses.HINGE(scores, True, for_discriminator=False).item() == pytest.approx(-logits.mean().item(), rel=1e-5)
    # the other losses ignore the role: a generator's loss is the discriminator's loss on "real"
    assert torch.equal(losses.LSGAN(scores, True, for_discriminator=False), losses.lsgan(scores, True))


def test_adversarial_losses_compute_in_fp32_whatever_the_forward_ran_in(logits):
    half = logits.to(torch.bfloat16)
    for loss in (losses.VANILLA, losses.LSGAN, losses.HINGE, losses.WGANGP):
        out = loss(half, True)
        assert out.dtype == torch.float32 and torch.equal(out, loss(half.float(), True))


# --------------------------------------------------------------------------- penalties against torch.autograd


class SmallCritic(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4 * 4 * 4, 1)

    def forward(self, x):
        return self.head(torch.tanh(self.conv(x)).flatten(1))


def per_image_gradients(critic, images):
    """d critic(x_i) / d x_i for each image on its own (one autograd call per image: no batch sum involved)."""
    grads = []
    for image in images:
        image = image[None].clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(image).sum(), image)
        grads.append(grad[0])
    return torch.stack(grads)


def test_wgan_gp_of_a_linear_critic_is_the_squared_distance_of_its_weight_norm_to_one():
    torch.manual_seed(1)
    weight = torch.randn(3, 4, 4)
    penalty = losses.wgan_gp(lambda x: (x * weight).flatten(1).sum(1), torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4))
    assert penalty.item() == pytest.approx((weight.norm() - 1).pow(2).item(), rel=1e-5)


def test_wgan_gp_matches_per_image_autograd_at_the_same_interpolations():
    torch.manual_seed(2)
    critic, real, fake = SmallCritic(), torch.randn(3, 3, 4, 4), torch.randn(3, 3, 4, 4)
    torch.manual_seed(7)
    penalty = losses.wgan_gp(critic, real, fake)
    torch.manual_seed(7)
    alpha = torch.rand(3, 1, 1, 1)
    grads = per_image_gradients(critic, alpha * real + (1 - alpha) * fake)
    expected = ((grads.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-5)
    penalty.backward()  # differentiable: the critic's weights get a gradient from the penalty
    assert critic.conv.weight.grad is not None and critic.conv.weight.grad.abs().sum() > 0


def test_r1_matches_the_analytic_gradient_and_per_image_autograd():
    torch.manual_seed(3)
    real = torch.randn(4, 3, 4, 4).requires_grad_(True)
    scale = torch.rand(3, 4, 4)
    out = (real.pow(2) * scale).flatten(1).sum(1)  # d/dx = 2 * scale * x
    analytic = 0.5 * (2 * scale * real.detach()).pow(2).flatten(1).sum(1).mean()
    assert losses.r1(out, real).item() == pytest.approx(analytic.item(), rel=1e-5)

    critic = SmallCritic()
    real = torch.randn(2, 3, 4, 4).requires_grad_(True)
    expected = 0.5 * per_image_gradients(critic, real.detach()).pow(2).flatten(1).sum(1).mean()
    penalty = losses.r1(critic(real), real)
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-5)
    penalty.backward()
    assert critic.head.weight.grad.abs().sum() > 0


# --------------------------------------------------------------------------- the losses registry and recipes


def test_the_core_registers_the_shared_losses():
    registry = get_registry()
    for name in ("vanilla", "lsgan", "hinge", "wgangp"):
        assert isinstance(registry.get("losses", name), losses.AdversarialLoss), name
    assert registry.get("losses", "wgangp").critic and not registry.get("losses", "lsgan").critic
    assert registry.get("losses", "wgan_gp_penalty") is losses.wgan_gp
    assert registry.get("losses", "r1_penalty") is losses.r1
    assert registry.entry("losses", "lsgan").plugin == "core"
    assert {"vanilla", "lsgan", "hinge", "wgangp"} <= set(losses.adversarial_loss_names())
    assert "r1_penalty" not in losses.adversarial_loss_names()


@pytest.fixture
def softplus_loss():
    """A third party's adversarial loss, registered the way a plugin would, and counted when used."""
    calls = []

    def softplus(prediction, target_is_real):
        """The non-saturating loss written with softplus."""
        calls.append(target_is_real)
        prediction = prediction.float()
        return nn.functional.softplus(-prediction if target_is_real else prediction).mean()

    reset()
    get_registry().add("losses", "thirdparty.softplus", losses.AdversarialLoss(softplus), plugin="thirdparty")
    yield calls
    reset()


@pytest.mark.parametrize("recipe_name, roles, size", [("cyclegan_shapes.yaml", ("a", "b"), 16),
                                                      ("pix2pix_shapes.yaml", ("source", "target"), 32)])
def test_a_recipe_chooses_a_registered_adversarial_loss(softplus_loss, recipe_name, roles, size):
    from ganzoo.trainer import StepContext

    recipe = load_recipe(ROOT / "recipes" / recipe_name, ["losses.gan_mode=thirdparty.softplus", f"data.image_size={size}"])
    model_cls = get_registry().get("models", recipe.model)
    model = model_cls(recipe, ["red", "blue"])
    model.build()
    assert model.adversarial is get_registry().get("losses", "thirdparty.softplus")
    torch.manual_seed(0)
    ctx = StepContext(torch.device("cpu"), "fp32", model.build_optimizers())
    batch = {role: torch.rand(2, 3, size, size) * 2 - 1 for role in roles}
    logs = model.train_step(batch, 0, ctx)
    assert all(torch.isfinite(v) for v in logs.values())
    assert True in softplus_loss and False in softplus_loss  # used for the real and the fake targets


def test_cyclegan_trains_with_the_hinge_loss():
    from ganzoo.trainer import StepContext

    recipe = load_recipe(ROOT / "recipes" / "cyclegan_shapes.yaml", ["losses.gan_mode=hinge", "data.image_size=16"])
    model = get_registry().get("models", "cyclegan")(recipe, ["red", "blue"])
    model.build()
    ctx = StepContext(torch.device("cpu"), "fp32", model.build_optimizers())
    logs = model.train_step({"a": torch.rand(2, 3, 16, 16) * 2 - 1, "b": torch.rand(2, 3, 16, 16) * 2 - 1}, 0, ctx)
    assert all(torch.isfinite(v) for v in logs.values())


@pytest.mark.parametrize("name", ["lsgam", "r1_penalty"])
def test_an_unknown_adversarial_loss_is_one_recipe_error_naming_the_key_and_the_registered_ones(name):
    with pytest.raises(RecipeError) as info:
        load_recipe(ROOT / "recipes" / "cyclegan_shapes.yaml", [f"losses.gan_mode={name}"])
    message = str(info.value)
    assert "losses.gan_mode" in message and f'"{name}" is not a registered adversarial loss' in message
    assert "lsgan, vanilla, wgangp" in message.replace("hinge, ", "")
    assert "\n" not in message
    if name == "lsgam":
        assert 'Did you mean "lsgan"?' in message
    with pytest.raises(RecipeError, match="losses.gan_mode"):
        losses.adversarial_loss(name)
