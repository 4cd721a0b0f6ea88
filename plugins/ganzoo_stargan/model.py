"""StarGAN v1's training algorithm, following the paper and the official solver.

One step = one official iteration: a critic (D) update on every step, a
generator update on every ``n_critic``-th step. Losses (paper eq. 1-7):

  D: -E[D_src(x)] + E[D_src(G(x, c'))] + λ_gp·GP + λ_cls·L_cls(D_cls(x), c)
  G: -E[D_src(G(x, c'))] + λ_cls·L_cls(D_cls(G(x, c')), c') + λ_rec·|x - G(G(x, c'), c)|₁

with c the image's own label and c' the batch's labels in random order
(the official ``label_org[randperm(N)]``). L_cls is softmax cross-entropy for
one-hot domains and a multi-label binary cross-entropy, summed over attributes
and averaged over the batch, for attribute sets (CelebA).

Labels come in three kinds, told by the dataset class's ``label_kind``:
``"one-hot"`` (an int domain per image: shapes, RaFD, image folders),
``"attributes"`` (a 0/1 vector per image: CelebA) and ``"joint"`` (CelebA and
RaFD trained together with the paper's mask vector, official ``train_multi``:
the label is ``[c_celeba | c_rafd | mask]``, the generator sees all of it, D
classifies ``c_celeba + c_rafd`` outputs, and the classification loss is taken
only on the active set's part). The generator always sees a float label vector.

A joint step is one official ``train_multi`` iteration: a CelebA half (D step,
then the G step on every ``n_critic``-th iteration) and then a RaFD half, each
on its own batch with its own shuffled targets.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field

from ganzoo.api import GANModel, GanzooError, OptimConfig, StrictModel, dataset_label_kind, did_you_mean, frozen, per_image, wgan, wgan_gp

from .data import DEFAULT_ATTRIBUTES, HAIR_COLOURS


class StarGANLosses(StrictModel):
    """Loss weights λ_cls, λ_rec, λ_gp (official 1, 10, 10); the adversarial term has weight 1."""

    cls: float = Field(1.0, ge=0)
    rec: float = Field(10.0, ge=0)
    gp: float = Field(10.0, ge=0)
    # Lazy regularisation (Karras et al., StyleGAN2, for R1): the penalty on every k-th critic step only, weighted
    # k x. Not in the official solver (k = 1 there).
    gp_every: int = Field(1, ge=1, le=1000, description="gradient penalty on every k-th critic step only, weighted k x (official: 1)")


class StarGANOptim(OptimConfig):
    """Adam for G and D at ``lr`` (official 1e-4, betas 0.5/0.999); G steps once per ``n_critic`` D steps."""

    lr: float = Field(1e-4, gt=0, le=1.0)
    betas: tuple[float, float] = (0.5, 0.999)
    n_critic: int = Field(5, ge=1)


def gradient_penalty(critic: torch.nn.Module, x_real: torch.Tensor, x_fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(‖∇D(x̂)‖₂ - 1)²] at x̂ = αx + (1-α)x̃, one α ~ U(0,1) per image,
    on the source head of StarGAN's two-headed critic (D returns source scores and domain logits)."""
    return wgan_gp(lambda x: critic(x)[0], x_real, x_fake)


def parse_attribute_assignments(text: str | Mapping[str, int], names: list[str]) -> dict[str, int]:
    """``"Blond_Hair,Male=0"`` -> ``{"Blond_Hair": 1, "Male": 0}``; a bare name means 1."""
    if isinstance(text, Mapping):
        items = [(str(k), str(v)) for k, v in text.items()]
    else:
        items = []
        for part in (p.strip() for p in text.split(",")):
            if part:
                name, sep, value = part.partition("=")
                items.append((name.strip(), value.strip() if sep else "1"))
    assignments: dict[str, int] = {}
    for name, value in items:
        if name not in names:
            raise GanzooError(f'Attribute "{name}" is not one of this model\'s attributes ({", ".join(names)}).{did_you_mean(name, names)}')
        if value not in ("0", "1"):
            raise GanzooError(f'Attribute value "{name}={value}" must be 0 or 1 (e.g. --attrs Blond_Hair,Male=0).')
        assignments[name] = int(value)
    if not assignments:
        raise GanzooError("--attrs names no attribute; give e.g. --attrs Blond_Hair,Male=0.")
    return assignments


def forward_repeats_exactly(net: torch.nn.Module) -> bool:
    """Whether a second forward of ``net`` on the same inputs, with the same weights, gives the same outputs and leaves
    the same state: no dropout (random), no norm that updates running statistics in training (our
    :class:`~ganzoo_stargan.networks.InstanceNorm` keeps the official buffers but never updates them)."""
    from torch import nn

    from .networks import InstanceNorm

    for m in net.modules():
        if isinstance(m, (nn.Dropout, nn.modules.batchnorm._BatchNorm)):
            return False
        if isinstance(m, nn.modules.instancenorm._InstanceNorm) and m.track_running_stats and not isinstance(m, InstanceNorm):
            return False
    return True


class StarGAN(
    GANModel,
    paper="Choi et al., StarGAN: Unified Generative Adversarial Networks for Multi-Domain Image-to-Image Translation, CVPR 2018",
    citation="@inproceedings{choi2018stargan, title={StarGAN: Unified Generative Adversarial Networks for Multi-Domain "
             "Image-to-Image Translation}, author={Choi, Yunjey and Choi, Minje and Kim, Munyoung and Ha, Jung-Woo and "
             "Kim, Sunghun and Choo, Jaegul}, booktitle={CVPR}, year={2018}}",
    license="mit",
    recipes={"small": "stargan_shapes", "official": "stargan_celeba"},
    tiny={"data.image_size": 16, "data.batch_size": 2, "data.num_train": 6, "data.num_val": 3,
          "networks.generator.conv_dim": 8, "networks.generator.repeat_num": 1,
          "networks.discriminator.conv_dim": 8, "networks.discriminator.repeat_num": 2},
):
    """StarGAN v1: one generator for all domains, conditioned on a target label vector."""

    network_roles = {"generator": "stargan.generator", "discriminator": "stargan.discriminator"}
    derived_network_args = {"generator": ("c_dim",), "discriminator": ("image_size", "c_dim")}
    LossConfig = StarGANLosses
    OptimConfig = StarGANOptim

    @classmethod
    def default_recipe(cls) -> dict[str, Any]:
        # Official defaults (main.py): 128 px, widths 64, 6 residual blocks, 6 D convs, batch 16, 200k
        # iterations. No EMA in the official code.
        return {
            "networks": {"generator": {"conv_dim": 64, "repeat_num": 6}, "discriminator": {"conv_dim": 64, "repeat_num": 6}},
            "data": {"image_size": 128, "batch_size": 16},
            "train": {"steps": 200_000, "ema": 0.0, "checkpoint_every": 10_000, "sample_every": 1_000},
        }

    def __init__(self, recipe, domains):
        super().__init__(recipe, domains)
        self.label_kind = dataset_label_kind(recipe.data.name)
        #: joint models: how many of ``domains`` (the first ones) are CelebA attributes; the rest are RaFD expressions
        self.num_attributes = len(self.domains)
        if self.label_kind == "joint":
            selected = (recipe.data.model_extra or {}).get("selected_attrs") or DEFAULT_ATTRIBUTES
            self.num_attributes = len(selected)
            if list(selected) != self.domains[: self.num_attributes] or self.num_attributes >= len(self.domains):
                raise GanzooError(f"The joint model's domains {self.domains} do not start with its CelebA attributes "
                                  f"{list(selected)} followed by at least one RaFD expression.")

    @property
    def c_dim(self) -> int:
        """Number of labels D classifies (for joint models: CelebA attributes + RaFD expressions)."""
        return len(self.domains)

    @property
    def condition_dim(self) -> int:
        """Length of G's label vector: ``c_dim``, plus the 2-dim mask vector for joint models."""
        return self.c_dim + 2 if self.label_kind == "joint" else self.c_dim

    @property
    def attribute_names(self) -> list[str]:
        """The names ``--attrs`` may set: all domains of an attribute model, the CelebA part of a joint one."""
        return self.domains[: self.num_attributes]

    def derived_kwargs(self, role: str) -> dict[str, Any]:
        c_dim = self.condition_dim if role == "generator" else self.c_dim
        values = {"c_dim": c_dim, "image_size": self.image_size}
        return {k: values[k] for k in self.derived_network_args[role]}

    # ------------------------------------------------------------------ labels

    def label_vectors(self, y: torch.Tensor) -> torch.Tensor:
        """The generator's condition: one-hot vectors from domain indices, or the attribute (joint) vectors as floats."""
        if self.label_kind in ("attributes", "joint"):
            return y.float()
        return F.one_hot(y.long(), self.c_dim).float()

    def joint_condition(self, attributes: torch.Tensor | None = None, expressions: torch.Tensor | None = None) -> torch.Tensor:
        """Joint labels ``[c_celeba | c_rafd | mask]`` from CelebA attribute vectors (N, num_attributes)
        or from RaFD expression indices (N,) counted within the RaFD part."""
        n_attr, n_expr = self.num_attributes, self.c_dim - self.num_attributes
        if attributes is not None:
            rows = attributes.shape[0]
            zeros, mask = attributes.new_zeros(rows, n_expr), attributes.new_tensor([1.0, 0.0]).expand(rows, 2)
            return torch.cat([attributes.float(), zeros.float(), mask.float()], 1)
        rows = expressions.shape[0]
        one_hot = F.one_hot(expressions.long(), n_expr).float()
        zeros = one_hot.new_zeros(rows, n_attr)
        return torch.cat([zeros, one_hot, one_hot.new_tensor([0.0, 1.0]).expand(rows, 2)], 1)

    def classification_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.label_kind == "attributes":
            # Official: BCE summed over attributes, averaged over the batch.
            return F.binary_cross_entropy_with_logits(logits, y.float(), reduction="sum") / logits.shape[0]
        if self.label_kind == "joint":
            return self.joint_classification_loss(logits, y)
        return F.cross_entropy(logits, y.long())

    def joint_classification_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The official ``train_multi`` loss on D's logits sliced to each row's active set (told by the mask):
        CelebA rows BCE summed over the attributes / their count, RaFD rows cross-entropy; the inactive
        set's logits do not enter. A batch of one set (as in training) gives exactly the official value."""
        n = self.num_attributes
        y = y.float()
        celeba, rafd = y[:, -2] > 0.5, y[:, -1] > 0.5
        bce = F.binary_cross_entropy_with_logits(logits[:, :n], y[:, :n], reduction="none").sum(1)
        ce = F.cross_entropy(logits[:, n:], y[:, n:-2].argmax(1), reduction="none")
        zero = torch.zeros((), device=logits.device)
        celeba_loss = torch.where(celeba, bce, zero).sum() / celeba.sum().clamp_min(1)
        rafd_loss = torch.where(rafd, ce, zero).sum() / rafd.sum().clamp_min(1)
        return celeba_loss + rafd_loss

    # ------------------------------------------------------------------ training

    def training_item(self, dataset, index, rng):
        if self.label_kind != "joint":
            return super().training_item(dataset, index, rng)
        # One CelebA and one RaFD image per example, all randomness from ``rng``: a step holds a batch of each.
        i_celeba, i_rafd = dataset.joint_pair(index, rng)
        return {"x": dataset.load(i_celeba, rng), "y": torch.tensor(dataset.labels[i_celeba]),
                "x_rafd": dataset.load(i_rafd, rng), "y_rafd": torch.tensor(dataset.labels[i_rafd])}

    def train_step(self, batch, step, ctx):
        if self.label_kind != "joint":
            return self._train_on(batch["x"], batch["y"], step, ctx)
        # Official train_multi: in each iteration, CelebA then RaFD, each a D step and (every n_critic-th) a G step.
        logs = {}
        for name, x, y in (("celeba", batch["x"], batch["y"]), ("rafd", batch["x_rafd"], batch["y_rafd"])):
            logs.update({f"{k}_{name}": v for k, v in self._train_on(x, y, step, ctx).items()})
        return logs

    def _train_on(self, x_real, y_org, step, ctx):
        G, D = self.nets["generator"], self.nets["discriminator"]
        y_trg = y_org[torch.randperm(x_real.shape[0], device=x_real.device)]
        c_org, c_trg = self.label_vectors(y_org), self.label_vectors(y_trg)
        l = self.losses
        logs: dict[str, torch.Tensor] = {}

        # Critic update (every step). On a generator iteration the generator step needs G(x_real, c_trg) again, with
        # its graph and from the same weights (the critic step changes only D): the official solver computes it
        # twice, we keep this one's graph and reuse it when a second forward would give the same result.
        generator_turn = (step + 1) % self.optim.n_critic == 0
        reuse = generator_turn and forward_repeats_exactly(G)
        with contextlib.nullcontext() if reuse else frozen(G):
            with ctx.autocast():
                x_fake_graph = G(x_real, c_trg)
                x_fake = x_fake_graph.detach()
                if per_image(D):
                    # Real and fake in one call: the critic has no batch statistics, so the scores are those of
                    # two calls, with fewer and larger kernels.
                    both, logits = D(torch.cat([x_real, x_fake]))
                    scores, fake_scores = both.split([len(x_real), len(x_fake)])
                    logits = logits[: len(x_real)]
                else:
                    (scores, logits), fake_scores = D(x_real), D(x_fake)[0]
                d_real = wgan(scores, True)
                d_cls = self.classification_loss(logits, y_org)
                d_fake = wgan(fake_scores, False)
            d_loss = d_real + d_fake + l.cls * d_cls
            regularize = step % l.gp_every == 0  # lazy: every gp_every-th critic step, weighted that many times
            if regularize:
                d_gp = gradient_penalty(D, x_real, x_fake.float())  # fp32: a penalty on gradients needs the precision
                d_loss = d_loss + l.gp * l.gp_every * d_gp
            ctx.optimize(d_loss, "discriminator")
        logs.update({"D/real": d_real.detach(), "D/fake": d_fake.detach(), "D/cls": d_cls.detach()})
        if regularize:
            logs["D/gp"] = d_gp.detach()

        # Generator update (every n_critic-th step).
        if generator_turn:
            with frozen(D), ctx.autocast():
                x_fake = x_fake_graph if reuse else G(x_real, c_trg)
                scores, logits = D(x_fake)
                g_adv = wgan(scores, True)
                g_cls = self.classification_loss(logits, y_trg)
                g_rec = (G(x_fake, c_org).float() - x_real.float()).abs().mean()
            ctx.optimize(g_adv + l.cls * g_cls + l.rec * g_rec, "generator")
            logs.update({"G/adv": g_adv.detach(), "G/cls": g_cls.detach(), "G/rec": g_rec.detach()})
        return logs

    # ------------------------------------------------------------------ inference

    @torch.no_grad()
    def source_attributes(self, images: torch.Tensor, given: torch.Tensor | None = None) -> torch.Tensor:
        """The sources' attribute vectors: ``given``, else what D's classifier head predicts (logit > 0).

        Joint models: the CelebA part; ``given`` may be joint labels, whose RaFD rows (no CelebA
        attributes known) take D's prediction.
        """
        n = self.num_attributes
        if given is not None:
            given = given.to(images.device).float()
            if self.label_kind != "joint" or given.shape[1] == n:
                return given
            known = given[:, -2:-1] > 0.5  # the CelebA mask bit
            if bool(known.all()) or "discriminator" not in self.nets:
                return given[:, :n]
            return torch.where(known, given[:, :n], self.source_attributes(images))
        if "discriminator" not in self.nets:
            raise GanzooError(
                "This model folder has no discriminator to read the source attributes from; "
                "give every attribute with --attrs (e.g. --attrs Black_Hair=0,Blond_Hair=1,...)."
            )
        if images.shape[-2:] != (self.image_size, self.image_size):  # D's last conv spans exactly image_size
            images = F.interpolate(images, size=(self.image_size,) * 2, mode="bilinear", align_corners=False, antialias=True)
        return (self.nets["discriminator"](images)[1][:, :n] > 0).float()

    @torch.no_grad()
    def attribute_target(self, images: torch.Tensor, assignments, source_labels: torch.Tensor | None = None) -> torch.Tensor:
        """Target vectors: the source attributes with ``assignments`` (``"Blond_Hair,Male=0"`` or a dict) applied.

        Setting a hair colour clears the other hair colours unless they are assigned too.
        When every attribute is assigned, the sources' attributes are not needed.
        Joint models edit the CelebA part and return full joint labels (CelebA mask on).
        """
        names = self.attribute_names
        assignments = parse_attribute_assignments(assignments, names)
        if source_labels is None and set(assignments) == set(names):
            source_labels = torch.zeros(images.shape[0], len(names))
        target = self.source_attributes(images, source_labels).clone()
        for name, value in assignments.items():
            if value == 1 and name in HAIR_COLOURS:
                for other in names:
                    if other in HAIR_COLOURS and other not in assignments:
                        target[:, names.index(other)] = 0
            target[:, names.index(name)] = value
        return self.joint_condition(attributes=target) if self.label_kind == "joint" else target

    def official_attribute_target(self, source: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The official test targets (``create_labels``): set hair colour ``index`` (others cleared) or flip it."""
        target = source.clone()
        hair = [i for i, name in enumerate(self.attribute_names) if name in HAIR_COLOURS]
        for row, d in enumerate(index.tolist()):
            if d in hair:
                target[row, hair] = 0
                target[row, d] = 1
            else:
                target[row, d] = 1 - target[row, d]
        return target

    def size_multiple(self) -> int:
        """Fully convolutional with the label tiled over the input (the :class:`~ganzoo.api.AnySizeModel` capability).
        Only reading source attributes runs D, which needs ``image_size``: :meth:`source_attributes` resizes for it."""
        return self.inference_nets()["generator"].size_multiple

    @torch.no_grad()
    def translate(self, images, target, *, reference=None, z=None, generator=None, source_labels=None):
        """Translate ``images`` (N,3,H,W in [-1,1]) to ``target``.

        ``target`` is either label vectors (N, condition_dim), used as they are, or indices (N,):
        a domain for one-hot models; for attribute models the official test edit of that
        attribute (hair colours set exclusively, others flipped) applied to
        ``source_labels`` or, without them, to the attributes D predicts. For joint
        models an index names a CelebA attribute (that edit, CelebA part active) or a
        RaFD expression (that one-hot, RaFD part active), as the official ``test_multi``.
        """
        nets = self.inference_nets()
        target = target.to(images.device)
        if target.dim() == 2:
            c = target.float()
        elif self.label_kind == "attributes":
            c = self.official_attribute_target(self.source_attributes(images, source_labels), target)
        elif self.label_kind == "joint":
            c = self.joint_target(images, target, source_labels)
        else:
            c = self.label_vectors(target)
        return nets["generator"](images, c).clamp(-1, 1)

    def joint_target(self, images: torch.Tensor, index: torch.Tensor, source_labels: torch.Tensor | None = None) -> torch.Tensor:
        """Joint labels for domain indices: CelebA edits (of the sources' attributes) or RaFD expressions."""
        n = self.num_attributes
        is_attr = index < n
        c = self.joint_condition(expressions=(index - n).clamp_min(0))
        if bool(is_attr.any()):
            source = self.source_attributes(images, source_labels)
            edited = self.joint_condition(attributes=self.official_attribute_target(source, index.clamp_max(n - 1)))
            c = torch.where(is_attr[:, None], edited, c)
        return c

    def sheet_targets(self) -> list[tuple[str, int]]:
        """One column per domain; for attributes the official test edit: a hair colour is set, others flipped."""
        targets = []
        for d, name in enumerate(self.domains):
            is_attribute = self.label_kind in ("attributes", "joint") and d < self.num_attributes
            flipped = is_attribute and name not in HAIR_COLOURS
            targets.append((f"flip {name}" if flipped else name, d))
        return targets

    @torch.no_grad()
    def translate_to(self, images, index, *, labels=None, generator=None):
        """Known attribute labels (during training) are edited; without them D reads the sources' attributes."""
        target = torch.full((images.shape[0],), index, dtype=torch.long, device=images.device)
        given = labels if self.label_kind in ("attributes", "joint") else None
        return self.translate(images, target, source_labels=given)

    # ------------------------------------------------------------------ export

    def export_graphs(self):
        """``ganzoo export``: the generator with the target label vector as an input (tiled inside the graph with
        ``expand``, so any batch and any image size that is a multiple of 4 run)."""
        from ganzoo.api import ExportGraph, TensorSpec

        generator = ClampedGenerator(self.inference_nets()["generator"])
        if self.label_kind == "attributes":
            label = f"target attribute vector over {', '.join(self.domains)} (1 = has it)"
        elif self.label_kind == "joint":
            label = (f"joint label: {self.num_attributes} CelebA attributes, then the RaFD one-hot over "
                     f"{', '.join(self.domains[self.num_attributes:])}, then the 2-entry mask vector (1, 0 = CelebA part, "
                     "0, 1 = RaFD part)")
        else:
            label = f"one-hot target domain over {', '.join(self.domains)}"
        return [ExportGraph(
            name="generator", module=generator,
            inputs=(TensorSpec("image", ("batch", 3, "height", "width"), "image", "source images"),
                    TensorSpec("label", ("batch", self.condition_dim), "label", label)),
            output=TensorSpec("translated", ("batch", 3, "height", "width"), "image", "translated images"),
            description="G(image, label): the source images translated to the target label vector",
            spatial="dynamic", multiple_of=4, min_size=8,
            reference=lambda image, label: self.translate(image, label),
        )]


class ClampedGenerator(torch.nn.Module):
    """G(x, c) clamped to [-1, 1], as :meth:`StarGAN.translate` returns it."""

    def __init__(self, generator: torch.nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, image: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.generator(image, label).clamp(-1, 1)
