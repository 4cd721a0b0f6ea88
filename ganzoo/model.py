"""The seam between the trainer and a model family.

A *model* is a training algorithm: it builds its networks, owns its losses
and train step, and knows how to translate and draw sample grids. The trainer
owns everything else (device, precision, EMA, schedules, checkpoints, logs).
Plugins subclass :class:`GANModel` and register the class under ``models``.

Inference has one entry point, :meth:`GANModel.translate` (images and target
indices or label vectors, plus a reference image or latent code where the
family has styles); :meth:`GANModel.translate_to` (sample sheets, ``bench``) and
:meth:`GANModel.generate` (``eval``, ``compare``) are built on it. Optional
capabilities the core asks about are the protocols :class:`StyleModel`,
:class:`AttributeModel`, :class:`AnySizeModel` and :class:`ExportableModel` below: ``isinstance(model, StyleModel)``, never a
``hasattr`` probe.
"""

from __future__ import annotations

import contextlib
import copy
import random
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from pydantic import BaseModel
from torch import nn

from ganzoo.recipe import OptimConfig, Recipe, StrictModel, validate_kwargs, validate_section
from ganzoo.errors import RecipeError

#: Parameters plus buffers one network may have (4 GiB in fp32, over 30 times the largest official network):
#: more means a mistyped width, or a config.json made to exhaust memory.
MAX_NETWORK_VALUES = 2**30
#: All networks of one model together, EMA copies included (8 GiB in fp32).
MAX_MODEL_VALUES = 2**31
#: One activation of one image on the inference path (4 GiB in fp32; the official 256 px networks peak near 2^22):
#: more means an image size and widths that would exhaust memory at the first translation.
MAX_ACTIVATION_VALUES = 2**30

#: what a family declares about itself as class arguments of its :class:`GANModel` subclass
FAMILY_FIELDS = ("paper", "citation", "license", "pairwise", "paired", "recipes", "tiny")


class GANModel:
    """Base class for a model family's training algorithm.

    Subclasses set the class attributes and implement :meth:`train_step`,
    :meth:`translate` and (optionally) :meth:`sheet_targets` / :meth:`translate_to`.
    """

    #: role -> default registry name of the network class (generators or discriminators table)
    network_roles: ClassVar[dict[str, str]] = {}
    #: roles that get an exponential moving average copy (used for inference when present)
    ema_roles: ClassVar[tuple[str, ...]] = ()
    # ``frozen_nets`` (built by :meth:`build_frozen`): networks the model owns but never trains, e.g. a pretrained
    # network that computes inputs for the generator. They get no optimiser and no EMA copy, stay in eval mode,
    # are not wrapped for DDP, and are saved in the model folder as ``<role>.safetensors`` (config.json "frozen").
    #: per role, the network kwargs the model derives (from the data or another network); users do not set them
    derived_network_args: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: schema of the ``losses:`` section
    LossConfig: ClassVar[type[BaseModel]] = StrictModel
    #: schema of the ``optim:`` section
    OptimConfig: ClassVar[type[BaseModel]] = OptimConfig
    #: "one-hot" (one domain per image), "attributes" (multi-label) or "joint" (StarGAN v1 on two datasets with
    #: the mask vector); informs the CLI (--target / --attrs) and metrics
    label_kind: ClassVar[str] = "one-hot"
    #: the sheets ``ganzoo sample`` draws for this family (see :mod:`ganzoo.sheets`); the first still
    #: one is also the trainer's periodic sample
    sample_sheets: ClassVar[tuple[str, ...]] = ("target_grid",)

    #: how ``ganzoo eval`` draws translations: mode -> whether repeated draws differ (then it takes
    #: several outputs per input and measures their diversity); see :meth:`generate`
    eval_modes: ClassVar[dict[str, bool]] = {"fixed": False}

    # What the core knows about the family comes from here, set as class arguments
    # (``class MyGAN(GANModel, paper=..., citation=..., recipes={...})``), never from its name.
    #: the paper, as "Authors, Title, Venue Year" (model cards, ``ganzoo info``)
    paper: ClassVar[str | None] = None
    #: BibTeX entry for model cards
    citation: ClassVar[str | None] = None
    #: licence id of the family's code, for model cards of weights that name none
    license: ClassVar[str] = "unknown"
    #: one model translates between exactly two domains, so k domains take k(k-1)/2 models (``ganzoo compare``
    #: trains one per pair and counts their generators)
    pairwise: ClassVar[bool] = False
    #: learns from aligned (input, output) pairs, which a folder of domains does not have (compare needs --models)
    paired: ClassVar[bool] = False
    #: recipe names (see ``ganzoo list recipes``): "small" trains on CPU in minutes (``ganzoo compare`` starts from
    #: it; ``ganzoo bench`` takes its data section as the synthetic stand-in), "official" has the paper's widths
    #: (what ``ganzoo bench MODEL`` measures)
    recipes: ClassVar[dict[str, str]] = {}
    #: ``--set``-style overrides that shrink the "small" recipe to a test's size (tiny widths and images, few
    #: examples): the registry-generated contract tests train every model from it
    tiny: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **card: Any) -> None:
        unknown = sorted(set(card) - set(FAMILY_FIELDS))
        if unknown:
            raise TypeError(f"{cls.__name__}: unknown family declaration {unknown[0]!r}; known: {', '.join(FAMILY_FIELDS)}.")
        for key, value in card.items():
            setattr(cls, key, value)
        super().__init_subclass__()

    # ------------------------------------------------------------------ recipe

    @classmethod
    def default_recipe(cls) -> dict[str, Any]:
        """Defaults merged under every recipe naming this model (the paper's hyperparameters)."""
        return {}

    @classmethod
    def validate_recipe(cls, recipe: Recipe, *, check_data: bool = True) -> None:
        """Check the sections this model owns; raise RecipeError naming the dotted key."""
        from ganzoo.plugins import get_registry

        source = recipe.source
        registry = get_registry()
        for role, spec in recipe.networks.items():
            if role not in cls.network_roles:
                from ganzoo.errors import did_you_mean

                raise RecipeError(
                    f'{source}: networks.{role}: unknown network role for model "{recipe.model}".'
                    f"{did_you_mean(role, cls.network_roles)} Roles: {', '.join(cls.network_roles)}."
                )
            kwargs = dict(spec)
            name = kwargs.pop("name", cls.network_roles[role])
            net_cls = _network_class(registry, name, f"{source}: networks.{role}.name")
            validate_kwargs(net_cls, kwargs, f"networks.{role}", source, skip=cls.derived_network_args.get(role, ()))
        # Store the full sections (defaults filled in) so `config show` and config.json say everything.
        recipe.losses = validate_section(cls.LossConfig, recipe.losses, "losses", source).model_dump(mode="json")
        recipe.optim = validate_section(cls.OptimConfig, recipe.optim, "optim", source).model_dump(mode="json")
        if not check_data:
            return
        try:
            dataset_cls = registry.get("datasets", recipe.data.name)
        except Exception as exc:
            raise RecipeError(f"{source}: data.name: {exc}") from None
        validate_kwargs(dataset_cls, data_kwargs(recipe), "data", source, skip=("split",))

    # ------------------------------------------------------------------ construction

    def __init__(self, recipe: Recipe, domains: list[str]):
        self.recipe = recipe
        self.domains = list(domains)
        self.losses = self.LossConfig.model_validate(recipe.losses)
        self.optim = self.OptimConfig.model_validate(recipe.optim)
        self.nets: dict[str, nn.Module] = {}
        self.ema_nets: dict[str, nn.Module] = {}
        self.frozen_nets: dict[str, nn.Module] = {}
        self.network_specs: dict[str, dict[str, Any]] = {}

    @property
    def name(self) -> str:
        return self.recipe.model

    @property
    def image_size(self) -> int:
        return self.recipe.data.image_size

    def derived_kwargs(self, role: str) -> dict[str, Any]:
        """Values for :attr:`derived_network_args` (e.g. image size, number of domains)."""
        return {}

    def network_spec(self, role: str) -> dict[str, Any]:
        """Registry name and full constructor kwargs of ``role`` (what config.json records)."""
        kwargs = dict(self.recipe.networks.get(role, {}))
        name = kwargs.pop("name", self.network_roles[role])
        kwargs.update(self.derived_kwargs(role))
        return {"name": name, "kwargs": kwargs}

    def build(self, specs: dict[str, dict[str, Any]] | None = None, *, init: bool = True, registry=None) -> None:
        """Create ``self.nets`` (and EMA copies) from the recipe, or from saved ``specs``; ``registry`` is the one
        the caller already resolved (the process's when None)."""
        if registry is None:
            from ganzoo.plugins import get_registry

            registry = get_registry()
        self.network_specs = specs or {role: self.network_spec(role) for role in self.network_roles}
        self.nets = {}
        classes = {role: _network_class(registry, spec["name"], f"networks.{role}.name")
                   for role, spec in self.network_specs.items()}
        sizes = {role: _check_network_size(classes[role], spec, role, self.recipe.source)
                 for role, spec in self.network_specs.items()}
        # All networks together, EMA copies counted again: many networks each under the limit still add up.
        total = sum(sizes.values()) + sum(sizes.get(role, 0) for role in self.ema_roles)
        if total > MAX_MODEL_VALUES:
            from ganzoo.errors import name_list

            raise RecipeError(
                f"{self.recipe.source}: the {len(sizes)} networks would hold {total:,} values together (EMA copies "
                f"included: {name_list(f'{r} {n:,}' for r, n in sizes.items())}), more than the {MAX_MODEL_VALUES:,} "
                "one model may have; check their widths and data.image_size.")
        for role, spec in self.network_specs.items():
            net_cls = classes[role]
            try:
                self.nets[role] = net_cls(**spec["kwargs"])
            except (ValueError, TypeError, RuntimeError) as exc:
                # e.g. a depth that the image size cannot support, a negative width: name the network and its arguments.
                raise RecipeError(
                    f"{self.recipe.source}: networks.{role}: {spec['name']} cannot be built with {spec['kwargs']} ({exc}); "
                    "change its arguments or data.image_size."
                ) from None
        self.frozen_nets = self.build_frozen()
        for net in self.frozen_nets.values():
            net.requires_grad_(False)
            net.eval()
        if init:
            self.init_weights()
        self.ema_nets = {role: self.make_ema(role) for role in self.ema_roles if role in self.nets}

    def build_frozen(self) -> dict[str, nn.Module]:
        """The frozen networks this configuration needs (see ``frozen_nets``), with any weights; default none.

        Called by :meth:`build` before :meth:`init_weights`; a model folder's saved weights replace these on load,
        so :meth:`init_weights` (fresh training only) is where a model fills them from its recipe.
        """
        return {}

    def init_weights(self) -> None:
        """Apply the official initialisation to ``self.nets`` (default: PyTorch's own)."""

    def make_ema(self, role: str) -> nn.Module:
        ema = copy.deepcopy(self.nets[role])
        ema.requires_grad_(False)
        return ema

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One Adam per network, ``optim.lr`` / ``betas`` / ``weight_decay``."""
        o = self.optim
        return {role: adam(net.parameters(), lr=self.learning_rate(role), betas=tuple(o.betas), weight_decay=o.weight_decay)
                for role, net in self.nets.items()}

    def learning_rate(self, role: str) -> float:
        return self.optim.lr

    def to(self, device: torch.device | str) -> "GANModel":
        for group in (self.nets, self.ema_nets, self.frozen_nets):
            for net in group.values():
                net.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(iter(self.nets.values())).parameters().__next__().device

    def inference_nets(self) -> dict[str, nn.Module]:
        """The networks to sample with: EMA copies where present."""
        return {**self.nets, **self.ema_nets}

    # ------------------------------------------------------------------ data

    def training_item(self, dataset, index: int, rng: random.Random) -> dict[str, torch.Tensor]:
        """One training example; override to add references, pairs, ... (see StarGAN v2)."""
        return {"x": dataset.load(index, rng), "y": torch.tensor(dataset.labels[index])}

    def training_state(self) -> dict[str, torch.Tensor]:
        """Tensors the train step keeps between iterations besides weights and optimisers (e.g. CycleGAN's
        pools of past fakes); saved with every checkpoint so a resumed run continues exactly."""
        return {}

    def load_training_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Take back what :meth:`training_state` returned (on resume; tensors are on the CPU)."""

    # ------------------------------------------------------------------ training and inference

    def train_step(self, batch: dict[str, torch.Tensor], step: int, ctx) -> dict[str, torch.Tensor]:
        """One iteration: update the networks through ``ctx.optimize`` and return losses to log."""
        raise NotImplementedError

    @torch.no_grad()
    def translate(self, images: torch.Tensor, target: torch.Tensor, *, reference=None, z=None, generator=None) -> torch.Tensor:
        """Translate ``images`` (N,3,H,W in [-1,1]) into domain indices ``target`` (N,)."""
        raise NotImplementedError

    def sheet_targets(self) -> list[tuple[str, int]]:
        """The target grid's columns: (label, target index) for every domain this model translates into."""
        return [(name, d) for d, name in enumerate(self.domains)]

    @torch.no_grad()
    def translate_to(self, images: torch.Tensor, index: int, *, labels=None, generator=None) -> torch.Tensor:
        """All ``images`` into target ``index`` of :meth:`sheet_targets`; ``labels`` are the sources' own, if known."""
        target = torch.full((images.shape[0],), index, dtype=torch.long, device=images.device)
        return self.translate(images, target, generator=generator)

    @torch.no_grad()
    def generate(self, images: torch.Tensor, index: int, mode: str, *, references=None, generator=None) -> torch.Tensor:
        """Evaluation's draw: ``images`` into target ``index`` of :meth:`sheet_targets` in ``mode`` (one of
        :attr:`eval_modes`); ``references`` are images of the target domain, ``generator`` seeds any noise."""
        return self.translate_to(images, index, generator=generator)

    @torch.no_grad()
    def sample_grid(self, images: torch.Tensor, labels: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
        """The target grid (see :mod:`ganzoo.sheets`) as a (3,H,W) image in [-1,1], rows unlabelled."""
        from ganzoo.sheets import SheetInputs, target_grid

        inputs = SheetInputs(images, [""] * images.shape[0], source_labels=labels, seed=seed)
        return target_grid(self, inputs).to_tensor()

    # ------------------------------------------------------------------ sharing

    def save_pretrained(self, folder) -> Path:
        """Write this model as a model folder (weights + config.json, no training state)."""
        from ganzoo.checkpoint import write_model_folder

        return write_model_folder(self, folder, step=int(getattr(self, "step", 0)))

    def push_to_hub(self, repo_id: str, *, private: bool = False, revision: str | None = None,
                    commit_message: str | None = None, license: str | None = None) -> str:
        """Upload this model to the Hub with a model card (see ``ganzoo push``); returns the commit URL."""
        import tempfile

        from ganzoo.hub import push

        with tempfile.TemporaryDirectory(prefix="ganzoo-model-") as tmp:
            folder = self.save_pretrained(Path(tmp) / "model")
            return push(folder, repo_id, private=private, revision=revision, commit_message=commit_message, license=license)


# --------------------------------------------------------------------------- optional capabilities


@runtime_checkable
class StyleModel(Protocol):
    """A model that translates through style codes (StarGAN v2). The reference and latent sample sheets and
    ``ganzoo translate --reference`` need it; such a model also has ``latent_dim`` (the length of a latent code)."""

    def style_codes(self, target: torch.Tensor, *, reference: torch.Tensor | None = None, z: torch.Tensor | None = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """Style codes for domains ``target`` (N,): of ``reference`` images, else of latent codes ``z`` (random if None)."""

    def translate_with_style(self, images: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        """``images`` rendered in ``styles`` (N, style_dim)."""


#: ``label_kind`` values whose models take attribute edits (``translate --attrs``, the demo's attribute toggles):
#: attribute sets, and joint models (e.g. StarGAN's CelebA + RaFD with a mask vector)
ATTRIBUTE_KINDS = ("attributes", "joint")


@runtime_checkable
class AttributeModel(Protocol):
    """A model whose targets are attribute vectors edited from the sources' own (StarGAN v1 on CelebA): with a
    ``label_kind`` of "attributes" or "joint", ``ganzoo translate --attrs`` needs it, and ``ganzoo demo`` shows one
    toggle per attribute: the model's ``attribute_names`` (the names ``attribute_target`` may assign; its
    ``domains`` when it has no such attribute; not a protocol member, as ``issubclass`` checks on protocols take
    methods only)."""

    def attribute_target(self, images: torch.Tensor, assignments, source_labels: torch.Tensor | None = None) -> torch.Tensor:
        """Target label vectors: the sources' attributes with ``assignments`` (``"Blond_Hair,Male=0"`` or a dict) applied."""


@runtime_checkable
class AnySizeModel(Protocol):
    """A fully convolutional model: :meth:`GANModel.translate` takes images of any height and width that are
    multiples of :meth:`size_multiple`, not only the training size. ``ganzoo translate --keep-size`` and ``--tile``
    (see :mod:`ganzoo.tiling`) translate such a model's inputs at their own size (padded to that multiple and
    cropped back); other models get their inputs resized to ``image_size``."""

    def size_multiple(self) -> int:
        """The stride multiple the inference networks need: height and width are padded up to a multiple of it."""


@runtime_checkable
class ExportableModel(Protocol):
    """A model whose inference path ``ganzoo export`` can write as ONNX, TorchScript or an exported program."""

    def export_graphs(self) -> list:
        """The graphs of the inference path, each a :class:`ganzoo.export.ExportGraph`: plain modules whose inputs
        are tensors (target domains, labels, styles, noise as real inputs, nothing baked in), on CPU."""


def dataset_label_kind(name: str) -> str:
    """The ``label_kind`` of the dataset registered as ``name`` ("one-hot" unless its class says otherwise, or when
    no such dataset is registered): a model whose labels depend on its data reads it in ``__init__``."""
    from ganzoo.plugins import get_registry

    try:
        dataset_cls = get_registry().get("datasets", name)
    except Exception:  # noqa: BLE001 - an unknown dataset is reported where the data is built
        return "one-hot"
    return getattr(dataset_cls, "label_kind", "one-hot")


@contextlib.contextmanager
def frozen(*nets: nn.Module):
    """Skip parameter gradients of networks that the current update does not step.

    Gradients still flow *through* them to the inputs. The official solvers either freeze such
    networks (CycleGAN's ``set_requires_grad``) or compute those gradients and discard them
    (StarGAN); either way the updates are the same, and skipping them is less work.
    """
    flags = [[p.requires_grad for p in n.parameters()] for n in nets]
    for n in nets:
        n.requires_grad_(False)
    try:
        yield
    finally:
        for n, saved in zip(nets, flags):
            for p, flag in zip(n.parameters(), saved):
                p.requires_grad_(flag)


def per_image(net: nn.Module) -> bool:
    """True when ``net``'s output for one image does not depend on the rest of its batch (instance norm without
    running statistics, or no norm; no dropout): two calls can then share one batch and give the same outputs."""
    for m in net.modules():
        if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.Dropout)):
            return False
        if isinstance(m, nn.modules.instancenorm._InstanceNorm) and m.track_running_stats:
            return False
    return True


def _check_network_size(net_cls, spec: dict[str, Any], role: str, source: str) -> int:
    """Refuse a network whose arguments would allocate absurd amounts of memory, before allocating any.

    The network is first built on PyTorch's "meta" device, which records shapes and stores nothing.
    """
    import itertools

    try:
        with torch.device("meta"):
            shadow = net_cls(**spec["kwargs"])
    except Exception:  # noqa: BLE001 - bad arguments fail again, with their message, in the real build
        return 0
    values = sum(t.numel() for t in itertools.chain(shadow.parameters(), shadow.buffers()))
    if values > MAX_NETWORK_VALUES:
        raise RecipeError(
            f"{source}: networks.{role}: {spec['name']} with {spec['kwargs']} would hold {values:,} values, more than the "
            f"{MAX_NETWORK_VALUES:,} one network may have; check its widths and data.image_size."
        )
    return values


def largest_activation(model_cls, recipe, domains: list[str], specs: dict[str, dict[str, Any]]) -> tuple[int, str]:
    """The largest activation (values per image) on the inference path at the model's image size, and the graph it
    is in, found by running the family's declared export graphs on PyTorch's "meta" device (shapes only, nothing
    allocated). (0, "") when no activation can come near :data:`MAX_ACTIVATION_VALUES`, when the family declares no
    graphs, or when they do not run on meta: the real build still bounds the weights."""
    found = [0, ""]

    def record(graph_name):
        def hook(module, inputs, output):
            for out in output if isinstance(output, (tuple, list)) else (output,):
                if isinstance(out, torch.Tensor) and out.dim() > 0 and out.shape[0] > 0:
                    per_image = out.numel() // out.shape[0]
                    if per_image > found[0]:
                        found[:] = [per_image, graph_name]
        return hook

    try:
        with torch.device("meta"):
            shadow = model_cls(recipe, list(domains))
            shadow.build(specs, init=False)
        if not isinstance(shadow, ExportableModel):
            return 0, ""
        graphs = shadow.export_graphs()
    except Exception:  # noqa: BLE001 - a model that cannot be shadowed is checked by its real build alone
        return 0, ""
    size = recipe.data.image_size
    # The meta forward costs seconds the first time in a process (PyTorch imports its compiler for meta kernels), so
    # it runs only where it could find something: an image with the widest layer's channels at twice the image size.
    widest = max((getattr(m, attr, 0) for graph in graphs for m in graph.module.modules()
                  for attr in ("out_channels", "num_features", "out_features")), default=0)
    if not isinstance(widest, int) or 4 * size * size * widest <= MAX_ACTIVATION_VALUES:
        return 0, ""
    dims = {"batch": 1, "height": size, "width": size}
    for graph in graphs:
        module = graph.module.eval()
        handles = [m.register_forward_hook(record(graph.name)) for m in module.modules()]
        inputs = [torch.zeros(tuple(dims.get(d, 1) if isinstance(d, str) else d for d in spec.shape), dtype=spec.dtype,
                              device="meta") for spec in graph.inputs]
        try:
            with torch.no_grad():
                module(*inputs)
        except Exception:  # noqa: BLE001 - as above: what ran before the failure still counts
            pass
        finally:
            for handle in handles:
                handle.remove()
    return found[0], found[1]


def _network_class(registry, name: str, where: str):
    if not isinstance(name, str):
        raise RecipeError(f"{where}: a network is named by a registry name (a string), not {name!r}; see `ganzoo list generators`.")
    for kind in ("generators", "discriminators"):
        try:
            return registry.get(kind, name)
        except Exception:
            continue
    known = registry.names("generators") + registry.names("discriminators")
    from ganzoo.errors import did_you_mean

    raise RecipeError(f'{where}: unknown network "{name}".{did_you_mean(name, known)} See `ganzoo list generators`.')


def differentiable_twice():
    """Forward passes inside this block run uncompiled even where the networks are compiled (``train.compile``).

    A gradient penalty (R1, WGAN-GP) differentiates the discriminator's graph twice, and graphs made by
    torch.compile have no double backward. Only those forwards run eagerly; the others stay compiled.
    """
    return torch.compiler.set_stance("force_eager")


def input_gradient(output: torch.Tensor, inputs: torch.Tensor, scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
    """d(sum of ``output``)/d``inputs`` in fp32, with a graph: the gradient inside a gradient penalty (R1, WGAN-GP).

    With fp16's grad scaler the sum is multiplied by the scale before differentiating and the gradient divided
    by it afterwards, so small gradients do not underflow in half precision (an overflow gives inf, the loss
    becomes inf and the scaler skips that step as for any other overflow). The scale is used as a tensor:
    no host sync.
    """
    total = output.float().sum()
    if scaler is None or not scaler.is_enabled():
        (grad,) = torch.autograd.grad(total, inputs, create_graph=True)
        return grad.float()
    scale = scaler.scale(torch.ones((), device=total.device))
    (grad,) = torch.autograd.grad(total * scale, inputs, create_graph=True)
    return grad.float() / scale


def adam(params, *, lr: float, betas: tuple[float, float], weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam with PyTorch's fused kernel where it has one for the parameters (floating point on CPU or CUDA).

    Same update as the per-tensor loop, in one kernel per step: on this project's 2-core CPU, 0.057 s instead of
    0.26 s per step for parameters shaped like StarGAN v1's (53 M); on GPUs it avoids a launch per tensor.
    """
    params = list(params)
    fused = bool(params) and all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params)
    return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=True if fused else None)


def data_kwargs(recipe: Recipe) -> dict[str, Any]:
    """The ``data:`` keys that go to the dataset constructor."""
    data = recipe.data.model_dump()
    for key in ("name", "batch_size", "num_workers", "download_hint"):
        data.pop(key, None)
    # Unset common keys (root, domains) are left to the dataset's own defaults.
    return {k: v for k, v in data.items() if v is not None or k in (recipe.data.model_extra or {})}
