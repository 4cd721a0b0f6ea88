"""MUNIT's training algorithm (Huang et al., ECCV 2018), following the official ``MUNIT_Trainer``.

Two domains a and b (``data.domains[0]`` and ``[1]``), each with an AdaIN
auto-encoder (``generator_a``, ``generator_b``: official ``gen_a``, ``gen_b``)
and a multi-scale discriminator judging images *of* that domain
(``discriminator_a``, ``discriminator_b``: official ``dis_a``, ``dis_b``).
An image splits into a content code (shared space) and a style code (the
domain's own, prior N(0, I)); a -> b is content of a, decoded by b's decoder with
a random style (multimodal) or with the style of a reference image of b.

One iteration, as the official ``train.py``: the discriminator step (fakes from
random styles, LSGAN), then the generator step with

    gan_w * adversarial + recon_x_w * |x_rec - x| + recon_s_w * |s_rec - s| + recon_c_w * |c_rec - c|
    + recon_x_cyc_w * |x_cyc - x|                              (each term for both domains)

Official settings (``configs/edges2shoes_folder.yaml``): gan_w 1, recon_x_w 10,
recon_s_w 1, recon_c_w 1, recon_x_cyc_w 0, vgg_w 0; Adam lr 1e-4, betas (0.5,
0.999), weight decay 1e-4, the rate halved every 100,000 iterations; kaiming
init (discriminators gaussian 0.02); batch 1; 1,000,000 iterations; no EMA.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from ganzoo.api import (
    AdversarialLoss,
    AdversarialLossName,
    GANModel,
    GanzooError,
    OptimConfig,
    RecipeError,
    StrictModel,
    adam,
    adversarial_loss,
    frozen,
    per_image,
)

from .perceptual import perceptual_distance


class MUNITLosses(StrictModel):
    """The official loss weights (``*_w`` keys of the MUNIT configs) and the adversarial loss."""

    gan_mode: AdversarialLossName = Field("lsgan", description="official gan_type: lsgan, or vanilla (nsgan)")
    gan_w: float = Field(1.0, ge=0, description="weight of the adversarial loss")
    recon_x_w: float = Field(10.0, ge=0, description="weight of the within-domain image reconstruction loss")
    recon_s_w: float = Field(1.0, ge=0, description="weight of the style reconstruction loss")
    recon_c_w: float = Field(1.0, ge=0, description="weight of the content reconstruction loss")
    recon_x_cyc_w: float = Field(0.0, ge=0, description="weight of the explicit style-augmented cycle consistency loss")
    vgg_w: float = Field(0.0, ge=0, description="weight of the domain-invariant perceptual loss (needs vgg_weights)")
    vgg_weights: str | None = Field(None, description="the official VGG16 weights file (vgg16.weight) for vgg_w > 0; "
                                                      "never downloaded")


class MUNITOptim(OptimConfig):
    """Adam for both generators and for both discriminators, the official step decay, and the initialisation."""

    lr: float = Field(1e-4, gt=0, le=1.0)
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = Field(1e-4, ge=0)
    lr_policy: Literal["step", "constant"] = Field("step", description="official lr_policy: step multiplies the rate by "
                                                                        "gamma every step_size iterations")
    step_size: int = Field(100_000, ge=1, description="iterations between learning-rate decays (lr_policy step)")
    gamma: float = Field(0.5, gt=0, le=1.0, description="learning-rate factor per decay (lr_policy step)")
    init: Literal["kaiming", "gaussian", "xavier", "orthogonal", "default"] = Field(
        "kaiming", description="generator initialisation (the discriminators are always gaussian 0.02, as officially)")


def _network(name: str, **kwargs) -> dict[str, Any]:
    return {"name": name, **kwargs}


@contextlib.contextmanager
def _eval_mode(*nets: nn.Module):
    """Run ``nets`` in eval mode (the official test.py and sampling do: instance norms use their running statistics)."""
    modes = [(m, m.training) for net in nets for m in net.modules()]
    for net in nets:
        net.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


@contextlib.contextmanager
def _scaled_lr(optimizers, factor: float):
    """Multiply every learning rate by ``factor`` for the updates inside the block, then put the trainer's rates back.

    The official step decay, applied on top of whatever schedule the trainer runs (constant by default): the
    trainer's own rates are what checkpoints hold, and the factor follows from the step alone, so resume is exact.
    """
    if factor == 1.0:
        yield
        return
    groups = [group for opt in optimizers.values() for group in opt.param_groups]
    saved = [group["lr"] for group in groups]
    for group, lr in zip(groups, saved):
        group["lr"] = lr * factor
    try:
        yield
    finally:
        for group, lr in zip(groups, saved):
            group["lr"] = lr


def _encode(generator: nn.Module, images: torch.Tensor):
    """(content, style) through the network's forward (see ``AdaINGenerator.forward``: DDP sees every call)."""
    return generator(images, mode="encode")


def _decode(generator: nn.Module, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    return generator(None, style, content=content, mode="decode")


def _decode_together(generator: nn.Module, *pairs: tuple[torch.Tensor, torch.Tensor]) -> list[torch.Tensor]:
    """``_decode`` of several (content, style) batches: one call when the decoder and its MLP treat each image on
    its own (the same outputs from fewer, larger kernels). The encoders' instance norms keep running statistics
    officially, so the encodings stay separate calls."""
    if per_image(generator.dec) and per_image(generator.mlp):
        images = _decode(generator, torch.cat([c for c, _ in pairs]), torch.cat([s for _, s in pairs]))
        return list(images.split([len(c) for c, _ in pairs]))
    return [_decode(generator, c, s) for c, s in pairs]


def _scores(discriminator: nn.Module, fake: torch.Tensor, real: torch.Tensor) -> tuple[list, list]:
    """Each scale's scores of fake and of real images; one call when the discriminator treats each image on its own."""
    if per_image(discriminator):
        both = discriminator(torch.cat([fake, real]))
        return [o[: len(fake)] for o in both], [o[len(fake):] for o in both]
    return discriminator(fake), discriminator(real)


def _l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x.float() - y.float()).abs().mean()


class MUNIT(
    GANModel,
    paper="Huang, Liu, Belongie and Kautz, Multimodal Unsupervised Image-to-Image Translation, ECCV 2018",
    citation="@inproceedings{huang2018munit, title={Multimodal Unsupervised Image-to-image Translation}, "
             "author={Huang, Xun and Liu, Ming-Yu and Belongie, Serge and Kautz, Jan}, booktitle={ECCV}, year={2018}}",
    license="cc-by-nc-sa-4.0",
    pairwise=True,
    recipes={"small": "munit_shapes", "official": "munit_edges2shoes"},
    tiny={"data.image_size": 16, "data.batch_size": 2, "data.num_train": 6, "data.num_val": 2,
          "networks.generator_a.dim": 4, "networks.generator_b.dim": 4,
          "networks.generator_a.mlp_dim": 8, "networks.generator_b.mlp_dim": 8,
          "networks.generator_a.n_res": 1, "networks.generator_b.n_res": 1,
          "networks.discriminator_a.dim": 4, "networks.discriminator_b.dim": 4,
          "networks.discriminator_a.n_layer": 2, "networks.discriminator_b.n_layer": 2},
):
    """MUNIT: two AdaIN auto-encoders and two multi-scale discriminators for one pair of domains (a <-> b)."""

    network_roles = {
        "generator_a": "munit.adain_generator",
        "generator_b": "munit.adain_generator",
        "discriminator_a": "munit.ms_discriminator",
        "discriminator_b": "munit.ms_discriminator",
    }
    # The same sheets and evaluation modes as StarGAN v2: random styles (latent) and reference-guided styles.
    sample_sheets = ("reference_grid", "latent_grid", "reference_animation", "latent_animation")
    eval_modes = {"latent": True, "reference": True}
    LossConfig = MUNITLosses
    OptimConfig = MUNITOptim

    @staticmethod
    def generators_for_domains(k: int) -> int:
        """Auto-encoders needed for every ordered pair of k domains: 2 per pair, k(k-1) in all (k(k-1)/2 models)."""
        return k * (k - 1)

    @staticmethod
    def models_for_domains(k: int) -> int:
        return k * (k - 1) // 2

    @classmethod
    def default_recipe(cls) -> dict[str, Any]:
        # configs/edges2shoes_folder.yaml
        generator = _network("munit.adain_generator", input_dim=3, dim=64, style_dim=8, n_downsample=2, n_res=4,
                             activ="relu", pad_type="reflect", mlp_dim=256)
        discriminator = _network("munit.ms_discriminator", input_dim=3, dim=64, n_layer=4, norm="none", activ="lrelu",
                                 num_scales=3, pad_type="reflect")
        return {
            "networks": {"generator_a": dict(generator), "generator_b": dict(generator),
                         "discriminator_a": dict(discriminator), "discriminator_b": dict(discriminator)},
            "data": {"image_size": 256, "batch_size": 1},
            "optim": {"lr": 1e-4, "betas": [0.5, 0.999], "weight_decay": 1e-4, "lr_policy": "step",
                      "step_size": 100_000, "gamma": 0.5, "init": "kaiming", "schedule": "constant"},
            "train": {"steps": 1_000_000, "ema": 0.0, "checkpoint_every": 10_000, "sample_every": 1_000},
        }

    def __init__(self, recipe, domains: list[str]):
        super().__init__(recipe, domains)
        if len(self.domains) != 2:
            raise RecipeError(
                f"{recipe.source}: data.domains: MUNIT translates between exactly two domains, got {len(self.domains)} "
                f"({', '.join(self.domains)}); pick a pair, e.g. --set data.domains=[red,blue] "
                f"(k domains take {self.models_for_domains(len(self.domains))} MUNIT models)."
            )
        for role in ("generator_a", "generator_b"):
            depth = recipe.networks.get(role, {}).get("n_downsample", 2)
            if isinstance(depth, int) and depth >= 0 and self.image_size < 2 ** (depth + 1):
                # Caught before the networks are built: each downsampling doubles the width of every later layer.
                raise RecipeError(f"{recipe.source}: networks.{role}.n_downsample: {depth} downsamplings leave nothing of "
                                  f"{self.image_size} px images; lower it or raise data.image_size.")
        if self.adversarial.critic:
            raise RecipeError(f"{recipe.source}: losses.gan_mode: MUNIT has no gradient penalty for a critic loss "
                              f'("{self.losses.gan_mode}"); use lsgan (official) or vanilla.')

    # ------------------------------------------------------------------ building

    @property
    def style_dim(self) -> int:
        spec = self.network_specs.get("generator_a") or self.network_spec("generator_a")
        return int(spec["kwargs"].get("style_dim", 8))

    @property
    def latent_dim(self) -> int:
        """A latent code is a style code: MUNIT's styles are drawn from N(0, I) directly."""
        return self.style_dim

    def init_weights(self) -> None:
        from ganzoo_munit.networks import init_weights

        for role, net in self.nets.items():
            kind = "gaussian" if role.startswith("discriminator") else self.optim.init
            net.apply(lambda m, kind=kind: init_weights(m, kind))

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One Adam for both generators and one for both discriminators, as officially."""
        o = self.optim

        def shared(*roles: str) -> torch.optim.Optimizer:
            params = [p for r in roles for p in self.nets[r].parameters()]
            return adam(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)

        return {"generators": shared("generator_a", "generator_b"),
                "discriminators": shared("discriminator_a", "discriminator_b")}

    def lr_factor(self, step: int) -> float:
        """The official StepLR: it has stepped ``step + 1`` times when iteration ``step`` (from 0) runs."""
        if self.optim.lr_policy != "step":
            return 1.0
        return self.optim.gamma ** ((step + 1) // self.optim.step_size)

    # ------------------------------------------------------------------ data

    def training_item(self, dataset, index: int, rng: random.Random) -> dict[str, torch.Tensor]:
        """An unpaired (a, b) example: item ``index`` plus a random image of the other domain (two shuffled loaders
        officially)."""
        groups = dataset.label_groups()
        label = dataset.labels[index]
        other = rng.choice(groups[1 - label])
        first, second = dataset.load(index, rng), dataset.load(other, rng)
        a, b = (first, second) if label == 0 else (second, first)
        return {"a": a, "b": b}

    # ------------------------------------------------------------------ training

    @property
    def adversarial(self) -> AdversarialLoss:
        return adversarial_loss(self.losses.gan_mode)

    def _generator_adversarial(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        """Sum over the discriminator's scales (official ``calc_gen_loss``)."""
        return sum(self.adversarial(out, True, for_discriminator=False) for out in outputs)

    def _discriminator_adversarial(self, on_fake: list[torch.Tensor], on_real: list[torch.Tensor]) -> torch.Tensor:
        """Sum over scales of the loss on fakes and on reals (official ``calc_dis_loss``, no 1/2)."""
        return sum(self.adversarial(f, False) + self.adversarial(r, True) for f, r in zip(on_fake, on_real))

    def discriminator_loss(self, x_a, x_b, ctx):
        n, l = self.nets, self.losses
        s_a = ctx.randn(x_a.shape[0], self.style_dim, device=x_a.device).to(x_a.dtype)
        s_b = ctx.randn(x_b.shape[0], self.style_dim, device=x_b.device).to(x_b.dtype)
        with torch.no_grad(), ctx.autocast():
            # Only the content codes are needed (the official code also encodes styles it does not use).
            x_ba = _decode(n["generator_a"], n["generator_b"].enc_content(x_b), s_a)
            x_ab = _decode(n["generator_b"], n["generator_a"].enc_content(x_a), s_b)
        with ctx.autocast():
            loss_a = self._discriminator_adversarial(*_scores(n["discriminator_a"], x_ba, x_a))
            loss_b = self._discriminator_adversarial(*_scores(n["discriminator_b"], x_ab, x_b))
        return l.gan_w * (loss_a + loss_b), {"a": loss_a.detach(), "b": loss_b.detach()}

    def generator_loss(self, x_a, x_b, ctx):
        n, l = self.nets, self.losses
        gen_a, gen_b = n["generator_a"], n["generator_b"]
        s_a = ctx.randn(x_a.shape[0], self.style_dim, device=x_a.device).to(x_a.dtype)
        s_b = ctx.randn(x_b.shape[0], self.style_dim, device=x_b.device).to(x_b.dtype)
        with ctx.autocast():
            c_a, s_a_prime = _encode(gen_a, x_a)
            c_b, s_b_prime = _encode(gen_b, x_b)
            # within-domain reconstruction, and cross-domain translation with random styles
            x_a_recon, x_ba = _decode_together(gen_a, (c_a, s_a_prime), (c_b, s_a))
            x_b_recon, x_ab = _decode_together(gen_b, (c_b, s_b_prime), (c_a, s_b))
            # encode the translations again
            c_b_recon, s_a_recon = _encode(gen_a, x_ba)
            c_a_recon, s_b_recon = _encode(gen_b, x_ab)
            adv_a = self._generator_adversarial(n["discriminator_a"](x_ba))
            adv_b = self._generator_adversarial(n["discriminator_b"](x_ab))
            logs = {
                "adv_a": adv_a, "adv_b": adv_b,
                "recon_x_a": _l1(x_a_recon, x_a), "recon_x_b": _l1(x_b_recon, x_b),
                "recon_s_a": _l1(s_a_recon, s_a), "recon_s_b": _l1(s_b_recon, s_b),
                "recon_c_a": _l1(c_a_recon, c_a), "recon_c_b": _l1(c_b_recon, c_b),
            }
            loss = (l.gan_w * (adv_a + adv_b)
                    + l.recon_x_w * (logs["recon_x_a"] + logs["recon_x_b"])
                    + l.recon_s_w * (logs["recon_s_a"] + logs["recon_s_b"])
                    + l.recon_c_w * (logs["recon_c_a"] + logs["recon_c_b"]))
            if l.vgg_w > 0:
                # domain-invariant perceptual loss: a translation keeps its source's (normalised) VGG features
                vgg = self.perceptual_network(x_a.device)
                logs.update(vgg_a=perceptual_distance(vgg, x_ba, x_b), vgg_b=perceptual_distance(vgg, x_ab, x_a))
                loss = loss + l.vgg_w * (logs["vgg_a"] + logs["vgg_b"])
            if l.recon_x_cyc_w > 0:
                # explicit style-augmented cycle: back to the source domain with the source's own style
                x_aba = _decode(gen_a, c_a_recon, s_a_prime)
                x_bab = _decode(gen_b, c_b_recon, s_b_prime)
                logs.update(cyc_x_a=_l1(x_aba, x_a), cyc_x_b=_l1(x_bab, x_b))
                loss = loss + l.recon_x_cyc_w * (logs["cyc_x_a"] + logs["cyc_x_b"])
        return loss, {k: v.detach() for k, v in logs.items()}

    def perceptual_network(self, device: torch.device) -> nn.Module:
        """The frozen VGG16 of the perceptual loss, read once from ``losses.vgg_weights`` (not a saved network)."""
        vgg = getattr(self, "_vgg", None)
        if vgg is None:
            from ganzoo_munit.perceptual import load_vgg

            if not self.losses.vgg_weights:
                raise RecipeError(f"{self.recipe.source}: losses.vgg_weights: vgg_w > 0 needs the official VGG16 weights "
                                  "file (vgg16.weight; ganzoo downloads none), or set losses.vgg_w=0.")
            vgg = self._vgg = load_vgg(self.losses.vgg_weights, self.recipe.source)
        return vgg.to(device)

    def train_step(self, batch, step, ctx):
        x_a, x_b = batch["a"], batch["b"]
        n = self.nets
        with _scaled_lr(ctx.optimizers, self.lr_factor(step)):
            with frozen(n["generator_a"], n["generator_b"]):
                d_loss, d_logs = self.discriminator_loss(x_a, x_b, ctx)
                ctx.optimize(d_loss, "discriminators")
            with frozen(n["discriminator_a"], n["discriminator_b"]):
                g_loss, g_logs = self.generator_loss(x_a, x_b, ctx)
                ctx.optimize(g_loss, "generators")
        logs = {f"D/{k}": v for k, v in d_logs.items()}
        logs.update({f"G/{k}": v for k, v in g_logs.items()})
        logs["G/total"] = g_loss.detach()
        return logs

    # ------------------------------------------------------------------ inference

    def _generators(self) -> tuple[nn.Module, nn.Module]:
        nets = self.inference_nets()
        missing = [r for r in ("generator_a", "generator_b") if r not in nets]
        if missing:
            raise GanzooError(f"This MUNIT model folder has no {missing[0]}; it needs both auto-encoders to translate.")
        return nets["generator_a"], nets["generator_b"]

    @torch.no_grad()
    def translate(self, images, target, *, reference=None, z=None, generator=None):
        """Images into domain ``target`` (per sample) with a reference's style, a given style ``z``, or a random one."""
        target = torch.as_tensor(target, device=images.device)
        if target.dim() == 0:
            target = target.expand(images.shape[0])
        styles = self.style_codes(target, reference=reference, z=z, generator=generator)
        return self.translate_with_style(images, styles)

    @torch.no_grad()
    def generate(self, images, index, mode, *, references=None, generator=None):
        """MUNIT's evaluation modes, as StarGAN v2's: a random style (latent) or a reference image's style."""
        target = torch.full((images.shape[0],), index, dtype=torch.long, device=images.device)
        if mode == "reference":
            return self.translate(images, target, reference=references)
        return self.translate(images, target, generator=generator)

    @torch.no_grad()
    def style_codes(self, target, *, reference=None, z=None, generator=None) -> torch.Tensor:
        """Style codes for domains ``target`` (N,): of ``reference`` images (the target domain's style encoder), else
        ``z`` itself (N(0, I) draws when None).

        Each code carries its target domain: (N, style_dim + 2), the style then a one-hot of the domain, because
        ``translate_with_style`` is given no target and MUNIT has one decoder per domain. Interpolating two codes
        of one domain (the sheets' animations) keeps the one-hot exact.
        """
        gens = self._generators()
        device = self.device
        target = torch.as_tensor(target, device=device).long().reshape(-1)
        if reference is not None:
            reference = reference.to(device)
            style = torch.zeros(target.shape[0], self.style_dim, device=device)
            with _eval_mode(*gens):
                for d in (0, 1):
                    chosen = target == d
                    if bool(chosen.any()):
                        style[chosen] = gens[d].enc_style(reference[chosen]).float()
        else:
            if z is None:
                z = torch.randn(target.shape[0], self.style_dim, generator=generator)
            style = z.to(device).float().reshape(target.shape[0], -1)
        tag = torch.nn.functional.one_hot(target, 2).to(style.dtype)
        return torch.cat([style, tag], dim=1)

    @torch.no_grad()
    def translate_with_style(self, images, styles) -> torch.Tensor:
        """``images`` decoded in ``styles`` (from :meth:`style_codes`): content from the other domain's encoder,
        image from the code's domain's decoder (CycleGAN's convention: into b means from a)."""
        gens = self._generators()
        images = images.to(self.device)
        styles = styles.to(self.device)
        style, target = styles[:, :self.style_dim], styles[:, self.style_dim:].argmax(1)
        out = torch.empty_like(images)
        with _eval_mode(*gens):
            for d in (0, 1):
                chosen = target == d
                if not bool(chosen.any()):
                    continue
                content = gens[1 - d].enc_content(images[chosen])
                out[chosen] = gens[d].decode(content, style[chosen]).to(out.dtype)
        return out.clamp(-1, 1)

    # ------------------------------------------------------------------ export

    def export_graphs(self):
        """``ganzoo export``: per domain its style encoder (reference-guided styles), and per direction the source's
        content encoder with the target's decoder, the style an input (a random style is an N(0, I) draw of
        style_dim values); in eval mode as :meth:`translate_with_style`. The directions are fully convolutional."""
        from ganzoo.api import ExportGraph, TensorSpec

        gens = self._generators()
        size, d = self.image_size, self.style_dim
        graphs = []
        for index, (domain, gen) in enumerate(zip(self.domains, gens)):

            def style_reference(reference, index=index):
                target = torch.full((reference.shape[0],), index, dtype=torch.long)
                return self.style_codes(target, reference=reference)[:, :d]

            graphs.append(ExportGraph(
                name=f"style_encoder_{'ab'[index]}", module=gen.enc_style,
                inputs=(TensorSpec("reference", ("batch", 3, size, size), "image", f"reference images of {domain}"),),
                output=TensorSpec("style", ("batch", d), "code", f"their style codes in {domain}"),
                description=f"the style code of reference images of {domain} (reference-guided)",
                reference=style_reference))
        for name, target in (("a2b", 1), ("b2a", 0)):
            depth = int(self.network_specs["generator_a"]["kwargs"].get("n_downsample", 2))
            source, into = self.domains[1 - target], self.domains[target]

            def translate_reference(image, style, target=target):
                tag = torch.nn.functional.one_hot(torch.full((image.shape[0],), target, dtype=torch.long), 2).to(style.dtype)
                return self.translate_with_style(image, torch.cat([style, tag], dim=1))

            graphs.append(ExportGraph(
                name=name, module=ContentToStyle(gens[1 - target], gens[target]),
                inputs=(TensorSpec("image", ("batch", 3, "height", "width"), "image", f"images of {source}"),
                        TensorSpec("style", ("batch", d), "code",
                                   f"style codes of {into}: N(0, I) draws (random styles) or style_encoder_{'ab'[target]}'s")),
                output=TensorSpec("translated", ("batch", 3, "height", "width"), "image", f"the images translated into {into}"),
                description=f"{source} -> {into}: the content of {source} decoded in a style of {into}",
                spatial="dynamic", multiple_of=2 ** depth, min_size=2 ** (depth + 1), reference=translate_reference))
        return graphs


class ContentToStyle(nn.Module):
    """``into.decode(source.enc_content(x), style)`` clamped to [-1, 1]: one MUNIT direction."""

    def __init__(self, source: nn.Module, into: nn.Module):
        super().__init__()
        self.source, self.into = source, into

    def forward(self, image: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.into.decode(self.source.enc_content(image), style).clamp(-1, 1)
