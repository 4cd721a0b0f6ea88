"""DiscoGAN's training algorithm (Kim et al., ICML 2017), following the official ``discogan/image_translation.py``.

Two generators translate between domains a and b (``data.domains[0]`` and ``[1]``); each domain has a
discriminator judging images *of* that domain. Official names map to ours as

    generator_B -> generator_a2b     generator_A -> generator_b2a      (official AB = generator_B(A))
    discriminator_A -> discriminator_a     discriminator_B -> discriminator_b

One iteration, as the official loop: x_ab = G_ab(x_a), x_ba = G_ba(x_b), x_aba = G_ba(x_ab), x_bab = G_ab(x_ba);
D_a on x_a and on x_ba, D_b on x_b and on x_ab (separate calls: batch norm normalises real and fake batches apart).
Per direction the generator loss is

    L_a2b = (0.1 * GAN(D_b(x_ab)) + 0.9 * FM(D_b; x_b, x_ab)) * (1 - r) + r * MSE(x_aba, x_a)

(GAN: binary cross-entropy against "real"; FM: for each of D's three feature maps, the squared difference of its
batch means, averaged; MSE on images in [0, 1]) and L_G = L_a2b + L_b2a. The discriminator loss is
0.5 * BCE(real, 1) + 0.5 * BCE(fake, 0) per domain, summed. The curriculum weight r is ``starting_rate`` (0.01) for the
first ``gan_curriculum`` (10,000) iterations and ``default_rate`` (0.5) after.

**Alternation** (official ``update_interval`` 3): every iteration runs all of the above, then steps *either* the
discriminators (when ``iteration % 3 == 0``: iterations 0, 3, 6, ...) *or* the generators (the other two in three),
each on a new batch. The official loop back-propagates the chosen loss through everything and discards the other
networks' gradients; here the networks that are not stepped are frozen (or run without a graph), which gives the same
updates. Every iteration logs every loss, as the official loop prints them.

**Images in [0, 1]** (``network_range``): the generators end in a sigmoid and the official loader feeds images /
255, so the networks see and produce [0, 1]. ganzoo's data are in [-1, 1]: the model maps batches to [0, 1] on the
way in (``train_step``, ``translate``) and back on the way out, so the reconstruction loss and the discriminators'
features have the official scale.

**Inference** (``translate``) runs the generators in eval mode, on batch norm's running statistics, so a translation
does not depend on the other images of its batch. (The official script draws its test images with the networks in
train mode, normalising over the whole test batch at once; no per-image output can reproduce that.)
"""

from __future__ import annotations

import contextlib
import itertools
import random
from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn

from ganzoo.api import (
    AdversarialLoss,
    AdversarialLossName,
    GANModel,
    OptimConfig,
    RecipeError,
    StrictModel,
    adam,
    adversarial_loss,
    frozen,
)

GENERATORS = ("generator_a2b", "generator_b2a")
DISCRIMINATORS = ("discriminator_a", "discriminator_b")


class DiscoGANLosses(StrictModel):
    """Loss weights and the reconstruction curriculum (official ``image_translation.py`` defaults)."""

    gan_mode: AdversarialLossName = Field("vanilla", description="a registered adversarial loss; official: vanilla (BCE)")
    gan: float = Field(0.1, ge=0, description="weight of the GAN term inside each direction's adversarial part")
    feature_matching: float = Field(0.9, ge=0, description="weight of the feature matching term beside it")
    starting_rate: float = Field(0.01, ge=0, le=1, description="r, the reconstruction weight, for the first gan_curriculum iterations")
    default_rate: float = Field(0.5, ge=0, le=1, description="r after the curriculum")
    gan_curriculum: int = Field(10000, ge=0, description="iterations (steps of either kind) trained with starting_rate")


class DiscoGANOptim(OptimConfig):
    """Adam 2e-4, betas (0.5, 0.999), weight decay 1e-5, one optimiser for both generators and one for both
    discriminators; the discriminators step on every ``update_interval``-th iteration, the generators on the others."""

    lr: float = Field(2e-4, gt=0, le=1.0)
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = Field(1e-5, ge=0)
    update_interval: int = Field(3, ge=2, description="discriminators step when step % update_interval == 0, generators otherwise")


def to_network_range(images: torch.Tensor) -> torch.Tensor:
    """ganzoo's [-1, 1] -> the networks' [0, 1]."""
    return (images + 1) * 0.5


def from_network_range(images: torch.Tensor) -> torch.Tensor:
    """The networks' [0, 1] -> ganzoo's [-1, 1]."""
    return images * 2 - 1


def feature_matching(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Sum over feature maps of mean((batch mean of real - batch mean of fake)^2).

    The official ``get_fm_loss`` hands these squared differences to ``HingeEmbeddingLoss`` with target 1, which
    is their mean.
    """
    return sum(((r.float().mean(0) - f.float().mean(0)) ** 2).mean() for r, f in zip(real, fake))


@contextlib.contextmanager
def evaluation_mode(*nets: nn.Module):
    """Run ``nets`` in eval mode (batch norm on its running statistics) and put their modes back afterwards."""
    modes = [(m, m.training) for net in nets for m in net.modules()]
    for net in nets:
        net.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


class DiscoGAN(
    GANModel,
    paper="Kim et al., Learning to Discover Cross-Domain Relations with Generative Adversarial Networks, ICML 2017",
    citation="@inproceedings{kim2017learning, title={Learning to Discover Cross-Domain Relations with Generative "
             "Adversarial Networks}, author={Kim, Taeksoo and Cha, Moonsu and Kim, Hyunsoo and Lee, Jung Kwon and "
             "Kim, Jiwon}, booktitle={ICML}, year={2017}}",
    # The official repository carries no licence file, so nothing is inherited; this code is ganzoo's own.
    license="mit",
    pairwise=True,
    recipes={"small": "discogan_shapes", "official": "discogan_edges2shoes"},
    tiny={"data.image_size": 16, "data.batch_size": 2, "data.num_train": 6, "data.num_val": 2,
          **{f"networks.{role}.conv_dim": 4 for role in (*GENERATORS, *DISCRIMINATORS)}},
):
    """DiscoGAN: two generators and two discriminators for one pair of domains (a <-> b); networks work in [0, 1]."""

    network_roles = {
        "generator_a2b": "discogan.generator",
        "generator_b2a": "discogan.generator",
        "discriminator_a": "discogan.discriminator",
        "discriminator_b": "discogan.discriminator",
    }
    derived_network_args = {role: ("image_size",) for role in network_roles}
    # Moving averages of the generators when train.ema > 0 (off officially, and in the official recipe).
    ema_roles = GENERATORS
    LossConfig = DiscoGANLosses
    OptimConfig = DiscoGANOptim
    #: the image range the networks read and write (ganzoo's data and outputs are in [-1, 1]; see the module docstring)
    network_range: ClassVar[tuple[float, float]] = (0.0, 1.0)

    @classmethod
    def default_recipe(cls) -> dict[str, Any]:
        generator = {"name": "discogan.generator", "conv_dim": 64, "extra_layers": False}
        discriminator = {"name": "discogan.discriminator", "conv_dim": 64}
        return {
            "networks": {"generator_a2b": dict(generator), "generator_b2a": dict(generator),
                         "discriminator_a": dict(discriminator), "discriminator_b": dict(discriminator)},
            "data": {"image_size": 64, "batch_size": 64},
            "optim": {"lr": 2e-4, "betas": [0.5, 0.999], "weight_decay": 1e-5},
            "train": {"ema": 0.0},  # no moving average officially
        }

    def __init__(self, recipe, domains: list[str]):
        super().__init__(recipe, domains)
        if len(self.domains) != 2:
            raise RecipeError(
                f"{recipe.source}: data.domains: DiscoGAN translates between exactly two domains, got {len(self.domains)} "
                f"({', '.join(self.domains)}); pick a pair, e.g. --set data.domains=[red,blue] "
                f"(k domains take {len(self.domains) * (len(self.domains) - 1) // 2} DiscoGAN models)."
            )
        if self.adversarial.critic:
            raise RecipeError(
                f"{recipe.source}: losses.gan_mode: {self.losses.gan_mode} is a critic loss, which needs a per-image "
                "gradient penalty that DiscoGAN's batch-norm discriminators do not allow; use vanilla (official), "
                "lsgan or hinge.")

    def derived_kwargs(self, role: str) -> dict[str, Any]:
        return {"image_size": self.image_size}

    def init_weights(self) -> None:
        from ganzoo_discogan.networks import init_as_official

        for net in self.nets.values():
            net.apply(init_as_official)

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One Adam for both generators and one for both discriminators, as officially (itertools.chain)."""
        o = self.optim

        def shared(roles) -> torch.optim.Optimizer:
            params = itertools.chain(*(self.nets[r].parameters() for r in roles))
            return adam(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)

        return {"generators": shared(GENERATORS), "discriminators": shared(DISCRIMINATORS)}

    # ------------------------------------------------------------------ data

    def training_item(self, dataset, index: int, rng: random.Random) -> dict[str, torch.Tensor]:
        """An unpaired (a, b) example: item ``index`` plus a random image of the other domain.

        The official loop pairs the i-th batch of a shuffled A list with the i-th of a shuffled B list; with the
        trainer's class-balanced indices both sides are uniform draws too (with replacement).
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
        """The adversarial loss ``losses.gan_mode`` names (official: vanilla, i.e. BCE on D's sigmoid)."""
        return adversarial_loss(self.losses.gan_mode)

    def reconstruction_rate(self, step: int) -> float:
        """r of the official curriculum: ``starting_rate`` before ``gan_curriculum`` iterations, ``default_rate`` from then."""
        l = self.losses
        return l.starting_rate if step < l.gan_curriculum else l.default_rate

    def discriminator_turn(self, step: int) -> bool:
        """Whether iteration ``step`` (from 0) steps the discriminators (else the generators): official ``iters % 3 == 0``."""
        return step % self.optim.update_interval == 0

    def train_step(self, batch, step, ctx):
        n, l, adversarial = self.nets, self.losses, self.adversarial
        real_a, real_b = to_network_range(batch["a"]), to_network_range(batch["b"])
        d_turn = self.discriminator_turn(step)
        rate = self.reconstruction_rate(step)
        # The networks that this iteration does not step build no graph: the generators run without one on a
        # discriminator turn (their outputs are plain inputs to D), the discriminators are frozen on a generator turn.
        generating = torch.no_grad() if d_turn else contextlib.nullcontext()
        judging = contextlib.nullcontext() if d_turn else frozen(n["discriminator_a"], n["discriminator_b"])
        with judging:
            with ctx.autocast():
                with generating:
                    # Official order: each generator sees the real images first, then the other's fakes.
                    fake_b = n["generator_a2b"](real_a)
                    fake_a = n["generator_b2a"](real_b)
                    rec_a = n["generator_b2a"](fake_b)
                    rec_b = n["generator_a2b"](fake_a)
                score_real_a, feats_real_a = n["discriminator_a"](real_a)
                score_fake_a, feats_fake_a = n["discriminator_a"](fake_a)
                score_real_b, feats_real_b = n["discriminator_b"](real_b)
                score_fake_b, feats_fake_b = n["discriminator_b"](fake_b)

            rec_loss_a = torch.mean((rec_a.float() - real_a.float()) ** 2)
            rec_loss_b = torch.mean((rec_b.float() - real_b.float()) ** 2)
            gan_a2b = adversarial(score_fake_b, True, for_discriminator=False)
            gan_b2a = adversarial(score_fake_a, True, for_discriminator=False)
            fm_a2b = feature_matching(feats_real_b, feats_fake_b)
            fm_b2a = feature_matching(feats_real_a, feats_fake_a)
            g_a2b = (l.gan * gan_a2b + l.feature_matching * fm_a2b) * (1 - rate) + rate * rec_loss_a
            g_b2a = (l.gan * gan_b2a + l.feature_matching * fm_b2a) * (1 - rate) + rate * rec_loss_b
            d_a = 0.5 * adversarial(score_real_a, True) + 0.5 * adversarial(score_fake_a, False)
            d_b = 0.5 * adversarial(score_real_b, True) + 0.5 * adversarial(score_fake_b, False)
            if d_turn:
                ctx.optimize(d_a + d_b, "discriminators")
            else:
                ctx.optimize(g_a2b + g_b2a, "generators")
        logs = {"G/gan_a2b": gan_a2b, "G/gan_b2a": gan_b2a, "G/fm_a2b": fm_a2b, "G/fm_b2a": fm_b2a,
                "G/rec_a": rec_loss_a, "G/rec_b": rec_loss_b, "D/a": d_a, "D/b": d_b}
        return {k: v.detach() for k, v in logs.items()}

    # ------------------------------------------------------------------ inference

    @torch.no_grad()
    def translate(self, images, target, *, reference=None, z=None, generator=None):
        """Images in [-1, 1] into domain ``target`` (per sample): index 1 (b) uses generator_a2b, 0 (a) generator_b2a."""
        nets = self.inference_nets()
        out = torch.empty_like(images)
        target = torch.as_tensor(target, device=images.device)
        for domain, role in ((1, "generator_a2b"), (0, "generator_b2a")):
            chosen = target == domain
            if not chosen.any():
                continue
            with evaluation_mode(nets[role]):
                translated = nets[role](to_network_range(images[chosen]))
            out[chosen] = from_network_range(translated.float()).to(out.dtype)
        return out

    # ------------------------------------------------------------------ export

    def export_graphs(self):
        """``ganzoo export``: each generator, one graph per direction, reading and writing ganzoo's [-1, 1] (the
        [0, 1] conversion is inside the graph) with batch norm on its running statistics, as :meth:`translate`.
        Fully convolutional (multiples of 16) unless the 1x1 bottleneck of ``extra_layers`` fixes the size."""
        from ganzoo.api import ExportGraph, TensorSpec

        nets = self.inference_nets()
        graphs = []
        for role, target in (("generator_a2b", 1), ("generator_b2a", 0)):
            extra = bool(self.network_specs.get(role, {}).get("kwargs", {}).get("extra_layers", False))
            source, into = self.domains[1 - target], self.domains[target]

            def reference(image, target=target):
                return self.translate(image, torch.full((image.shape[0],), target, dtype=torch.long))

            graphs.append(ExportGraph(
                name=role, module=SignedRangeGenerator(nets[role]),
                inputs=(TensorSpec("image", ("batch", 3, "height", "width"), "image", f"images of {source}"),),
                output=TensorSpec("translated", ("batch", 3, "height", "width"), "image", f"the images translated into {into}"),
                description=f"{source} -> {into}", spatial="fixed" if extra else "dynamic", multiple_of=16, min_size=16,
                reference=reference))
        return graphs


class SignedRangeGenerator(nn.Module):
    """A DiscoGAN generator between ganzoo's [-1, 1] images: [0, 1] in, [0, 1] out, converted on both sides."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return from_network_range(self.generator(to_network_range(image)))
