"""CycleGAN's training algorithm (Zhu et al., ICCV 2017), following the official ``cycle_gan_model``.

Two generators translate between domains a and b (``data.domains[0]`` and
``[1]``); each domain has a PatchGAN discriminator judging images *of* that
domain. Official names map to ours as

    G_A -> generator_a2b     G_B -> generator_b2a
    D_A -> discriminator_b   D_B -> discriminator_a   (official D_A judges G_A's outputs, i.e. domain B)

One iteration: the generator step (D frozen) with adversarial + cycle
(lambda 10 each way) + identity (0.5 x lambda) losses, then the discriminator
step on real images and on fakes drawn from a history pool of 50.
"""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

import torch
from pydantic import Field
from torch import nn

from ganzoo.api import (
    AdversarialLoss,
    AdversarialLossName,
    GANModel,
    GanzooError,
    RecipeError,
    StrictModel,
    adam,
    adversarial_loss,
    frozen,
    per_image,
    wgan_gp,
)


class CycleGANLosses(StrictModel):
    """Loss weights and the discriminators' history pool (official ``cycle_gan`` defaults)."""

    gan_mode: AdversarialLossName = Field("lsgan", description="a registered adversarial loss: lsgan, vanilla, wgangp, hinge, ...")
    cycle_a: float = Field(10.0, ge=0, description="lambda_A: weight of |G_b2a(G_a2b(a)) - a|")
    cycle_b: float = Field(10.0, ge=0, description="lambda_B: weight of |G_a2b(G_b2a(b)) - b|")
    identity: float = Field(0.5, ge=0, description="identity weight as a fraction of the cycle weight (official lambda_identity)")
    gradient_penalty: float = Field(10.0, ge=0, description="lambda_gp, used only with a critic loss (gan_mode wgangp)")
    pool_size: int = Field(50, ge=0, description="past fakes kept per discriminator; 0 shows D only the newest fakes")


@torch.no_grad()
def generate_as_official_test(generator: nn.Module, images: torch.Tensor, rng: torch.Generator | None = None) -> torch.Tensor:
    """Run ``generator`` the way the official ``test.py`` does (no ``--eval``): one image at a time, train mode.

    The official test script never calls ``model.eval()`` unless asked, so
    dropout stays on (pix2pix's only source of randomness) and batch norm uses
    the statistics of the single test image. We reproduce that without side
    effects: the running statistics are updated on throw-away copies, the
    module's mode is restored, and dropout draws from ``rng`` (or a fork of
    the global RNG), not from the global stream.
    """
    from torch.func import functional_call

    if not any(isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.Dropout)) for m in generator.modules()):
        return generator(images)  # instance norm / no norm, no dropout: the mode changes nothing, keep the batch
    was_training = generator.training
    seed = int(torch.randint(0, 2**62, (1,), generator=rng)) if rng is not None else None
    outputs = []
    try:
        generator.train()
        devices = [images.device] if images.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            if seed is not None:
                torch.manual_seed(seed)
            for image in images:
                scratch = {name: b.clone() for name, b in generator.named_buffers()}
                outputs.append(functional_call(generator, scratch, (image[None],)))
    finally:
        generator.train(was_training)
    return torch.cat(outputs)


# --------------------------------------------------------------------------- the history pool


class ImagePool:
    """Shrivastava et al.'s history of generated images, as the official ``ImagePool``.

    Until full, every new fake is stored and returned. Afterwards each fake is,
    with probability 1/2, swapped for a random stored one (which is returned);
    otherwise it is returned as is. Draws use torch's global RNG, which the
    trainer saves and restores, and the stored images are saved with each
    checkpoint (``CycleGAN.training_state``), so a resumed run continues
    exactly. (The official ``--continue_train`` starts from an empty pool.)
    """

    def __init__(self, size: int):
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        returned = []
        for image in images.detach():
            image = image[None]
            if len(self.images) < self.size:
                self.images.append(image)
                returned.append(image)
            elif float(torch.rand(())) > 0.5:
                slot = int(torch.randint(0, self.size, ()))
                returned.append(self.images[slot])
                self.images[slot] = image
            else:
                returned.append(image)
        return torch.cat(returned)


# --------------------------------------------------------------------------- the model


def _network(name: str, **kwargs) -> dict[str, Any]:
    return {"name": name, **kwargs}


class CycleGAN(
    GANModel,
    paper="Zhu et al., Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks, ICCV 2017",
    citation="@inproceedings{zhu2017unpaired, title={Unpaired Image-to-Image Translation using Cycle-Consistent "
             "Adversarial Networks}, author={Zhu, Jun-Yan and Park, Taesung and Isola, Phillip and Efros, Alexei A}, "
             "booktitle={ICCV}, year={2017}}",
    license="bsd-3-clause",
    pairwise=True,
    recipes={"small": "cyclegan_shapes", "official": "cyclegan_horse2zebra"},
    tiny={"data.batch_size": 2, "data.num_train": 6, "data.num_val": 2,
          "networks.generator_a2b.ngf": 8, "networks.generator_b2a.ngf": 8,
          "networks.generator_a2b.n_blocks": 1, "networks.generator_b2a.n_blocks": 1,
          "networks.discriminator_a.ndf": 8, "networks.discriminator_b.ndf": 8},
):
    """CycleGAN: two generators and two PatchGANs for one pair of domains (a <-> b)."""

    network_roles = {
        "generator_a2b": "cyclegan.resnet_generator",
        "generator_b2a": "cyclegan.resnet_generator",
        "discriminator_a": "cyclegan.nlayer_discriminator",
        "discriminator_b": "cyclegan.nlayer_discriminator",
    }
    LossConfig = CycleGANLosses

    @staticmethod
    def generators_for_domains(k: int) -> int:
        """Generators needed to translate between every ordered pair of k domains: k(k-1) (k(k-1)/2 models)."""
        return k * (k - 1)

    @staticmethod
    def models_for_domains(k: int) -> int:
        return k * (k - 1) // 2

    @classmethod
    def default_recipe(cls) -> dict[str, Any]:
        # Official train options with --model cycle_gan: resnet_9blocks, basic D, instance norm, no dropout.
        generator = _network("cyclegan.resnet_generator", ngf=64, norm="instance", use_dropout=False, n_blocks=9)
        discriminator = _network("cyclegan.nlayer_discriminator", ndf=64, n_layers=3, norm="instance")
        return {
            "networks": {
                "generator_a2b": dict(generator), "generator_b2a": dict(generator),
                "discriminator_a": dict(discriminator), "discriminator_b": dict(discriminator),
            },
            "data": {"image_size": 256, "batch_size": 1},
            "optim": {"lr": 2e-4, "betas": [0.5, 0.999], "schedule": "linear"},
            "train": {"ema": 0.0},
        }

    def __init__(self, recipe, domains: list[str]):
        super().__init__(recipe, domains)
        if len(self.domains) != 2:
            raise RecipeError(
                f"{recipe.source}: data.domains: CycleGAN translates between exactly two domains, got {len(self.domains)} "
                f"({', '.join(self.domains)}); pick a pair, e.g. --set data.domains=[red,blue] "
                f"(k domains take {self.models_for_domains(len(self.domains))} CycleGAN models)."
            )
        pool = self.losses.pool_size
        self.fake_a_pool, self.fake_b_pool = ImagePool(pool), ImagePool(pool)

    def init_weights(self) -> None:
        from ganzoo_cyclegan.networks import init_normal

        for net in self.nets.values():
            net.apply(init_normal)

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One Adam for both generators and one for both discriminators, as officially (itertools.chain)."""
        o = self.optim

        def shared(*roles: str) -> torch.optim.Optimizer:
            params = itertools.chain(*(self.nets[r].parameters() for r in roles))
            return adam(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)

        return {"generators": shared("generator_a2b", "generator_b2a"), "discriminators": shared("discriminator_a", "discriminator_b")}

    def training_state(self) -> dict[str, torch.Tensor]:
        """The two pools of past fakes, each as one (n, 3, H, W) tensor (left out while empty)."""
        pools = {"fake_a_pool": self.fake_a_pool, "fake_b_pool": self.fake_b_pool}
        return {name: torch.cat(pool.images) for name, pool in pools.items() if pool.images}

    def load_training_state(self, tensors: dict[str, torch.Tensor]) -> None:
        for name, pool in (("fake_a_pool", self.fake_a_pool), ("fake_b_pool", self.fake_b_pool)):
            stored = tensors.get(name)
            pool.images = [] if stored is None else list(stored.to(self.device).split(1))

    # ------------------------------------------------------------------ data

    def training_item(self, dataset, index: int, rng: random.Random) -> dict[str, torch.Tensor]:
        """An unpaired (a, b) example: item ``index`` plus a random image of the other domain.

        The official unaligned loader walks A in order and draws B at random; with
        the trainer's class-balanced indices, both sides are uniform draws.
        """
        groups = dataset.label_groups()
        label = dataset.labels[index]
        other = rng.choice(groups[1 - label])
        first, second = dataset.load(index, rng), dataset.load(other, rng)
        a, b = (first, second) if label == 0 else (second, first)
        return {"a": a, "b": b}

    # ------------------------------------------------------------------ training

    @property
    def adversarial(self) -> AdversarialLoss:
        """The adversarial loss ``losses.gan_mode`` names in the losses registry."""
        return adversarial_loss(self.losses.gan_mode)

    def per_image_generators(self) -> bool:
        return per_image(self.nets["generator_a2b"]) and per_image(self.nets["generator_b2a"])

    def _translations_in_three_calls(self, real_a, real_b, identity: bool):
        """The generator step's translations for generators whose output for an image does not depend on its
        batch: three calls instead of four (six with the identity term), the same outputs from fewer, larger kernels.

        G_a2b runs on a (and on b, the identity image); G_b2a on b, on G_a2b's fake (its reconstruction) and on a
        (the identity image); G_a2b last on G_b2a's fake. Returns fake_b, fake_a, rec_a, rec_b, idt_a, idt_b
        (the identity outputs None without the term).
        """
        n = self.nets
        inputs = [real_a, real_b] if identity else [real_a]
        fake_b, *idt_b = n["generator_a2b"](torch.cat(inputs)).split([len(x) for x in inputs])
        inputs = [real_b, fake_b, real_a] if identity else [real_b, fake_b]
        fake_a, rec_a, *idt_a = n["generator_b2a"](torch.cat(inputs)).split([len(x) for x in inputs])
        rec_b = n["generator_a2b"](fake_a)
        return fake_b, fake_a, rec_a, rec_b, (idt_a or [None])[0], (idt_b or [None])[0]

    def generator_loss(self, real_a, real_b, ctx):
        n, l, adversarial = self.nets, self.losses, self.adversarial
        idt_a = idt_b = None
        with ctx.autocast():
            if self.per_image_generators():
                fake_b, fake_a, rec_a, rec_b, idt_a, idt_b = self._translations_in_three_calls(real_a, real_b, l.identity > 0)
            else:
                fake_b = n["generator_a2b"](real_a)
                fake_a = n["generator_b2a"](real_b)
                rec_a = n["generator_b2a"](fake_b)
                rec_b = n["generator_a2b"](fake_a)
            adv_a2b = adversarial(n["discriminator_b"](fake_b), True, for_discriminator=False)
            adv_b2a = adversarial(n["discriminator_a"](fake_a), True, for_discriminator=False)
            cycle_a = (rec_a.float() - real_a.float()).abs().mean()
            cycle_b = (rec_b.float() - real_b.float()).abs().mean()
            logs = {"adv_a2b": adv_a2b, "adv_b2a": adv_b2a, "cycle_a": cycle_a, "cycle_b": cycle_b}
            loss = adv_a2b + adv_b2a + l.cycle_a * cycle_a + l.cycle_b * cycle_b
            if l.identity > 0:
                # A generator fed an image already in its output domain should leave it alone.
                if idt_b is None:
                    idt_b, idt_a = n["generator_a2b"](real_b), n["generator_b2a"](real_a)
                idt_b = (idt_b.float() - real_b.float()).abs().mean()
                idt_a = (idt_a.float() - real_a.float()).abs().mean()
                loss = loss + l.identity * (l.cycle_b * idt_b + l.cycle_a * idt_a)
                logs.update(idt_a=idt_a, idt_b=idt_b)
        return loss, fake_a.detach(), fake_b.detach(), logs

    def discriminator_loss(self, discriminator: nn.Module, real, fake, ctx):
        """0.5 * (loss on real + loss on (pooled) fake), the official ``backward_D_basic``."""
        adversarial = self.adversarial
        with ctx.autocast():
            if per_image(discriminator) and real.shape[1:] == fake.shape[1:]:
                # One call on real and fake together: the same scores as two calls, fewer and larger kernels.
                on_real, on_fake = discriminator(torch.cat([real, fake])).split([len(real), len(fake)])
            else:
                on_real, on_fake = discriminator(real), discriminator(fake)
            loss = 0.5 * (adversarial(on_real, True) + adversarial(on_fake, False))
        if adversarial.critic and self.losses.gradient_penalty > 0:
            loss = loss + self.losses.gradient_penalty * wgan_gp(discriminator, real, fake)
        return loss

    def train_step(self, batch, step, ctx):
        real_a, real_b = batch["a"], batch["b"]
        n = self.nets
        with frozen(n["discriminator_a"], n["discriminator_b"]):
            g_loss, fake_a, fake_b, g_logs = self.generator_loss(real_a, real_b, ctx)
            ctx.optimize(g_loss, "generators")
        # The fakes come from the forward pass before the generator update, as officially.
        d_a = self.discriminator_loss(n["discriminator_a"], real_a, self.fake_a_pool.query(fake_a), ctx)
        d_b = self.discriminator_loss(n["discriminator_b"], real_b, self.fake_b_pool.query(fake_b), ctx)
        ctx.optimize(d_a + d_b, "discriminators")
        logs = {f"G/{k}": v.detach() for k, v in g_logs.items()}
        logs.update({"D/a": d_a.detach(), "D/b": d_b.detach()})
        return logs

    # ------------------------------------------------------------------ inference

    def sheet_targets(self) -> list[tuple[str, int]]:
        """The domains this folder has a generator into (official pretrained files hold one direction)."""
        nets = self.inference_nets()
        return [(self.domains[d], d) for d, role in ((0, "generator_b2a"), (1, "generator_a2b")) if role in nets]

    def size_multiple(self) -> int:
        """Fully convolutional (the :class:`~ganzoo.api.AnySizeModel` capability): the generators' stride multiple."""
        return math.lcm(*(net.size_multiple for role, net in self.inference_nets().items() if role.startswith("generator")))

    @torch.no_grad()
    def translate(self, images, target, *, reference=None, z=None, generator=None):
        """Images into domain ``target`` (per sample): index 1 (b) uses generator_a2b, index 0 (a) generator_b2a."""
        nets = self.inference_nets()
        out = torch.empty_like(images)
        target = torch.as_tensor(target, device=images.device)
        for domain, role in ((1, "generator_a2b"), (0, "generator_b2a")):
            chosen = target == domain
            if not chosen.any():
                continue
            if role not in nets:
                raise GanzooError(
                    f'This model folder has no {role}, so it cannot translate into "{self.domains[domain]}"; '
                    f'it only translates into "{self.domains[1 - domain]}" (official pretrained files hold one direction).'
                )
            out[chosen] = generate_as_official_test(nets[role], images[chosen], generator).to(out.dtype)  # autocast: bf16 -> fp32
        return out.clamp(-1, 1)

    # ------------------------------------------------------------------ export

    def export_graphs(self):
        """``ganzoo export``: each generator this folder has, one graph per direction (the direction is the graph);
        fully convolutional, so any size that is a multiple of 4."""
        from ganzoo_cyclegan.export import generator_graph

        nets = self.inference_nets()
        return [generator_graph(self, role, target, stride=4, min_size=8)
                for role, target in (("generator_a2b", 1), ("generator_b2a", 0)) if role in nets]
