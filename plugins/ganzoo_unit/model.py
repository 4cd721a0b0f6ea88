"""UNIT's training algorithm (Liu, Breuel, Kautz, NeurIPS 2017), following the official ``UNIT_Trainer``.

Two VAEs, ``generator_a`` and ``generator_b`` (official ``gen_a`` / ``gen_b``), map their domain to a latent code
and back; translation a -> b decodes a's code with b's decoder. Two multi-scale LSGAN discriminators judge images
*of* their domain (``discriminator_a`` = ``dis_a`` judges b -> a translations). One iteration, as the official
``train.py``: first the discriminator update, then the generator update, each encoding afresh and drawing its own
noise. The generator objective (official names of the weights):

    gan_w          * (LSGAN(dis_a(x_ba)) + LSGAN(dis_b(x_ab)))
  + recon_x_w      * (|x_a_recon - x_a| + |x_b_recon - x_b|)          within-domain reconstruction
  + recon_kl_w     * (mean(h_a^2) + mean(h_b^2))                      KL of N(h, I) to N(0, I), up to constants
  + recon_x_cyc_w  * (|x_aba - x_a| + |x_bab - x_b|)                  cycle reconstruction
  + recon_kl_cyc_w * (mean(h_a_recon^2) + mean(h_b_recon^2))          KL of the re-encoded codes

with x_ab = dec_b(h_a + n), h_a = enc_a(x_a), n ~ N(0, I); x_aba = dec_a(enc_b(x_ab) + n'). The LSGAN terms are
summed over the discriminator's scales, without the 1/2 factor. The discriminator loss is
gan_w * sum over scales of mean(D(fake)^2) + mean((D(real) - 1)^2), per domain.

Adam (lr 1e-4, betas (0.5, 0.999), weight decay 1e-4), one optimiser for both generators and one for both
discriminators, and the learning rate halved every 100,000 iterations (official ``lr_policy: step``).
"""

from __future__ import annotations

import itertools
import random
from typing import Any, Literal

import torch
from pydantic import Field

from ganzoo.api import (
    AdversarialLossName,
    GANModel,
    OptimConfig,
    RecipeError,
    StrictModel,
    adam,
    adversarial_loss,
    frozen,
    per_image,
)


class UNITLosses(StrictModel):
    """Loss weights, with the official names and values (every official UNIT config)."""

    gan_mode: AdversarialLossName = Field("lsgan", description="official gan_type: lsgan (every config) or vanilla (nsgan)")
    gan_w: float = Field(1.0, ge=0, description="weight of the adversarial losses")
    recon_x_w: float = Field(10.0, ge=0, description="weight of the within-domain image reconstruction")
    recon_kl_w: float = Field(0.01, ge=0, description="weight of the KL term of the codes")
    recon_x_cyc_w: float = Field(10.0, ge=0, description="weight of the cycle reconstruction")
    recon_kl_cyc_w: float = Field(0.01, ge=0, description="weight of the KL term of the re-encoded codes")
    vgg_w: float = Field(0.0, ge=0, description="domain-invariant perceptual loss; needs VGG16 weights, so not available (keep 0)")


class UNITOptim(OptimConfig):
    """Adam as officially, plus the official step decay (``lr_policy: step``, ``step_size``, ``gamma``)."""

    lr: float = Field(1e-4, gt=0, le=1.0)
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = Field(1e-4, ge=0)
    lr_policy: Literal["constant", "step"] = Field("step", description="official lr_policy: step multiplies the rate by gamma every step_size iterations")
    step_size: int = Field(100_000, ge=1, description="iterations between two decays (official step_size)")
    gamma: float = Field(0.5, gt=0, le=1.0, description="factor of each decay (official gamma)")


def _network(name: str, **kwargs) -> dict[str, Any]:
    return {"name": name, **kwargs}


class UNIT(
    GANModel,
    paper="Liu, Breuel, Kautz, Unsupervised Image-to-Image Translation Networks, NeurIPS 2017",
    citation="@inproceedings{liu2017unsupervised, title={Unsupervised Image-to-Image Translation Networks}, "
             "author={Liu, Ming-Yu and Breuel, Thomas and Kautz, Jan}, booktitle={Advances in Neural Information "
             "Processing Systems}, year={2017}}",
    license="cc-by-nc-sa-4.0",
    pairwise=True,
    recipes={"small": "unit_shapes", "official": "unit_summer2winter_yosemite256"},
    tiny={"data.image_size": 16, "data.batch_size": 2, "data.num_train": 6, "data.num_val": 2,
          "networks.generator_a.dim": 8, "networks.generator_b.dim": 8,
          "networks.generator_a.n_res": 1, "networks.generator_b.n_res": 1,
          "networks.discriminator_a.dim": 8, "networks.discriminator_b.dim": 8,
          "networks.discriminator_a.n_layer": 2, "networks.discriminator_b.n_layer": 2,
          "networks.discriminator_a.num_scales": 2, "networks.discriminator_b.num_scales": 2},
):
    """UNIT: a VAE and a multi-scale discriminator per domain, for one pair of domains (a <-> b)."""

    network_roles = {
        "generator_a": "unit.vae_generator",
        "generator_b": "unit.vae_generator",
        "discriminator_a": "unit.ms_discriminator",
        "discriminator_b": "unit.ms_discriminator",
    }
    LossConfig = UNITLosses
    OptimConfig = UNITOptim

    @staticmethod
    def models_for_domains(k: int) -> int:
        return k * (k - 1) // 2

    @classmethod
    def default_recipe(cls) -> dict[str, Any]:
        # Every official UNIT config (configs/unit_*.yaml): gen dim 64, 2 downsamplings, 4 residual blocks, relu,
        # reflect padding; dis dim 64, 4 layers, 3 scales, no norm, lrelu, reflect; batch 1 at 256 px.
        generator = _network("unit.vae_generator", dim=64, n_downsample=2, n_res=4, activ="relu", pad_type="reflect")
        discriminator = _network("unit.ms_discriminator", dim=64, n_layer=4, num_scales=3, norm="none", activ="lrelu",
                                 pad_type="reflect")
        return {
            "networks": {"generator_a": dict(generator), "generator_b": dict(generator),
                         "discriminator_a": dict(discriminator), "discriminator_b": dict(discriminator)},
            "data": {"image_size": 256, "batch_size": 1},
            "optim": {"lr": 1e-4, "betas": [0.5, 0.999], "weight_decay": 1e-4, "schedule": "constant",
                      "lr_policy": "step", "step_size": 100_000, "gamma": 0.5},
            "train": {"ema": 0.0},
        }

    def __init__(self, recipe, domains: list[str]):
        super().__init__(recipe, domains)
        if len(self.domains) != 2:
            raise RecipeError(
                f"{recipe.source}: data.domains: UNIT translates between exactly two domains, got {len(self.domains)} "
                f"({', '.join(self.domains)}); pick a pair, e.g. --set data.domains=[red,blue] "
                f"(k domains take {self.models_for_domains(len(self.domains))} UNIT models)."
            )
        if self.losses.vgg_w > 0:
            raise RecipeError(
                f"{recipe.source}: losses.vgg_w: the domain-invariant perceptual loss needs pretrained VGG16 weights, which "
                "ganzoo cannot download or load for UNIT; set losses.vgg_w=0 (as every official config but gta2city does)."
            )
        if self.optim.lr_policy == "step" and self.optim.schedule != "constant":
            raise RecipeError(
                f"{recipe.source}: optim.schedule: UNIT's step decay (optim.lr_policy=step) replaces the trainer's "
                f'"{self.optim.schedule}" schedule; set optim.schedule=constant or optim.lr_policy=constant.'
            )

    def init_weights(self) -> None:
        from ganzoo_unit.networks import init_discriminator, init_generator

        for role, net in self.nets.items():
            net.apply(init_discriminator if role.startswith("discriminator") else init_generator)

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One Adam for both generators and one for both discriminators, as officially."""
        o = self.optim

        def shared(*roles: str) -> torch.optim.Optimizer:
            params = itertools.chain(*(self.nets[r].parameters() for r in roles))
            return adam(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)

        return {"generators": shared("generator_a", "generator_b"),
                "discriminators": shared("discriminator_a", "discriminator_b")}

    # ------------------------------------------------------------------ data

    def training_item(self, dataset, index: int, rng: random.Random) -> dict[str, torch.Tensor]:
        """An unpaired (a, b) example: item ``index`` and a random image of the other domain (the official loaders
        of A and B are shuffled independently)."""
        groups = dataset.label_groups()
        label = dataset.labels[index]
        other = rng.choice(groups[1 - label])
        first, second = dataset.load(index, rng), dataset.load(other, rng)
        a, b = (first, second) if label == 0 else (second, first)
        return {"a": a, "b": b}

    # ------------------------------------------------------------------ training

    def step_decay(self, step: int) -> float:
        """The official StepLR factor at iteration ``step`` (0-based): the official loop steps its scheduler before
        each iteration, so iteration i runs at gamma ** ((i + 1) // step_size)."""
        if self.optim.lr_policy == "constant":
            return 1.0
        return self.optim.gamma ** ((step + 1) // self.optim.step_size)

    def _apply_step_decay(self, step: int, ctx) -> None:
        # The trainer's schedules are constant or linear; the step decay is set on the optimisers just before they
        # step (the trainer's constant LambdaLR puts the base rate back afterwards). Host arithmetic only.
        lr = self.optim.lr * self.step_decay(step)
        for optimizer in ctx.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = lr

    @property
    def adversarial(self):
        return adversarial_loss(self.losses.gan_mode)

    def _decode_both(self, generator, first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``generator.decode`` of two batches of codes; one call when the decoder treats images independently."""
        if per_image(generator):
            return generator.decode(torch.cat([first, second])).split([len(first), len(second)])
        return generator.decode(first), generator.decode(second)

    def _scores(self, discriminator, real: torch.Tensor, fake: torch.Tensor):
        if per_image(discriminator):
            both = discriminator(torch.cat([real, fake]))
            return [o[: len(real)] for o in both], [o[len(real):] for o in both]
        return discriminator(real), discriminator(fake)

    @staticmethod
    def _noise(h: torch.Tensor, ctx) -> torch.Tensor:
        """Standard normal noise shaped like the codes ``h`` (the official sampling; fixed unit variance)."""
        return ctx.randn(h.shape[0], *h.shape[1:], device=h.device).to(h.dtype)

    def discriminator_loss(self, x_a, x_b, ctx, codes=None):
        """The D step's loss. ``codes``: ``(enc_a(x_a), enc_b(x_b))`` already computed (see :meth:`train_step`)."""
        n, adversarial = self.nets, self.adversarial
        with ctx.autocast():
            with torch.no_grad():  # the fakes are detached officially; no graph needed
                h_a, h_b = codes if codes is not None else (n["generator_a"].encode(x_a), n["generator_b"].encode(x_b))
                h_a, h_b = h_a.detach(), h_b.detach()
                x_ba = n["generator_a"].decode(h_b + self._noise(h_b, ctx))
                x_ab = n["generator_b"].decode(h_a + self._noise(h_a, ctx))
            losses = {}
            for domain, real, fake in (("a", x_a, x_ba), ("b", x_b, x_ab)):
                on_real, on_fake = self._scores(n[f"discriminator_{domain}"], real, fake)
                losses[domain] = sum(adversarial(r, True) + adversarial(f, False) for r, f in zip(on_real, on_fake))
        return self.losses.gan_w * (losses["a"] + losses["b"]), losses

    def _translations_in_six_calls(self, gen_a, gen_b, x_a, x_b, ctx, codes=None):
        """The generator step's encodings and decodings in six calls instead of eight, for generators whose output
        for an image does not depend on its batch (and a, b batches of one shape): the same outputs from fewer,
        larger kernels. Each call takes every input whose source is ready by then:

            enc_b(b) -> dec_a(z_b) = x_ba -> enc_a(a, x_ba) -> dec_b(z_b, z_a, z_b_recon) = x_b_recon, x_ab, x_bab
            -> enc_b(x_ab) -> dec_a(z_a, z_a_recon) = x_a_recon, x_aba

        The four noises are drawn first, in the official order (codes of a and b, then the re-encoded codes of
        x_ab and x_ba), so the draws are the official ones too.
        """
        h_b = gen_b.encode(x_b) if codes is None else codes[1]
        noise_a, noise_b, noise_a_recon, noise_b_recon = (self._noise(h_b, ctx) for _ in range(4))
        x_ba = gen_a.decode(h_b + noise_b)
        if codes is None:
            h_a, h_b_recon = gen_a.encode(torch.cat([x_a, x_ba])).chunk(2)
        else:
            h_a, h_b_recon = codes[0], gen_a.encode(x_ba)
        x_b_recon, x_ab, x_bab = gen_b.decode(torch.cat([h_b + noise_b, h_a + noise_a, h_b_recon + noise_b_recon])).chunk(3)
        h_a_recon = gen_b.encode(x_ab)
        x_a_recon, x_aba = gen_a.decode(torch.cat([h_a + noise_a, h_a_recon + noise_a_recon])).chunk(2)
        return h_a, h_b, x_a_recon, x_b_recon, x_ba, x_ab, h_a_recon, h_b_recon, x_aba, x_bab

    def generator_loss(self, x_a, x_b, ctx, codes=None):
        """The G step's loss and logs. ``codes``: ``(enc_a(x_a), enc_b(x_b))`` with their graphs, already computed
        (see :meth:`train_step`)."""
        n, l, adversarial = self.nets, self.losses, self.adversarial
        gen_a, gen_b = n["generator_a"], n["generator_b"]
        with ctx.autocast():
            if per_image(gen_a) and per_image(gen_b) and x_a.shape == x_b.shape:
                h_a, h_b, x_a_recon, x_b_recon, x_ba, x_ab, h_a_recon, h_b_recon, x_aba, x_bab = \
                    self._translations_in_six_calls(gen_a, gen_b, x_a, x_b, ctx, codes)
            else:
                h_a, h_b = codes if codes is not None else (gen_a.encode(x_a), gen_b.encode(x_b))
                z_a, z_b = h_a + self._noise(h_a, ctx), h_b + self._noise(h_b, ctx)
                x_a_recon, x_ba = self._decode_both(gen_a, z_a, z_b)  # within domain a, and b -> a
                x_b_recon, x_ab = self._decode_both(gen_b, z_b, z_a)
                h_b_recon, h_a_recon = gen_a.encode(x_ba), gen_b.encode(x_ab)
                x_aba = gen_a.decode(h_a_recon + self._noise(h_a_recon, ctx))
                x_bab = gen_b.decode(h_b_recon + self._noise(h_b_recon, ctx))

            def l1(x, y):
                return (x.float() - y.float()).abs().mean()

            def kl(h):
                return h.float().pow(2).mean()

            def fooled(scores):
                return sum(adversarial(s, True, for_discriminator=False) for s in scores)

            logs = {
                "adv_a": fooled(n["discriminator_a"](x_ba)), "adv_b": fooled(n["discriminator_b"](x_ab)),
                "recon_x_a": l1(x_a_recon, x_a), "recon_x_b": l1(x_b_recon, x_b),
                "kl_a": kl(h_a), "kl_b": kl(h_b),
                "cyc_x_a": l1(x_aba, x_a), "cyc_x_b": l1(x_bab, x_b),
                "kl_cyc_aba": kl(h_a_recon), "kl_cyc_bab": kl(h_b_recon),
            }
            loss = (l.gan_w * (logs["adv_a"] + logs["adv_b"])
                    + l.recon_x_w * (logs["recon_x_a"] + logs["recon_x_b"])
                    + l.recon_kl_w * (logs["kl_a"] + logs["kl_b"])
                    + l.recon_x_cyc_w * (logs["cyc_x_a"] + logs["cyc_x_b"])
                    + l.recon_kl_cyc_w * (logs["kl_cyc_aba"] + logs["kl_cyc_bab"]))
        return loss, logs

    def train_step(self, batch, step, ctx):
        x_a, x_b = batch["a"], batch["b"]
        n = self.nets
        self._apply_step_decay(step, ctx)
        # Both steps encode the same images with the same encoders (the D step changes only the discriminators):
        # encoded once, with the graph the G step needs, where a second forward would repeat the first exactly (no
        # batch statistics, no dropout). The official code encodes them in each step.
        codes = None
        if per_image(n["generator_a"]) and per_image(n["generator_b"]):
            with ctx.autocast():
                codes = n["generator_a"].encode(x_a), n["generator_b"].encode(x_b)
        d_loss, d_logs = self.discriminator_loss(x_a, x_b, ctx, codes)
        ctx.optimize(d_loss, "discriminators")
        with frozen(n["discriminator_a"], n["discriminator_b"]):
            g_loss, g_logs = self.generator_loss(x_a, x_b, ctx, codes)
            ctx.optimize(g_loss, "generators")
        logs = {f"G/{k}": v.detach() for k, v in g_logs.items()}
        logs.update({f"D/{k}": v.detach() for k, v in d_logs.items()})
        return logs

    # ------------------------------------------------------------------ inference

    @torch.no_grad()
    def translate(self, images, target, *, reference=None, z=None, generator=None):
        """Images into domain ``target`` (per sample): the other domain's encoder, then the target's decoder, on the
        posterior mean (no noise), as the official ``test.py``. Index 1 (b): ``dec_b(enc_a(x))``; index 0 (a):
        ``dec_a(enc_b(x))``."""
        nets = self.inference_nets()
        out = torch.empty_like(images)
        target = torch.as_tensor(target, device=images.device)
        for domain, source, into in ((1, "generator_a", "generator_b"), (0, "generator_b", "generator_a")):
            chosen = target == domain
            if not chosen.any():
                continue
            out[chosen] = nets[into].decode(nets[source].encode(images[chosen])).to(out.dtype)
        return out.clamp(-1, 1)

    # ------------------------------------------------------------------ export

    def export_graphs(self):
        """``ganzoo export``: one graph per direction, the source's encoder then the target's decoder on the posterior
        mean, as :meth:`translate`; fully convolutional (multiples of 2**n_downsample)."""
        from ganzoo.api import ExportGraph, TensorSpec

        nets = self.inference_nets()
        graphs = []
        for name, target, source_role, into_role in (("a2b", 1, "generator_a", "generator_b"), ("b2a", 0, "generator_b", "generator_a")):
            depth = int(self.network_specs.get(source_role, {}).get("kwargs", {}).get("n_downsample", 2))
            source, into = self.domains[1 - target], self.domains[target]

            def reference(image, target=target):
                return self.translate(image, torch.full((image.shape[0],), target, dtype=torch.long))

            graphs.append(ExportGraph(
                name=name, module=EncodeDecode(nets[source_role], nets[into_role]),
                inputs=(TensorSpec("image", ("batch", 3, "height", "width"), "image", f"images of {source}"),),
                output=TensorSpec("translated", ("batch", 3, "height", "width"), "image", f"the images translated into {into}"),
                description=f"{source} -> {into}: decoder of {into} on the encoder of {source}'s mean code",
                spatial="dynamic", multiple_of=2 ** depth, min_size=2 ** (depth + 1), reference=reference))
        return graphs


class EncodeDecode(torch.nn.Module):
    """``into.decode(source.encode(x))`` clamped to [-1, 1]: one UNIT direction."""

    def __init__(self, source: torch.nn.Module, into: torch.nn.Module):
        super().__init__()
        self.source, self.into = source, into

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.into.decode(self.source.encode(image)).clamp(-1, 1)
