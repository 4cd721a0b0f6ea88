"""StarGAN v1's training algorithm, following the paper and the official solver.

One step = one official iteration: a critic (D) update on every step, a
generator update on every ``n_critic``-th step. Losses (paper eq. 1-7):

  D: -E[D_src(x)] + E[D_src(G(x, c'))] + λ_gp·GP + λ_cls·L_cls(D_cls(x), c)
  G: -E[D_src(G(x, c'))] + λ_cls·L_cls(D_cls(G(x, c')), c') + λ_rec·|x - G(G(x, c'), c)|₁

with c the image's own label and c' the batch's labels in random order
(the official ``label_org[randperm(N)]``). L_cls is softmax cross-entropy for
one-hot domains and a multi-label binary cross-entropy, summed over attributes
and averaged over the batch, for attribute sets (CelebA).

Labels come in two kinds, told by the dataset class's ``label_kind``:
``"one-hot"`` (an int domain per image: shapes, RaFD, image folders) and
``"attributes"`` (a 0/1 vector per image: CelebA). The generator always sees
a float label vector.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field

from ganzoo.errors import GanzooError, did_you_mean
from ganzoo.model import GANModel
from ganzoo.recipe import OptimConfig, StrictModel

from .data import HAIR_COLOURS


class StarGANLosses(StrictModel):
    """Loss weights λ_cls, λ_rec, λ_gp (official 1, 10, 10); the adversarial term has weight 1."""

    cls: float = Field(1.0, ge=0)
    rec: float = Field(10.0, ge=0)
    gp: float = Field(10.0, ge=0)


class StarGANOptim(OptimConfig):
    """Adam for G and D at ``lr`` (official 1e-4, betas 0.5/0.999); G steps once per ``n_critic`` D steps."""

    lr: float = Field(1e-4, gt=0, le=1.0)
    betas: tuple[float, float] = (0.5, 0.999)
    n_critic: int = Field(5, ge=1)


@contextlib.contextmanager
def frozen(net: torch.nn.Module):
    """Skip the parameter gradients of a network the current update does not step (same updates, less work)."""
    flags = [p.requires_grad for p in net.parameters()]
    net.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(net.parameters(), flags):
            p.requires_grad_(flag)


def gradient_penalty(critic: torch.nn.Module, x_real: torch.Tensor, x_fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(‖∇D(x̂)‖₂ - 1)²] at x̂ = αx + (1-α)x̃, one α ~ U(0,1) per image."""
    alpha = torch.rand(x_real.shape[0], 1, 1, 1, device=x_real.device)
    x_hat = (alpha * x_real + (1 - alpha) * x_fake.detach()).requires_grad_(True)
    scores, _ = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return (grad.float().flatten(1).norm(2, dim=1) - 1).pow(2).mean()


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


class StarGAN(GANModel):
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
        self.label_kind = _label_kind_of(recipe.data.name)

    @property
    def c_dim(self) -> int:
        return len(self.domains)

    def derived_kwargs(self, role: str) -> dict[str, Any]:
        values = {"c_dim": self.c_dim, "image_size": self.image_size}
        return {k: values[k] for k in self.derived_network_args[role]}

    # ------------------------------------------------------------------ labels

    def label_vectors(self, y: torch.Tensor) -> torch.Tensor:
        """The generator's condition: one-hot vectors from domain indices, or the attribute vectors as floats."""
        if self.label_kind == "attributes":
            return y.float()
        return F.one_hot(y.long(), self.c_dim).float()

    def classification_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.label_kind == "attributes":
            # Official: BCE summed over attributes, averaged over the batch.
            return F.binary_cross_entropy_with_logits(logits, y.float(), reduction="sum") / logits.shape[0]
        return F.cross_entropy(logits, y.long())

    # ------------------------------------------------------------------ training

    def train_step(self, batch, step, ctx):
        G, D = self.nets["generator"], self.nets["discriminator"]
        x_real, y_org = batch["x"], batch["y"]
        y_trg = y_org[torch.randperm(x_real.shape[0], device=x_real.device)]
        c_org, c_trg = self.label_vectors(y_org), self.label_vectors(y_trg)
        l = self.losses
        logs: dict[str, torch.Tensor] = {}

        # Critic update (every step).
        with frozen(G):
            with ctx.autocast():
                scores, logits = D(x_real)
                d_real = -scores.float().mean()
                d_cls = self.classification_loss(logits, y_org)
                x_fake = G(x_real, c_trg)
                d_fake = D(x_fake)[0].float().mean()
            d_gp = gradient_penalty(D, x_real, x_fake.float())  # fp32: a penalty on gradients needs the precision
            ctx.optimize(d_real + d_fake + l.cls * d_cls + l.gp * d_gp, "discriminator")
        logs.update({"D/real": d_real.detach(), "D/fake": d_fake.detach(), "D/cls": d_cls.detach(), "D/gp": d_gp.detach()})

        # Generator update (every n_critic-th step, with a fresh forward as in the official solver).
        if (step + 1) % self.optim.n_critic == 0:
            with frozen(D), ctx.autocast():
                x_fake = G(x_real, c_trg)
                scores, logits = D(x_fake)
                g_adv = -scores.float().mean()
                g_cls = self.classification_loss(logits, y_trg)
                g_rec = (G(x_fake, c_org).float() - x_real.float()).abs().mean()
            ctx.optimize(g_adv + l.cls * g_cls + l.rec * g_rec, "generator")
            logs.update({"G/adv": g_adv.detach(), "G/cls": g_cls.detach(), "G/rec": g_rec.detach()})
        return logs

    # ------------------------------------------------------------------ inference

    @torch.no_grad()
    def source_attributes(self, images: torch.Tensor, given: torch.Tensor | None = None) -> torch.Tensor:
        """The sources' attribute vectors: ``given``, else what D's classifier head predicts (logit > 0)."""
        if given is not None:
            return given.to(images.device).float()
        if "discriminator" not in self.nets:
            raise GanzooError(
                "This model folder has no discriminator to read the source attributes from; "
                "give every attribute with --attrs (e.g. --attrs Black_Hair=0,Blond_Hair=1,...)."
            )
        return (self.nets["discriminator"](images)[1] > 0).float()

    @torch.no_grad()
    def attribute_target(self, images: torch.Tensor, assignments, source_labels: torch.Tensor | None = None) -> torch.Tensor:
        """Target vectors: the source attributes with ``assignments`` (``"Blond_Hair,Male=0"`` or a dict) applied.

        Setting a hair colour clears the other hair colours unless they are assigned too.
        When every attribute is assigned, the sources' attributes are not needed.
        """
        assignments = parse_attribute_assignments(assignments, self.domains)
        if source_labels is None and set(assignments) == set(self.domains):
            source_labels = torch.zeros(images.shape[0], self.c_dim)
        target = self.source_attributes(images, source_labels).clone()
        for name, value in assignments.items():
            if value == 1 and name in HAIR_COLOURS:
                for other in self.domains:
                    if other in HAIR_COLOURS and other not in assignments:
                        target[:, self.domains.index(other)] = 0
            target[:, self.domains.index(name)] = value
        return target

    def official_attribute_target(self, source: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The official test targets (``create_labels``): set hair colour ``index`` (others cleared) or flip it."""
        target = source.clone()
        hair = [i for i, name in enumerate(self.domains) if name in HAIR_COLOURS]
        for row, d in enumerate(index.tolist()):
            if d in hair:
                target[row, hair] = 0
                target[row, d] = 1
            else:
                target[row, d] = 1 - target[row, d]
        return target

    @torch.no_grad()
    def translate(self, images, target, *, reference=None, z=None, generator=None, source_labels=None):
        """Translate ``images`` (N,3,H,W in [-1,1]) to ``target``.

        ``target`` is either label vectors (N, c_dim), used as they are, or indices (N,):
        a domain for one-hot models; for attribute models the official test edit of that
        attribute (hair colours set exclusively, others flipped) applied to
        ``source_labels`` or, without them, to the attributes D predicts.
        """
        nets = self.inference_nets()
        target = target.to(images.device)
        if target.dim() == 2:
            c = target.float()
        elif self.label_kind == "attributes":
            c = self.official_attribute_target(self.source_attributes(images, source_labels), target)
        else:
            c = self.label_vectors(target)
        return nets["generator"](images, c).clamp(-1, 1)

    @torch.no_grad()
    def sample_grid(self, images: torch.Tensor, labels: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
        """Rows: sources; columns: the source, then one translation per domain (or per attribute edit)."""
        from ganzoo.sampling import label_grid, make_grid

        images = images.to(self.device)
        given = labels.to(self.device) if self.label_kind == "attributes" else None
        columns = [images]
        for d in range(self.c_dim):
            index = torch.full((images.shape[0],), d, dtype=torch.long, device=self.device)
            columns.append(self.translate(images, index, source_labels=given))
        grid = make_grid([[col[i] for col in columns] for i in range(images.shape[0])])
        return label_grid(grid, self.domains, cell=images.shape[-1], first_column_label="input")


def _label_kind_of(dataset_name: str) -> str:
    """What the dataset's labels are ("one-hot" unless its class says otherwise)."""
    from ganzoo.plugins import get_registry

    try:
        dataset_cls = get_registry().get("datasets", dataset_name)
    except Exception:
        return "one-hot"
    return getattr(dataset_cls, "label_kind", "one-hot")
