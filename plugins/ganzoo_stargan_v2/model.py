"""StarGAN v2's training algorithm, following the paper and the official solver.

One iteration = two discriminator steps (latent-guided, reference-guided)
then two generator steps (latent-guided: G, F and E step; reference-guided:
only G steps), then EMA of G, F, E (done by the trainer, decay 0.999).
"""

from __future__ import annotations

import random
from typing import Any

import torch
from pydantic import Field

from ganzoo.api import (
    CheckpointError,
    GANModel,
    OptimConfig,
    RecipeError,
    StrictModel,
    balanced_index,
    differentiable_twice,
    frozen,
    r1,
    vanilla,
)

#: how to get the FAN weights, for the sentences that say they are missing
FAN_HOW = ("get them with `ganzoo pull stargan_v2.celeba_hq` (then train.frozen_weights.fan: that model folder), or "
           "download the official wing.ckpt (clovaai/stargan-v2 download.sh) and set train.frozen_weights.fan: wing.ckpt "
           "(--set train.frozen_weights.fan=wing.ckpt)")


class StarGANv2Losses(StrictModel):
    """Loss weights: λ_adv, λ_reg (R1), λ_sty, λ_ds, λ_cyc, and the λ_ds decay length."""

    adv: float = Field(1.0, ge=0)
    r1: float = Field(1.0, ge=0)
    sty: float = Field(1.0, ge=0)
    ds: float = Field(1.0, ge=0)
    cyc: float = Field(1.0, ge=0)
    ds_decay_steps: int | None = Field(None, ge=1, description="λ_ds reaches 0 after this many steps (default: train.steps)")
    # Lazy regularisation (Karras et al., StyleGAN2): R1 on every k-th iteration only, weighted k x, for about the
    # same regularisation at less cost. Not in the official solver (k = 1 there), off in every shipped recipe.
    r1_every: int = Field(1, ge=1, le=1000, description="R1 on every k-th iteration only, weighted k x (official: 1)")


class StarGANv2Optim(OptimConfig):
    """Adam for G, E, D at ``lr`` and for the mapping network at ``mapping_lr`` (official: 1e-4 / 1e-6)."""

    lr: float = Field(1e-4, gt=0, le=1.0)
    mapping_lr: float = Field(1e-6, gt=0, le=1.0)
    betas: tuple[float, float] = (0.0, 0.99)
    weight_decay: float = Field(1e-4, ge=0)




class StarGANv2(
    GANModel,
    paper="Choi et al., StarGAN v2: Diverse Image Synthesis for Multiple Domains, CVPR 2020",
    citation="@inproceedings{choi2020starganv2, title={StarGAN v2: Diverse Image Synthesis for Multiple Domains}, "
             "author={Choi, Yunjey and Uh, Youngjung and Yoo, Jaejun and Ha, Jung-Woo}, booktitle={CVPR}, year={2020}}",
    license="cc-by-nc-4.0",
    recipes={"small": "quickstart", "official": "stargan_v2_afhq"},
    tiny={"data.image_size": 16, "data.batch_size": 2, "data.num_train": 6, "data.num_val": 2,
          "networks.generator.dim_in": 8, "networks.generator.max_conv_dim": 16,
          "networks.style_encoder.dim_in": 8, "networks.style_encoder.max_conv_dim": 16,
          "networks.discriminator.dim_in": 8, "networks.discriminator.max_conv_dim": 16,
          "networks.mapping_network.hidden_dim": 16},
):
    """StarGAN v2: one generator, a mapping network and a style encoder for k domains."""

    network_roles = {
        "generator": "stargan_v2.generator",
        "mapping_network": "stargan_v2.mapping_network",
        "style_encoder": "stargan_v2.style_encoder",
        "discriminator": "stargan_v2.discriminator",
    }
    ema_roles = ("generator", "mapping_network", "style_encoder")
    sample_sheets = ("reference_grid", "latent_grid", "reference_animation", "latent_animation")
    eval_modes = {"latent": True, "reference": True}
    derived_network_args = {
        "generator": ("img_size",),
        "mapping_network": ("num_domains", "style_dim"),
        "style_encoder": ("img_size", "num_domains", "style_dim"),
        "discriminator": ("img_size", "num_domains"),
    }
    LossConfig = StarGANv2Losses
    OptimConfig = StarGANv2Optim

    @classmethod
    def default_recipe(cls) -> dict[str, Any]:
        # Official defaults (main.py / README); AFHQ-style generator (w_hpf 0) unless a recipe asks for the
        # CelebA-HQ one (w_hpf 1), which needs the FAN weights (train.frozen_weights.fan).
        return {
            "networks": {"generator": {"style_dim": 64, "w_hpf": 0}},
            "data": {"image_size": 256, "batch_size": 8},
            "train": {"steps": 100_000, "ema": 0.999, "seed": 777, "checkpoint_every": 10_000, "sample_every": 5_000},
        }

    def derived_kwargs(self, role: str) -> dict[str, Any]:
        style_dim = self.recipe.networks.get("generator", {}).get("style_dim", 64)
        values = {"img_size": self.image_size, "num_domains": len(self.domains), "style_dim": style_dim}
        return {k: values[k] for k in self.derived_network_args[role]}

    @property
    def latent_dim(self) -> int:
        return self.network_specs["mapping_network"]["kwargs"].get("latent_dim", 16)

    @property
    def w_hpf(self) -> float:
        spec = self.network_specs.get("generator") or self.network_spec("generator")
        return float(spec["kwargs"].get("w_hpf", 1))  # Generator's default is the official CelebA-HQ 1

    def build_frozen(self):
        # Official build_model: the FAN exists only with w_hpf > 0 (CelebA-HQ); its masks gate the high-pass skip.
        if self.w_hpf <= 0:
            return {}
        from ganzoo_stargan_v2.fan import FAN

        return {"fan": FAN()}

    def init_weights(self) -> None:
        from ganzoo_stargan_v2.networks import he_init

        for net in self.nets.values():
            net.apply(he_init)
        if "fan" in self.frozen_nets:
            path = self.recipe.train.frozen_weights.get("fan")
            if path is None:
                raise RecipeError(
                    f"{self.recipe.source}: networks.generator.w_hpf is {self.w_hpf:g}, so training needs the face-alignment "
                    f"network (FAN) for the face masks, and train.frozen_weights.fan is not set; {FAN_HOW}."
                )
            from ganzoo_stargan_v2.convert import load_fan_weights

            self.frozen_nets["fan"].load_state_dict(load_fan_weights(path), strict=True)

    def face_masks(self, images: torch.Tensor):
        """The official FAN masks of ``images`` when the generator uses them (w_hpf > 0), else None."""
        if self.w_hpf <= 0:
            return None
        fan = self.frozen_nets.get("fan")
        if fan is None:
            raise CheckpointError(
                f"This StarGAN v2 model has w_hpf {self.w_hpf:g} and needs the FAN face masks, but its model folder has "
                "no fan.safetensors; convert the official wing.ckpt with `ganzoo convert stargan_v2_fan wing.ckpt DIR` "
                "and copy DIR/fan.safetensors into the model folder, or use `ganzoo pull stargan_v2.celeba_hq`."
            )
        return fan.get_heatmap(images)

    def learning_rate(self, role: str) -> float:
        return self.optim.mapping_lr if role == "mapping_network" else self.optim.lr

    # ------------------------------------------------------------------ data

    def training_item(self, dataset, index: int, rng: random.Random) -> dict[str, torch.Tensor]:
        """Source (x, y) plus a class-balanced reference pair (x_ref, x_ref2) of one target domain y_ref."""
        groups = dataset.label_groups()
        y_ref = rng.choice([d for d, g in enumerate(groups) if g])
        ref, ref2 = balanced_index(groups, rng, y_ref), balanced_index(groups, rng, y_ref)
        return {
            "x": dataset.load(index, rng),
            "y": torch.tensor(dataset.labels[index]),
            "x_ref": dataset.load(ref, rng),
            "x_ref2": dataset.load(ref2, rng),
            "y_ref": torch.tensor(y_ref),
        }

    # ------------------------------------------------------------------ training

    def lambda_ds(self, step: int) -> float:
        total = self.losses.ds_decay_steps or self.recipe.train.steps
        return max(0.0, self.losses.ds * (1.0 - step / total))

    def style(self, y: torch.Tensor, *, z: torch.Tensor | None = None, x_ref: torch.Tensor | None = None, nets=None) -> torch.Tensor:
        nets = nets or self.nets
        return nets["mapping_network"](z, y) if z is not None else nets["style_encoder"](x_ref, y)

    def discriminator_loss(self, x_real, y_org, y_trg, x_fake, ctx, *, regularize=True):
        """D's loss on the real batch (with R1 when ``regularize``) and on ``x_fake`` (no graph to the generator)."""
        D = self.nets["discriminator"]
        if regularize:
            x_real = x_real.detach().requires_grad_(True)
            with ctx.autocast(), differentiable_twice():  # R1 differentiates this forward twice
                out = D(x_real, y_org)
                loss_real = vanilla(out, True)
            loss_reg = r1(out, x_real, ctx.scaler)
        else:
            with ctx.autocast():
                loss_real = vanilla(D(x_real, y_org), True)
        with ctx.autocast():
            out = D(x_fake.detach(), y_trg)
            loss_fake = vanilla(out, False)
        loss = self.losses.adv * (loss_real + loss_fake)
        logs = {"real": loss_real.detach(), "fake": loss_fake.detach()}
        if regularize:  # lazy R1: every r1_every-th iteration, weighted that many times
            loss = loss + self.losses.r1 * self.losses.r1_every * loss_reg
            logs["reg"] = loss_reg.detach()
        return loss, logs

    def generator_loss(self, x_real, y_org, y_trg, s_trg, x_fake, x_fake2, ctx, lambda_ds: float, *, s_org=None,
                       masks=None):
        """G's loss for the fake ``x_fake = G(x_real, s_trg)`` (with its graph); ``x_fake2`` is the diversity term's
        second fake (a constant: the official code detaches it), None while λ_ds is 0 (it adds nothing then).
        ``s_org``: the source's own style when the caller has it (a frozen style encoder's constant)."""
        D, E = self.nets["discriminator"], self.nets["style_encoder"]
        with ctx.autocast():
            out = D(x_fake, y_trg)
            loss_adv = vanilla(out, True)
            # the style of the fake (style reconstruction) and of the source (cycle): one style encoder call
            if s_org is None:
                s_fake, s_org = E(torch.cat([x_fake, x_real]), torch.cat([y_trg, y_org])).chunk(2)
            else:
                s_fake = E(x_fake, y_trg)
            loss_sty = (s_fake.float() - s_trg.float()).abs().mean()
            loss_ds = (x_fake.float() - x_fake2.float()).abs().mean() if x_fake2 is not None else None
            # cycle consistency with the source's own style; official: masks of x_fake (no gradient, fp32)
            fake_masks = self.face_masks(x_fake.detach()) if masks is not None else None
            x_rec = self.nets["generator"](x_fake, s_org, masks=fake_masks)
            loss_cyc = (x_rec.float() - x_real.float()).abs().mean()
        l = self.losses
        loss = l.adv * loss_adv + l.sty * loss_sty + l.cyc * loss_cyc
        logs = {"adv": loss_adv.detach(), "sty": loss_sty.detach(), "cyc": loss_cyc.detach()}
        if loss_ds is not None:
            loss = loss - lambda_ds * loss_ds
            logs["ds"] = loss_ds.detach()
        return loss, logs

    def _fakes_without_graph(self, x, styles, masks):
        """G(x, s) for each style in ``styles``, in one generator call on the stacked batch; no graph."""
        if not styles:
            return []
        k = len(styles)
        masks = tuple(m.repeat(k, *[1] * (m.dim() - 1)) for m in masks) if masks is not None else None
        return list(self.nets["generator"](x.repeat(k, 1, 1, 1), torch.cat(styles), masks=masks).chunk(k))

    def train_step(self, batch, step, ctx):
        """The official solver's iteration (D on latent then reference styles; G on latent styles, stepping G, F
        and E, then on reference styles, stepping G), computed with fewer generator calls. G, F and E change only
        in the generator steps, so the latent fake the first discriminator step sees is exactly the one the first
        generator step differentiates: it is computed once, with its graph. The reference fake of the second
        discriminator step and the latent diversity fake are constants of the same weights: one generator call.
        tests/test_stargan_v2_step.py checks the result against the official order, parameter for parameter."""
        x, y = batch["x"], batch["y"]
        x_ref, x_ref2, y_trg = batch["x_ref"], batch["x_ref2"], batch["y_ref"]
        # ctx.randn: the same noise per example whether the global batch runs on one process or is split by DDP
        z = ctx.randn(x.shape[0], self.latent_dim, device=x.device)
        z2 = ctx.randn(x.shape[0], self.latent_dim, device=x.device)
        n = self.nets
        G = n["generator"]
        logs: dict[str, torch.Tensor] = {}
        # official solver: masks of the real batch, once per iteration, for both D steps and both G steps
        masks = self.face_masks(x)
        lambda_ds = self.lambda_ds(step)

        with frozen(n["discriminator"]), ctx.autocast():
            s_lat = self.style(y_trg, z=z)
            x_fake_lat = G(x, s_lat, masks=masks)
        with torch.no_grad(), ctx.autocast():
            styles = [self.style(y_trg, x_ref=x_ref)] + ([self.style(y_trg, z=z2)] if lambda_ds > 0 else [])
            x_fake_ref, *x_fake2_lat = self._fakes_without_graph(x, styles, masks)

        regularize = step % self.losses.r1_every == 0
        with frozen(G, n["mapping_network"], n["style_encoder"]):
            d_loss, d_logs = self.discriminator_loss(x, y, y_trg, x_fake_lat, ctx, regularize=regularize)
            ctx.optimize(d_loss, "discriminator")
            d_loss_ref, _ = self.discriminator_loss(x, y, y_trg, x_fake_ref, ctx, regularize=regularize)
            ctx.optimize(d_loss_ref, "discriminator")

        with frozen(n["discriminator"]):
            g_loss, g_logs = self.generator_loss(x, y, y_trg, s_lat, x_fake_lat, (x_fake2_lat or [None])[0], ctx,
                                                 lambda_ds, masks=masks)
            ctx.optimize(g_loss, "generator", "mapping_network", "style_encoder")
        with frozen(n["discriminator"], n["mapping_network"], n["style_encoder"]):
            # G has changed: this step's fakes come after the first generator step. The frozen style encoder's
            # styles (the references', the source's own for the cycle) are constants: one call.
            with torch.no_grad(), ctx.autocast():
                images, domains = [x_ref, x], [y_trg, y]
                if lambda_ds > 0:
                    images, domains = [x_ref, x, x_ref2], [y_trg, y, y_trg]
                s_ref, s_org, *s_ref2 = n["style_encoder"](torch.cat(images), torch.cat(domains)).chunk(len(images))
            with ctx.autocast():
                x_fake = G(x, s_ref, masks=masks)
            with torch.no_grad(), ctx.autocast():
                x_fake2 = self._fakes_without_graph(x, s_ref2, masks)
            g_loss_ref, _ = self.generator_loss(x, y, y_trg, s_ref, x_fake, (x_fake2 or [None])[0], ctx, lambda_ds,
                                                s_org=s_org, masks=masks)
            ctx.optimize(g_loss_ref, "generator")

        logs.update({f"D/{k}": v for k, v in d_logs.items()})
        logs.update({f"G/{k}": v for k, v in g_logs.items()})
        logs["D/ref"] = d_loss_ref.detach()
        logs["G/ref"] = g_loss_ref.detach()
        return logs

    # ------------------------------------------------------------------ inference

    @torch.no_grad()
    def translate(self, images, target, *, reference=None, z=None, generator=None):
        styles = self.style_codes(target, reference=reference, z=z, generator=generator)
        return self.translate_with_style(images, styles)

    @torch.no_grad()
    def generate(self, images, index, mode, *, references=None, generator=None):
        """StarGAN v2's evaluation modes: a style from random noise (latent) or from a reference image."""
        target = torch.full((images.shape[0],), index, dtype=torch.long, device=images.device)
        if mode == "reference":
            return self.translate(images, target, reference=references)
        return self.translate(images, target, generator=generator)

    @torch.no_grad()
    def style_codes(self, target, *, reference=None, z=None, generator=None) -> torch.Tensor:
        """Style codes for domains ``target`` (N,): of ``reference`` images, else of latent codes ``z`` (random if None)."""
        nets = self.inference_nets()
        target = target.to(self.device)
        if reference is not None:
            return nets["style_encoder"](reference.to(self.device), target)
        if z is None:
            z = torch.randn(target.shape[0], self.latent_dim, generator=generator)
        return nets["mapping_network"](z.to(self.device), target)

    @torch.no_grad()
    def translate_with_style(self, images, styles) -> torch.Tensor:
        """``images`` rendered in ``styles`` (N,style_dim); the sample sheets interpolate styles through this."""
        # official sample/eval: with w_hpf > 0 the generator gets the FAN masks of the source images
        masks = self.face_masks(images)
        return self.inference_nets()["generator"](images, styles.to(images.device), masks=masks).clamp(-1, 1)

    # ------------------------------------------------------------------ export

    def export_graphs(self):
        """``ganzoo export``: the mapping network and the style encoder (the target domain an input: every head runs
        and a gather picks the target's), and the generator (image, style code)."""
        from ganzoo.api import ExportGraph, TensorSpec

        if self.w_hpf > 0:
            raise CheckpointError(
                f"This StarGAN v2 model has w_hpf {self.w_hpf:g}: its generator needs the FAN face masks, which "
                "`ganzoo export` does not export yet; export an AFHQ-style model (w_hpf 0).")
        nets = self.inference_nets()
        size, k = self.image_size, len(self.domains)
        style_dim = nets["generator"].style_dim
        domains = f"target domain index into {', '.join(self.domains)}"
        style = TensorSpec("style", ("batch", style_dim), "code", "style codes (the mapping network's or the style encoder's)")
        # The generator is fully convolutional: any size that its downsamplings halve evenly (and not to 1 px,
        # where instance norm has a single value).
        stride = 2 ** sum(1 for block in nets["generator"].encode if getattr(block, "downsample", False))
        return [
            ExportGraph(
                name="mapping_network", module=nets["mapping_network"],
                inputs=(TensorSpec("z", ("batch", self.latent_dim), "normal", "latent codes"),
                        TensorSpec("domain", ("batch",), "index", domains, high=k)),
                output=TensorSpec("style", ("batch", style_dim), "code", "style codes for the target domains"),
                description="F(z, domain): a style code of the target domain from random noise (latent-guided)",
                reference=lambda z, domain: self.style_codes(domain, z=z)),
            ExportGraph(
                name="style_encoder", module=nets["style_encoder"],
                inputs=(TensorSpec("reference", ("batch", 3, size, size), "image", "reference images of the target domains"),
                        TensorSpec("domain", ("batch",), "index", domains, high=k)),
                output=TensorSpec("style", ("batch", style_dim), "code", "the references' style codes"),
                description="E(reference, domain): the style code of reference images (reference-guided)",
                reference=lambda reference, domain: self.style_codes(domain, reference=reference)),
            ExportGraph(
                name="generator", module=ClampedStyleGenerator(nets["generator"]),
                inputs=(TensorSpec("image", ("batch", 3, "height", "width"), "image", "source images"), style),
                output=TensorSpec("translated", ("batch", 3, "height", "width"), "image", "translated images"),
                description="G(image, style): the source images rendered in the style codes (so in their domains)",
                spatial="dynamic", multiple_of=stride, min_size=2 * stride,
                notes=[f"trained at {size} px; other sizes run but are outside what it learned"],
                reference=lambda image, style: self.translate_with_style(image, style)),
        ]


class ClampedStyleGenerator(torch.nn.Module):
    """G(x, s) clamped to [-1, 1], as :meth:`StarGANv2.translate_with_style` returns it (no FAN masks: w_hpf 0)."""

    def __init__(self, generator: torch.nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, image: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.generator(image, style).clamp(-1, 1)
