"""Recipes: one YAML file per (model, dataset) pair, validated before anything runs.

Resolution order (later wins): the model's defaults, the ``base:`` chain,
the file itself, then ``--set dotted.key=value`` overrides. The result is a
:class:`Recipe` whose sections are typed; the model plugin validates the
sections that belong to it (network kwargs, loss weights, optimiser extras)
through :func:`validate_kwargs` and :func:`validate_section`.
"""

from __future__ import annotations

import copy
import inspect
import math
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, create_model, model_validator

from ganzoo.errors import RecipeError, did_you_mean

SECTIONS = ("base", "model", "networks", "losses", "data", "optim", "train", "eval")
# The image sizes a recipe (and a model folder's config.json) may name.
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 4096
#: Seeds are what ``torch.manual_seed`` takes: -2^63 to 2^64-1 (run, translate, sample, eval).
MIN_SEED, MAX_SEED = -(2**63), 2**64 - 1
#: Bounds on a recipe document (each file of a ``base:`` chain, each ``--set`` value): nesting depth, values
#: after YAML aliases are expanded, and file size. Real recipes nest 4 deep and hold a few hundred values.
MAX_DEPTH, MAX_NODES, MAX_RECIPE_BYTES = 32, 100_000, 1_000_000


def check_seed(seed: int, where: str = "--seed") -> int:
    """``seed`` if torch can take it, else a RecipeError naming ``where``."""
    if not MIN_SEED <= seed <= MAX_SEED:
        raise RecipeError(f"{where} {seed} is out of range; a seed is a whole number from -2^63 to 2^64-1 (what "
                          "torch.manual_seed takes).")
    return seed


class StrictModel(BaseModel):
    """A schema section: unknown keys are errors, types are not coerced loosely."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(BaseModel):
    """``data:`` — which dataset and how to batch it.

    Keys other than the common ones below are passed to the dataset's
    constructor and checked against its signature.
    """

    model_config = ConfigDict(extra="allow")

    name: str = "shapes"
    root: str | None = None
    image_size: int = Field(256, ge=MIN_IMAGE_SIZE, le=MAX_IMAGE_SIZE)
    domains: list[str] | None = None
    batch_size: int = Field(8, ge=1, le=65536)
    num_workers: int = Field(0, ge=0, le=256)
    download_hint: str | None = Field(None, description="where to get the data; shown when the data folder is missing")
    hub: str | None = Field(None, description="Hub dataset repo (org/name[@revision]) loaded with `datasets`, instead of root")

    @model_validator(mode="after")
    def _hub_means_hub_dataset(self):
        # `data.hub: org/name` alone is enough: it picks the Hub dataset unless a name is given.
        if self.hub is not None and "name" not in self.model_fields_set:
            self.name = "hub"
        return self


class OptimConfig(StrictModel):
    """``optim:`` — Adam settings shared by every network unless a model adds its own keys."""

    lr: float = Field(1e-4, gt=0, le=1.0)
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = Field(0.0, ge=0)
    schedule: Literal["constant", "linear"] = "constant"
    decay_start: int = Field(0, ge=0, description="step at which linear decay to zero begins")

    @model_validator(mode="after")
    def _values_adam_takes(self):
        # An after-validator, so a family's subclass that redeclares betas or weight_decay is checked too.
        for name, value in self:
            if name.endswith("betas"):
                values = list(value) if isinstance(value, (tuple, list)) else [value]
                for i, beta in enumerate(values):
                    if not (isinstance(beta, (int, float)) and 0.0 <= beta < 1.0):
                        raise ValueError(f"{name}[{i}] is {beta!r}; Adam's betas must each be at least 0 and below 1")
            elif name.endswith("weight_decay") or name == "lr" or name.endswith("_lr"):
                if isinstance(value, float) and not math.isfinite(value):
                    raise ValueError(f"{name} is {value!r}; it must be a finite number")
        return self


class TrainConfig(StrictModel):
    """``train:`` — the trainer's settings."""

    steps: int = Field(1000, ge=1)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 autocast on CUDA GPUs with native bf16, fp32 elsewhere")
    device: str = "auto"
    seed: int = Field(0, ge=MIN_SEED, le=MAX_SEED, description="-2^63 to 2^64-1 (what torch.manual_seed takes)")
    ema: float = Field(0.999, ge=0.0, lt=1.0, description="EMA decay; 0 disables EMA")
    checkpoint_every: int = Field(1000, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    sample_every: int = Field(500, ge=0, description="0 disables sample grids")
    sample_count: int = Field(4, ge=1, le=64)
    log_every: int = Field(10, ge=1)
    compile: bool = False
    channels_last: bool = False
    threads: int | None = Field(None, ge=1, le=1024, description="CPU threads for torch (default: torch's choice)")
    frozen_weights: dict[str, str] = Field(
        {}, description="weights of the model's frozen (never trained) networks by role, e.g. {fan: wing.ckpt}: "
                        "a weights file or a model folder that holds them")
    loggers: list[str] = Field(["jsonl"], description="where rows go (`ganzoo list loggers`): jsonl (always kept), "
                                                      "tensorboard, wandb, mlflow or a plugin's; rank 0 only")


#: What ``eval.every`` measures when ``eval.metrics`` is empty: the quality metrics of ``ganzoo eval``, each n/a
#: where its weights or classifier are missing (params, flops and throughput do not change while training).
TRAIN_EVAL_METRICS = ("fid", "kid", "lpips", "domain_accuracy", "content")


class EvalConfig(StrictModel):
    """``eval:`` — metrics computed on the val split while training.

    ``every: N`` runs the ``ganzoo eval`` protocol every N steps on rank 0, on the live model's inference (EMA)
    networks, streamed (no image files), and appends ``{"step": N, "eval": {"fid/latent": ...}}`` to
    metrics.jsonl. ``best: fid`` keeps ``best/`` in the run directory: the model folder of the step with the best
    value (``best_mode`` min: lower is better, max: higher), with ``best/best.json`` naming the step and value.
    Evaluation draws from its own seeded generators and puts every RNG, buffer and mode back, so a run with it
    trains exactly the weights of a run without it.
    """

    every: int = Field(0, ge=0, description="evaluate every N steps during training; 0 disables it")
    metrics: list[str] = Field([], description="metric names (`ganzoo list metrics`); empty: "
                                               + ", ".join(TRAIN_EVAL_METRICS) + ", each n/a where it cannot run")
    best: str | None = Field(None, description="metric (fid) or value (fid/latent) that picks best/; none: no best/")
    best_mode: Literal["min", "max"] = Field("min", description="min: lower is better (fid, kid); max: higher")
    feature_net: Literal["fid_inception", "torchvision_inception"] = "fid_inception"
    fid_weights: str | None = Field(None, description="FID Inception weights file (or hf://..., or random for smoke tests)")
    lpips_weights: str | None = None
    classifier: str | None = Field(None, description="domain classifier folder (default: the one beside the data)")
    outputs_per_input: int = Field(10, ge=1, le=1000, description="outputs per val image in modes that differ per draw")
    num_val: int | None = Field(None, ge=1, description="val images per domain (default: all)")
    num_real: int | None = Field(None, ge=2, description="real images per domain FID compares with (default: all)")
    batch_size: int = Field(32, ge=1, le=65536)

    def metric_names(self) -> list[str]:
        return list(self.metrics) or list(TRAIN_EVAL_METRICS)


class Recipe(StrictModel):
    model: str
    networks: dict[str, dict[str, Any]] = {}
    losses: dict[str, Any] = {}
    data: DataConfig = DataConfig()
    optim: dict[str, Any] = {}
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()

    # Where the recipe came from (for messages); not part of the document, so not a field.
    _origin: str = PrivateAttr("recipe")

    @property
    def source(self) -> str:
        """Where this recipe came from (its file, or "recipe"): the prefix of every RecipeError about it."""
        return self._origin

    @source.setter
    def source(self, value: str) -> None:
        self._origin = str(value)

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        return {k: data[k] for k in SECTIONS if k in data}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)



# --------------------------------------------------------------------------- loading


class _TooDeep(Exception):
    def __init__(self, mark):
        super().__init__(mark)
        self.mark = mark


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing documents nested deeper than :data:`MAX_DEPTH` (it composes recursively, so
    a few thousand brackets would end in a RecursionError)."""

    def compose_node(self, parent, index):
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _parse_yaml(text: str, where: str) -> Any:
    """``text`` as YAML data, bounded (see :data:`MAX_DEPTH`, :data:`MAX_NODES`); ``where`` names it in errors."""
    loader = _BoundedLoader(text)  # a SafeLoader: plain data only
    try:
        doc = loader.get_single_data()
    except _TooDeep as exc:
        raise RecipeError(f"{where} line {exc.mark.line + 1}: nested more than {MAX_DEPTH} levels deep; "
                          "a recipe needs a few levels, so flatten it.") from None
    finally:
        loader.dispose()
    return _untangle(doc, where, _Budget())


def _path_kind(path: Path) -> str | None:
    """What ``path`` is when it is not a regular file ("a directory", "a FIFO", ...); None for a regular file."""
    import stat

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _read_yaml(path: Path, referenced_from: str | None = None) -> dict[str, Any]:
    where = f" (named by base: in {referenced_from})" if referenced_from else ""
    kind = _path_kind(path)
    if kind == "missing":
        raise RecipeError(f"Recipe file {path} does not exist{where}; check the path.")
    if kind is not None:
        # Never opened: a FIFO would block and /dev/zero never ends.
        raise RecipeError(f"Recipe file {path}{where} is {kind}, not a regular file; point at a YAML file.")
    size = path.stat().st_size
    if size > MAX_RECIPE_BYTES:
        raise RecipeError(f"Recipe file {path}{where} is {size:,} bytes, more than the {MAX_RECIPE_BYTES:,} a recipe may "
                          "have; point at a recipe, not a data file.")
    try:
        doc = _parse_yaml(path.read_text(encoding="utf-8"), str(path))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        pos = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise RecipeError(f"{path}{pos}: YAML syntax error ({_one_line(exc.problem)}); fix the file.") from None
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
        raise RecipeError(f"{path}: cannot be read as YAML ({_one_line(exc)}); fix the file.") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of sections (model, data, train, ...), not a {type(doc).__name__}.")
    return doc


def _one_line(text: Any) -> str:
    """PyYAML's messages span lines (the offending text, a caret); a user error is one line."""
    return " ".join(str(text).split())


class _Budget:
    """How many values :func:`_untangle` may still copy: YAML aliases can make a few lines stand for billions."""

    def __init__(self, nodes: int = MAX_NODES):
        self.left = nodes


def _untangle(node: Any, where: Any, budget: _Budget | None = None, parents: tuple[int, ...] = ()) -> Any:
    """A tree copy of a YAML document: every mapping and list its own object, at most :data:`MAX_DEPTH` deep and
    :data:`MAX_NODES` values in all once aliases are expanded.

    YAML anchors (``b: *a``) load as one shared object, so ``--set a.x=1`` would silently change ``b`` too;
    an alias inside its own anchor loads as a structure that contains itself, which nothing could validate.
    """
    budget = budget or _Budget()
    budget.left -= 1
    if budget.left < 0:
        raise RecipeError(f"{where}: holds more than {MAX_NODES:,} values once its YAML aliases are expanded "
                          "(an alias bomb?); write the values out, or use fewer aliases.")
    if not isinstance(node, (dict, list)):
        return node
    if id(node) in parents:
        raise RecipeError(f"{where}: a YAML alias refers to a mapping or list that contains it; expand it by hand.")
    if len(parents) >= MAX_DEPTH:
        raise RecipeError(f"{where}: nested more than {MAX_DEPTH} levels deep once its YAML aliases are expanded; "
                          "a recipe needs a few levels, so flatten it.")
    parents = (*parents, id(node))
    if isinstance(node, dict):
        return {key: _untangle(value, where, budget, parents) for key, value in node.items()}
    return [_untangle(value, where, budget, parents) for value in node]


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge mappings; ``override`` wins, lists are replaced, not appended."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _load_with_bases(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(str(p.name) for p in (*chain, path))
        raise RecipeError(f"{chain[-1]}: base: forms a cycle ({cycle}); remove one of the base: keys.")
    doc = _read_yaml(path, str(chain[-1]) if chain else None)
    base = doc.pop("base", None)
    if base is None:
        return doc
    if not isinstance(base, str):
        raise RecipeError(f"{path}: base: must be one file path (a string), not {type(base).__name__}.")
    base_path = (path.parent / base) if not Path(base).is_absolute() else Path(base)
    return deep_merge(_load_with_bases(base_path, (*chain, path)), doc)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.steps=200"`` -> (["train", "steps"], 200); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise RecipeError(f'--set "{text}" is not of the form dotted.key=value (e.g. --set train.steps=200).')
    if key.count(".") >= MAX_DEPTH:
        raise RecipeError(f"--set {_shorten(text)}: the key is more than {MAX_DEPTH} levels deep; no recipe key is.")
    try:
        value = _parse_yaml(raw, f"--set {_shorten(key)}") if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def apply_overrides(doc: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for text in overrides:
        path, value = parse_override(text)
        if path[0] not in SECTIONS or path[0] == "base":
            raise RecipeError(
                f'--set {text}: unknown section "{path[0]}".{did_you_mean(path[0], SECTIONS[1:])} '
                f"Sections: {', '.join(SECTIONS[1:])}."
            )
        node = doc
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                dotted = ".".join(path[: i + 1])
                raise RecipeError(f"--set {text}: {dotted} is a value, not a section; set {dotted}=... instead.")
            node = child
        node[path[-1]] = value
    return doc


def load_recipe(path: str | Path, overrides: list[str] | None = None, *, resolve_model: bool = True) -> Recipe:
    """Read, merge, override and validate a recipe (``resolve_model`` adds the model's defaults and checks).

    ``path`` is a file, or the name of a shipped recipe (``quickstart``; see ``ganzoo list recipes``).
    """
    from ganzoo.recipe_names import find_recipe

    path = find_recipe(path)
    doc = _load_with_bases(path)
    return recipe_from_dict(doc, overrides or [], source=str(path), resolve_model=resolve_model)


def recipe_from_dict(
    doc: dict[str, Any], overrides: list[str] | None = None, *, source: str = "recipe", resolve_model: bool = True,
    check_data: bool = True,
) -> Recipe:
    doc = apply_overrides(doc, overrides or [])
    for key in doc:
        if key not in SECTIONS or key == "base":
            raise RecipeError(
                f'{source}: unknown top-level key "{key}".{did_you_mean(str(key), SECTIONS[1:])} '
                f"Sections: {', '.join(SECTIONS[1:])}."
            )
    if "model" not in doc:
        raise RecipeError(f'{source}: the recipe names no model; add "model: <name>" (see `ganzoo list models`).')
    model_cls = None
    if resolve_model:
        from ganzoo.plugins import get_registry

        if not isinstance(doc["model"], str):
            raise RecipeError(f"{source}: model: must be a registry name (a string).")
        try:
            registry = get_registry()
            model_cls = registry.get("models", doc["model"])
        except Exception as exc:
            raise RecipeError(f"{source}: model: {exc}") from None
        doc = deep_merge(model_cls.default_recipe(), doc)
    recipe = validate_section(Recipe, doc, "", source)
    recipe.source = source
    if model_cls is not None:
        model_cls.validate_recipe(recipe, check_data=check_data)
        if check_data:  # a model folder's recipe may name metrics of a plugin this machine lacks: not checked there
            _check_eval(recipe.eval, registry, source)
    return recipe


def _check_eval(cfg: EvalConfig, registry, source: str) -> None:
    """Metric names exist in the registry and ``eval.best`` is one of them."""
    known = registry.names("metrics")
    for name in cfg.metrics:
        if name not in known:
            raise RecipeError(f'{source}: eval.metrics: unknown metric "{name}".{did_you_mean(name, known)} '
                              f"Metrics: {', '.join(known)}.")
    if cfg.best is None:
        return
    names = cfg.metric_names()
    if cfg.best.split("/")[0] not in names:
        raise RecipeError(f'{source}: eval.best: "{cfg.best}" is not among the metrics evaluated ({", ".join(names)}); '
                          "add it to eval.metrics or choose one of them.")
    if not cfg.every:
        raise RecipeError(f"{source}: eval.best is {cfg.best} but eval.every is 0, so nothing is evaluated; "
                          "set eval.every=N (steps).")


# --------------------------------------------------------------------------- validation helpers


def _fields_at(schema: type[BaseModel], loc: list[str]) -> list[str]:
    """Field names of the (nested) schema section that ``loc`` points into."""
    for part in loc:
        field = schema.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        schema = annotation
    return list(schema.model_fields)


def _describe(error: dict[str, Any], prefix: str, schema: type[BaseModel]) -> str:
    loc = [str(p) for p in error["loc"]]
    dotted = ".".join([p for p in (prefix, *loc) if p])
    kind = error["type"]
    if kind == "extra_forbidden":
        hint = did_you_mean(loc[-1], _fields_at(schema, loc[:-1]))
        return f"{dotted}: unknown key.{hint} Remove it or fix the spelling"
    if kind == "missing":
        return f"{dotted}: required key is missing; add it"
    value = error.get("input")
    if kind == "value_error" and isinstance(value, (dict, list)):  # a section's own check: its message names the key
        return f"{dotted}: {error['msg'].removeprefix('Value error, ').rstrip('.')}; fix the value"
    shown = repr(value) if not isinstance(value, (dict, list)) or len(repr(value)) < 60 else type(value).__name__
    return f"{dotted}: {error['msg'].rstrip('.')} (got {shown}); fix the value"


def validate_section(schema: type[BaseModel], data: Any, where: str, source: str):
    """Validate ``data`` against ``schema``; the first problem becomes one RecipeError sentence."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: {where or 'recipe'} must be a mapping of keys, not {type(data).__name__}.")
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise RecipeError(f"{source}: {_describe(first, where, schema)}.") from None


def validate_kwargs(fn: Any, kwargs: dict[str, Any], where: str, source: str, *, skip: tuple[str, ...] = ()) -> dict:
    """Check ``kwargs`` against the signature of ``fn`` (a class or function): names, types, required values."""
    target = fn.__init__ if inspect.isclass(fn) else fn
    try:
        hints = typing.get_type_hints(target)
    except Exception:
        hints = {}
    fields: dict[str, Any] = {}
    for name, param in inspect.signature(target).parameters.items():
        if name in ("self", *skip) or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (hints.get(name, Any), default)
    schema = create_model(f"{getattr(fn, '__name__', 'Args')}Args", __config__=ConfigDict(extra="forbid"), **fields)
    return validate_section(schema, kwargs, where, source).model_dump()
