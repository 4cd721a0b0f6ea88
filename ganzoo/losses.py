"""The GAN maths every family shares, written once: adversarial losses and gradient penalties.

Adversarial losses take a discriminator's raw output (logits or critic scores) and
whether its target is "real"; they compute in fp32 whatever precision the
forward pass ran in. Each is an :class:`AdversarialLoss` registered in the
``losses`` registry kind under the name a recipe uses (``vanilla``, ``lsgan``,
``hinge``, ``wgangp``); a family that lets its recipe choose one (CycleGAN's and
pix2pix's ``losses.gan_mode``) declares the field as :data:`AdversarialLossName`
and calls :func:`adversarial_loss`. A plugin adds its own adversarial loss by
registering an :class:`AdversarialLoss` under a new name.

The penalties regularise the discriminator through the gradient of its output
with respect to its input: :func:`wgan_gp` (Gulrajani et al. 2017, at random
interpolations of real and fake) and :func:`r1` (Mescheder et al. 2018, on reals).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from ganzoo.errors import RecipeError, did_you_mean
from ganzoo.model import differentiable_twice, input_gradient

__all__ = [
    "AdversarialLoss", "AdversarialLossName", "adversarial_loss", "adversarial_loss_names",
    "vanilla", "lsgan", "hinge", "wgan", "wgan_gp", "r1",
    "VANILLA", "LSGAN", "HINGE", "WGANGP",
]


# --------------------------------------------------------------------------- adversarial losses


def vanilla(prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    """The original GAN loss (Goodfellow et al. 2014): binary cross-entropy of the logits against 1 (real) or 0 (fake)."""
    prediction = prediction.float()
    target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
    return F.binary_cross_entropy_with_logits(prediction, target)


def lsgan(prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    """Least-squares GAN (Mao et al. 2017): mean squared distance of the outputs to 1 (real) or 0 (fake)."""
    prediction = prediction.float()
    target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
    return F.mse_loss(prediction, target)


def wgan(prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    """Wasserstein GAN (Arjovsky et al. 2017): minus the mean critic score for real targets, plus it for fake ones."""
    prediction = prediction.float()
    return -prediction.mean() if target_is_real else prediction.mean()


def hinge(prediction: torch.Tensor, target_is_real: bool, *, for_discriminator: bool = True) -> torch.Tensor:
    """Hinge loss (Lim & Ye 2017; SAGAN, BigGAN): D takes mean(relu(1 - D(x))) on reals and mean(relu(1 + D(x))) on
    fakes; the generator takes minus the mean score of its fakes (``for_discriminator=False``)."""
    prediction = prediction.float()
    if not for_discriminator:
        return -prediction.mean()
    return F.relu(1.0 - prediction).mean() if target_is_real else F.relu(1.0 + prediction).mean()


class AdversarialLoss:
    """An adversarial loss a recipe can name: ``loss(prediction, target_is_real, for_discriminator=...)``.

    ``fn`` is ``fn(prediction, target_is_real)`` or, when the generator's loss is not the discriminator's loss on
    a "real" target (hinge), ``fn(prediction, target_is_real, for_discriminator=...)`` with ``split_roles``.
    ``critic`` marks a Wasserstein-style loss whose discriminator needs a Lipschitz constraint: families then add
    :func:`wgan_gp`, weighted by their ``gradient_penalty`` weight.
    """

    def __init__(self, fn: Callable[..., torch.Tensor], *, critic: bool = False, split_roles: bool = False):
        self.fn, self.critic, self.split_roles = fn, critic, split_roles
        self.__doc__ = fn.__doc__  # what `ganzoo list losses` shows

    def __call__(self, prediction: torch.Tensor, target_is_real: bool, *, for_discriminator: bool = True) -> torch.Tensor:
        if self.split_roles:
            return self.fn(prediction, target_is_real, for_discriminator=for_discriminator)
        return self.fn(prediction, target_is_real)

    def __repr__(self) -> str:
        return f"AdversarialLoss({self.fn.__name__}{', critic' if self.critic else ''})"


VANILLA = AdversarialLoss(vanilla)
LSGAN = AdversarialLoss(lsgan)
HINGE = AdversarialLoss(hinge, split_roles=True)
WGANGP = AdversarialLoss(wgan, critic=True)


def adversarial_loss_names() -> list[str]:
    """The registered adversarial losses (every ``losses`` entry that is an :class:`AdversarialLoss`)."""
    from ganzoo.plugins import get_registry

    registry = get_registry()
    names = []
    for entry in registry.entries("losses"):
        try:
            if isinstance(entry.resolve(), AdversarialLoss):
                names.append(entry.name)
        except Exception:  # noqa: BLE001 - a broken plugin entry is reported where it is used, not here
            continue
    return names


def _lookup(name: str) -> AdversarialLoss | None:
    from ganzoo.plugins import get_registry

    try:
        loss = get_registry().get("losses", name)
    except Exception:  # noqa: BLE001 - unknown (or unloadable) names are reported with the known ones by the caller
        return None
    return loss if isinstance(loss, AdversarialLoss) else None


def _unknown(name: str) -> str:
    known = adversarial_loss_names()
    return (f'"{name}" is not a registered adversarial loss.{did_you_mean(name, known)} '
            f"Registered ones: {', '.join(known) or 'none'} (see `ganzoo list losses`)")


def adversarial_loss(name: str, *, key: str = "losses.gan_mode") -> AdversarialLoss:
    """The adversarial loss registered as ``name``; a RecipeError naming ``key`` and the registered ones if none is."""
    loss = _lookup(name)
    if loss is None:
        raise RecipeError(f"{key}: {_unknown(name)}; choose one of them.")
    return loss


def _check_adversarial_name(name: str) -> str:
    if _lookup(name) is None:
        raise PydanticCustomError("adversarial_loss", "{reason}", {"reason": _unknown(name)})
    return name


#: A recipe field naming a registered adversarial loss: ``gan_mode: AdversarialLossName = "lsgan"``.
#: An unknown name is a RecipeError at that dotted key listing the registered losses.
AdversarialLossName = Annotated[str, AfterValidator(_check_adversarial_name)]


# --------------------------------------------------------------------------- gradient penalties


def wgan_gp(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
            scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017), without its weight: E[(||grad_x D(x)||_2 - 1)^2] at x = a*real + (1-a)*fake,
    one a ~ U(0, 1) per image.

    ``critic`` maps images to scores (wrap a discriminator with several heads, e.g. ``lambda x: D(x)[0]``). Neither
    input keeps its graph. The critic's forward runs uncompiled (it is differentiated twice) and the gradient is
    taken in fp32 (:func:`ganzoo.model.input_gradient`).
    """
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    with differentiable_twice():
        scores = critic(mixed)
    grad = input_gradient(scores, mixed, scaler)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


def r1(d_out: torch.Tensor, real: torch.Tensor, scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
    """R1 (Mescheder et al. 2018), without its weight: 0.5 * E[||grad_x D(x)||^2] on reals.

    ``d_out`` is the discriminator's output on ``real`` (which requires grad), from a forward run inside
    :func:`ganzoo.model.differentiable_twice`; the adversarial loss can use the same output. The penalty is summed
    in fp32, and under fp16 the gradient is taken at the grad scaler's scale so it does not underflow.
    """
    grad = input_gradient(d_out, real, scaler)
    return 0.5 * grad.pow(2).flatten(1).sum(1).mean()
