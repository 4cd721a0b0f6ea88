"""pix2pix's training algorithm (Isola et al., CVPR 2017), following the official ``pix2pix_model``.

A U-Net generator maps an input image (domain ``data.domains[0]``) to its
paired output (``data.domains[1]``). The discriminator is conditional: it
judges the channel concatenation (input, output), so it learns whether the
output *fits this input*, not only whether it looks real. One iteration: the
discriminator step first, then the generator step (adversarial + 100 x L1 to
the true output).
"""

from __future__ import annotations

import random
from typing import Any

import torch
from torch import nn
from pydantic import Field

from ganzoo.api import AdversarialLoss, AdversarialLossName, DataError, GANModel, StrictModel, adversarial_loss, frozen, wgan_gp
from ganzoo_cyclegan.model import generate_as_official_test


class Pix2PixLosses(StrictModel):
    """Official pix2pix training defaults: vanilla GAN, lambda_L1 100, no image pool."""

    gan_mode: AdversarialLossName = Field("vanilla", description="a registered adversarial loss: vanilla, lsgan, wgangp, hinge, ...")
    l1: float = Field(100.0, ge=0, description="lambda_L1: weight of |G(input) - output|")
    gradient_penalty: float = Field(10.0, ge=0, description="lambda_gp, used only with a critic loss (gan_mode wgangp)")


class Pix2Pix(
    GANModel,
    paper="Isola et al., Image-to-Image Translation with Conditional Adversarial Networks, CVPR 2017",
    citation="@inproceedings{isola2017image, title={Image-to-Image Translation with Conditional Adversarial Networks}, "
             "author={Isola, Phillip and Zhu, Jun-Yan and Zhou, Tinghui and Efros, Alexei A}, booktitle={CVPR}, year={2017}}",
    license="bsd-3-clause",
    pairwise=True,
    paired=True,
    recipes={"small": "pix2pix_shapes", "official": "pix2pix_facades"},
    tiny={"data.num_train": 4, "data.num_val": 2, "networks.generator.ngf": 8, "networks.discriminator.ndf": 8},
):
    """pix2pix: one U-Net generator (input -> output) and a conditional PatchGAN on (input, output)."""

    network_roles = {"generator": "cyclegan.unet_generator", "discriminator": "cyclegan.nlayer_discriminator"}
    # The discriminator sees input and output stacked, so its channels follow the generator's.
    derived_network_args = {"discriminator": ("input_nc",)}
    LossConfig = Pix2PixLosses

    @property
    def eval_modes(self) -> dict[str, bool]:
        """Dropout stays on at test time (the official test script), so outputs vary where the U-Net has dropout."""
        nets = self.inference_nets().values()
        return {"dropout": True} if any(isinstance(m, nn.Dropout) for n in nets for m in n.modules()) else {"fixed": False}

    @staticmethod
    def generators_for_domains(k: int) -> int:
        """One generator per ordered pair of k domains, as for CycleGAN: k(k-1)."""
        return k * (k - 1)

    @classmethod
    def default_recipe(cls) -> dict[str, Any]:
        # Official --model pix2pix: unet_256, batch norm, dropout on, basic D, batch size 1.
        return {
            "networks": {
                "generator": {"name": "cyclegan.unet_generator", "num_downs": 8, "ngf": 64, "norm": "batch", "use_dropout": True},
                "discriminator": {"name": "cyclegan.nlayer_discriminator", "ndf": 64, "n_layers": 3, "norm": "batch"},
            },
            "data": {"image_size": 256, "batch_size": 1},
            "optim": {"lr": 2e-4, "betas": [0.5, 0.999], "schedule": "linear"},
            "train": {"ema": 0.0},
        }

    def derived_kwargs(self, role: str) -> dict[str, Any]:
        if role != "discriminator":
            return {}
        generator = self.recipe.networks.get("generator", {})
        return {"input_nc": generator.get("input_nc", 3) + generator.get("output_nc", 3)}

    def init_weights(self) -> None:
        from ganzoo_cyclegan.networks import init_normal

        for net in self.nets.values():
            net.apply(init_normal)

    # ------------------------------------------------------------------ data

    def training_item(self, dataset, index: int, rng: random.Random) -> dict[str, torch.Tensor]:
        """A pair (input, its true output) with one crop/flip shared by both."""
        if not hasattr(dataset, "load_pair"):
            raise DataError(
                f'pix2pix needs paired images, but the "{type(dataset).__name__}" dataset has none; '
                "use data.name aligned (official A|B images) or shapes_pairs."
            )
        source, target = dataset.load_pair(index, rng)
        return {"source": source, "target": target}

    # ------------------------------------------------------------------ training

    @property
    def adversarial(self) -> AdversarialLoss:
        """The adversarial loss ``losses.gan_mode`` names in the losses registry."""
        return adversarial_loss(self.losses.gan_mode)

    def discriminator_loss(self, source, real, fake, ctx):
        """0.5 * [loss(D(input, fake), fake) + loss(D(input, real), real)], the official ``backward_D``."""
        D, adversarial = self.nets["discriminator"], self.adversarial
        fake_pair, real_pair = torch.cat([source, fake.detach()], 1), torch.cat([source, real], 1)
        with ctx.autocast():
            loss = 0.5 * (adversarial(D(fake_pair), False) + adversarial(D(real_pair), True))
        if adversarial.critic and self.losses.gradient_penalty > 0:
            loss = loss + self.losses.gradient_penalty * wgan_gp(D, real_pair, fake_pair)
        return loss

    def train_step(self, batch, step, ctx):
        source, real = batch["source"], batch["target"]
        G, D = self.nets["generator"], self.nets["discriminator"]
        with ctx.autocast():
            fake = G(source)
        # D step first, on the fake of this forward pass.
        d_loss = self.discriminator_loss(source, real, fake, ctx)
        ctx.optimize(d_loss, "discriminator")
        with frozen(D), ctx.autocast():
            adv = self.adversarial(D(torch.cat([source, fake], 1)), True, for_discriminator=False)
            l1 = (fake.float() - real.float()).abs().mean()
            g_loss = adv + self.losses.l1 * l1
        ctx.optimize(g_loss, "generator")
        return {"D/loss": d_loss.detach(), "G/adv": adv.detach(), "G/l1": l1.detach()}

    # ------------------------------------------------------------------ inference

    def sheet_targets(self) -> list[tuple[str, int]]:
        """Only the output domain: "translating" into the input domain returns the input."""
        return [(self.domains[1], 1)]

    def size_multiple(self) -> int:
        """Fully convolutional (the :class:`~ganzoo.api.AnySizeModel` capability): the U-Net's 2**num_downs."""
        return self.inference_nets()["generator"].size_multiple

    @torch.no_grad()
    def translate(self, images, target, *, reference=None, z=None, generator=None):
        """Inputs -> outputs for target index 1; target 0 (the input domain) returns the input unchanged.

        As the official test script (no ``--eval``): dropout on, batch norm on
        the single image's statistics; ``generator`` seeds the dropout noise.
        """
        target = torch.as_tensor(target, device=images.device)
        out = images.clone()
        chosen = target == 1
        if chosen.any():
            out[chosen] = generate_as_official_test(self.inference_nets()["generator"], images[chosen], generator).to(out.dtype)  # autocast: bf16 -> fp32
        return out.clamp(-1, 1)

    # ------------------------------------------------------------------ export

    def export_graphs(self):
        """``ganzoo export``: the U-Net (input -> output) with the official test's per-image batch norm, dropout left
        out; any size that is a multiple of 2**num_downs."""
        from ganzoo_cyclegan.export import generator_graph

        spec = self.network_specs.get("generator") or self.network_spec("generator")
        stride = 2 ** int(spec["kwargs"].get("num_downs", 8))
        return [generator_graph(self, "generator", 1, stride=stride, min_size=stride)]
