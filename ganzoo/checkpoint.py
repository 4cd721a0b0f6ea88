"""The model folder: one format for checkpoints, ``translate`` inputs and Hub repos.

::

    config.json                      plugin, model, network specs, domains, image size, normalisation, version, recipe
    <role>.safetensors               one file per network (generator, discriminator, ...)
    <role>.ema.safetensors           EMA copies
    train_state/state.json           step, RNG states, optimiser hyper-parameters, scheduler and scaler state
    train_state/optimizers.safetensors  optimiser tensors (Adam moments), RNG states, the model's training_state()

No pickle anywhere. Folders are written beside their destination and renamed
into place, so a kill at any moment leaves the previous checkpoint whole.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ganzoo.errors import CheckpointError, RecipeError

CONFIG_NAME = "config.json"
FORMAT_VERSION = 1
NORMALIZATION = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "range": [-1.0, 1.0]}


# --------------------------------------------------------------------------- small atomic helpers


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file + rename (never a half-written file)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    # safetensors refuses shared/non-contiguous storage: give it plain contiguous copies.
    plain = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    try:
        save_file(plain, str(path), metadata=metadata)
    except SafetensorError as exc:  # an I/O error from the Rust writer: an OSError naming the file, like Python's own
        raise _os_error(exc, path) from None
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _os_error(exc: Exception, path: Path) -> OSError:
    """safetensors reports a failed write as ``I/O error: No space left on device (os error 28)`` (older versions:
    ``IoError(Os { code: 28, ... })``); the OSError it stands for."""
    import re

    found = re.search(r"os error (\d+)|code: (\d+)", str(exc))
    code = int(found.group(1) or found.group(2)) if found else errno.EIO
    return OSError(code, os.strerror(code), str(path))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"Weights file {path} is missing; the model folder is incomplete.") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"Weights file {path} is not a readable safetensors file ({exc}); re-download or re-convert it.") from None


# --------------------------------------------------------------------------- saving


def model_config(model, *, step: int, plugin: str | None = None) -> dict[str, Any]:
    """config.json of ``model``; ``plugin`` names the plugin that registered the model (looked up when None)."""
    import ganzoo

    return {
        "format": "ganzoo-model",
        "format_version": FORMAT_VERSION,
        "ganzoo_version": ganzoo.__version__,
        "model": model.name,
        "plugin": plugin or plugin_of(model.name),
        "networks": model.network_specs,
        "ema": sorted(model.ema_nets),
        **({"frozen": sorted(model.frozen_nets)} if getattr(model, "frozen_nets", None) else {}),
        "domains": model.domains,
        "label_kind": model.label_kind,
        "image_size": model.image_size,
        "normalization": NORMALIZATION,
        "step": step,
        "recipe": model.recipe.to_dict(),
    }


def plugin_of(model_name: str, registry=None) -> str:
    """The plugin that registered ``model_name`` (``registry``: the one already resolved, else the process's)."""
    if registry is None:
        from ganzoo.plugins import get_registry

        registry = get_registry()
    try:
        return registry.entry("models", model_name).plugin
    except Exception:
        return "unknown"


def write_model_folder(model, folder: Path, *, step: int, train_state: dict[str, Any] | None = None,
                       plugin: str | None = None, extra_files: dict[str, str] | None = None) -> Path:
    """Write the model (and optional resume state) to ``folder`` atomically; return ``folder``.

    ``plugin`` is config.json's plugin name (looked up when None); ``extra_files`` (name -> text) are written
    into the folder with the rest, so they appear together with the weights or not at all.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))
    try:
        for role, net in model.nets.items():
            _save_tensors(net.state_dict(), tmp / f"{role}.safetensors", {"role": role})
        for role, net in model.ema_nets.items():
            _save_tensors(net.state_dict(), tmp / f"{role}.ema.safetensors", {"role": role, "variant": "ema"})
        for role, net in getattr(model, "frozen_nets", {}).items():
            _save_tensors(net.state_dict(), tmp / f"{role}.safetensors", {"role": role, "variant": "frozen"})
        if train_state is not None:
            _write_train_state(tmp / "train_state", train_state)
        for name, text in (extra_files or {}).items():
            atomic_write_text(tmp / name, text)
        atomic_write_text(tmp / CONFIG_NAME, json.dumps(model_config(model, step=step, plugin=plugin), indent=2) + "\n")
        _fsync_dir(tmp)
        if folder.exists():
            # Move the old folder aside first, so there is never a moment without a complete copy.
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
        _fsync_dir(folder.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _write_train_state(folder: Path, state: dict[str, Any]) -> None:
    folder.mkdir()
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {"step": state["step"], "optimizers": {}, "schedulers": state.get("schedulers", {}),
                            "scaler": state.get("scaler")}
    for name, opt_state in state["optimizers"].items():
        groups = opt_state["param_groups"]
        per_param: dict[str, dict[str, Any]] = {}
        for pid, pstate in opt_state["state"].items():
            scalars = {}
            for key, value in pstate.items():
                if torch.is_tensor(value):
                    tensors[f"optimizers/{name}/{pid}/{key}"] = value
                else:
                    scalars[key] = value
            per_param[str(pid)] = scalars
        meta["optimizers"][name] = {"param_groups": groups, "scalars": per_param}
    for key, value in state.get("model", {}).items():
        tensors[f"model/{key}"] = value
    rng = state["rng"]
    tensors["rng/torch"] = rng["torch"]
    for i, cuda_state in enumerate(rng.get("cuda", [])):
        tensors[f"rng/cuda/{i}"] = cuda_state
    meta["rng"] = {"python": _jsonable(rng["python"]), "numpy": _jsonable(rng["numpy"])}
    _save_tensors(tensors, folder / "optimizers.safetensors")
    atomic_write_text(folder / "state.json", json.dumps(meta, indent=1) + "\n")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, tuple | list):
        return [_jsonable(x) for x in obj]
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def capture_rng() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }


# --------------------------------------------------------------------------- loading

#: Bounds on the JSON files we read back (config.json, latest.json, train_state/state.json): size and nesting.
#: Ours nest 6 deep and a state.json of the largest official model is a few hundred KiB.
MAX_JSON_BYTES, MAX_JSON_DEPTH = 64 * 2**20, 32


def read_json(path: Path, what: str = "the folder") -> Any:
    """``path`` parsed as JSON, bounded in size and depth; a CheckpointError naming ``path`` (and ``what`` holds
    it: "the model folder") otherwise."""
    from ganzoo.recipe import _path_kind

    path = Path(path)
    kind = _path_kind(path)
    if kind == "missing":
        raise CheckpointError(f"{path} does not exist; {what} is incomplete.")
    if kind is not None:
        raise CheckpointError(f"{path} is {kind}, not a regular file; {what} is damaged.")
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise CheckpointError(f"{path} is {size:,} bytes, more than the {MAX_JSON_BYTES:,} such a file may have; "
                              f"{what} is damaged or not ours.")
    too_deep = False
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        data, too_deep = None, True
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); {what} is damaged.") from None
    except OSError as exc:
        raise CheckpointError(f"{path} cannot be read ({exc.strerror or exc}); check its permissions.") from None
    if too_deep or _json_depth(data) > MAX_JSON_DEPTH:
        raise CheckpointError(f"{path} is nested more than {MAX_JSON_DEPTH} levels deep; {what} is damaged or not ours.")
    return data


def _json_depth(data: Any) -> int:
    """How deep ``data`` nests (iteratively: no recursion to exhaust)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                return depth
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest



def read_config(folder: Path) -> dict[str, Any]:
    folder = Path(folder)
    path = folder / CONFIG_NAME
    if not folder.is_dir():
        raise CheckpointError(f"Model folder {folder} does not exist; pass a run directory, a model folder or a Hub id.")
    if not path.is_file():
        raise CheckpointError(f"{folder} has no {CONFIG_NAME}, so it is not a ganzoo model folder; point at a run directory or a model folder.")
    config = read_json(path, "the model folder")
    if not isinstance(config, dict) or config.get("format") != "ganzoo-model":
        raise CheckpointError(f"{path} is not a ganzoo model config (no \"format\": \"ganzoo-model\"); it may belong to another library.")
    for key in ("model", "networks", "domains", "image_size"):
        if key not in config:
            raise CheckpointError(f"{path} lacks the key \"{key}\"; the model folder is damaged.")
    # A role that is a path is named first: it is what a planted folder would try, whatever else is off.
    problem = (_outside_names(config) if isinstance(config["networks"], dict) else None) or _config_problem(config)
    if problem:
        raise CheckpointError(f"{path}: {problem}; the model folder is damaged or was edited by hand.")
    return config


def _config_problem(config: dict[str, Any]) -> str | None:
    """What is wrong with the types and ranges of a config.json's fields (before any of them sizes a tensor)."""
    from ganzoo.recipe import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE

    if not isinstance(config["model"], str):
        return "\"model\" must be a model name (a string)"
    size = config["image_size"]
    if not isinstance(size, int) or isinstance(size, bool) or not MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE:
        return f"\"image_size\" is {size!r}, not a whole number from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}"
    domains = config["domains"]
    if not isinstance(domains, list) or not domains or not all(isinstance(d, str) for d in domains):
        return "\"domains\" must be a non-empty list of domain names"
    step = config.get("step", 0)
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        return f"\"step\" is {step!r}, not a step number"
    networks = config["networks"]
    if not isinstance(networks, dict) or not networks:
        return "\"networks\" must map network roles to {\"name\": ..., \"kwargs\": {...}}"
    for role, spec in networks.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not isinstance(spec.get("kwargs"), dict):
            return f"\"networks.{role}\" must be {{\"name\": ..., \"kwargs\": {{...}}}}"
    recipe = config.get("recipe")
    if recipe is not None and not isinstance(recipe, dict):
        return f"\"recipe\" must be a recipe document (a mapping), not {type(recipe).__name__}"
    if isinstance(recipe, dict) and "model" in recipe and recipe["model"] != config["model"]:
        return f"\"model\" is {config['model']!r} but its \"recipe\" trains {recipe['model']!r}"
    for key in ("ema", "frozen"):
        roles = config.get(key, [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            return f"\"{key}\" must be a list of network roles"
    unknown = [r for r in config.get("ema", []) if r not in networks]
    if unknown:
        return f"\"ema\" names {unknown[0]!r}, which \"networks\" does not describe"
    return None


def _consistency_problem(config: dict[str, Any], model_cls, model, registry) -> str | None:
    """How config.json's roles, network kinds, domains and image size disagree with its model; None if they fit."""
    from ganzoo.errors import name_list

    roles = model_cls.network_roles
    frozen = set(getattr(model, "frozen_nets", {}) or {}) | set(config.get("frozen", []))
    for role, spec in config["networks"].items():
        if role not in roles:
            if role in frozen:
                continue
            close = _close(role, list(roles))
            return (f"\"networks\" has the role {role!r}{f' (did you mean {close!r})' if close else ''}, which a "
                    f"{config['model']} model does not have; its roles are {name_list(roles)}")
        kind = _network_kind(registry, spec["name"])
        if kind is None:
            known = registry.names("generators") + registry.names("discriminators")
            return (f"\"networks.{role}.name\" is {spec['name']!r}, which no installed plugin registers"
                    f"{' (did you mean ' + repr(m) + ')' if (m := _close(spec['name'], known)) else ''}")
        want = _network_kind(registry, roles[role])
        if want is not None and kind != want:
            return (f"\"networks.{role}\" is {spec['name']!r}, one of the {kind}, but the {role} of a {config['model']} "
                    f"model is one of the {want} (default {roles[role]!r})")
        derived = model.derived_kwargs(role)
        for key, value in derived.items():
            if key in spec["kwargs"] and spec["kwargs"][key] != value:
                return (f"\"networks.{role}.kwargs.{key}\" is {spec['kwargs'][key]!r} but the folder's "
                        f"{len(config['domains'])} domain(s) ({name_list(config['domains'])}) and image_size "
                        f"{config['image_size']} give {value!r}")
    if getattr(model, "image_size", config["image_size"]) != config["image_size"]:
        return f"\"image_size\" is {config['image_size']} but its \"recipe\" has data.image_size {model.image_size}"
    label_kind = config.get("label_kind")
    if label_kind is not None and label_kind != model.label_kind:
        return f"\"label_kind\" is {label_kind!r} but a {config['model']} model with this recipe has {model.label_kind!r} labels"
    return None


def _close(name: str, choices: list[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _network_kind(registry, name: str) -> str | None:
    for kind in ("generators", "discriminators"):
        try:
            registry.get(kind, name)
            return kind
        except Exception:  # noqa: BLE001 - not in this table
            continue
    return None


def inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` (symlinks and ``..`` resolved) lies strictly inside ``folder`` (resolved too)."""
    try:
        path, folder = Path(path).resolve(), Path(folder).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return False
    return folder in path.parents


def _outside_names(config: dict[str, Any]) -> str | None:
    """Network roles name files in the folder (``<role>.safetensors``): a role that is a path (``../x``, ``a/b``)
    would read a file outside it."""
    for role in config["networks"]:
        if not isinstance(role, str) or not role or role.startswith(".") or "/" in role or "\\" in role or "\0" in role:
            return f"the network role {role!r} is not a plain name, so its weights file would lie outside the folder"
    return None


def resolve_model_folder(path: str | Path) -> Path:
    """A model folder, or a run directory (its latest checkpoint)."""
    path = Path(path)
    if (path / CONFIG_NAME).is_file():
        return path
    latest = path / "latest.json"
    if latest.is_file():
        try:
            target = path / read_json(latest, "the run directory")["path"]
        except (CheckpointError, KeyError, TypeError):
            target = None
        if target is not None and not inside(target, path / "checkpoints"):
            raise CheckpointError(f"{latest} points outside {path / 'checkpoints'}; a run directory's latest.json names one "
                                  "of its own checkpoints, so delete latest.json to use the newest checkpoint there.")
        if target is not None and (target / CONFIG_NAME).is_file():
            return target
    ckpts = sorted((path / "checkpoints").glob("step_*")) if (path / "checkpoints").is_dir() else []
    ckpts = [c for c in ckpts if (c / CONFIG_NAME).is_file() and inside(c, path / "checkpoints")]
    if ckpts:
        return ckpts[-1]
    if path.is_dir():
        raise CheckpointError(f"{path} holds no config.json and no checkpoints/; point at a run directory or a model folder.")
    raise CheckpointError(f"Model path {path} does not exist; pass a run directory, a model folder or a Hub id.")


#: Roles whose names start so are discriminators: training-only, left out of a weights-only pull.
DISCRIMINATOR_PREFIX = "discriminator"


def checked_model(folder: Path, config: dict[str, Any]):
    """The (unbuilt) model that ``config`` (read from ``folder``) describes, once its model name, recipe, roles,
    network kinds, domains and image size are found to fit each other; a CheckpointError naming the mismatch
    otherwise. Nothing is allocated: the Hub pull calls it before downloading any weights."""
    from ganzoo.plugins import get_registry
    from ganzoo.recipe import recipe_from_dict

    path = folder / CONFIG_NAME
    registry = get_registry()
    try:
        model_cls = registry.get("models", config["model"])
    except Exception:  # noqa: BLE001 - an unknown name: say which plugin the folder wants
        close = _close(config["model"], registry.names("models"))
        raise CheckpointError(
            f"{path} names the model {config['model']!r}{f' (did you mean {close!r})' if close else ''}, which no installed "
            f"plugin registers; install the plugin {config.get('plugin', 'that provides it')!s} or check the folder.") from None
    try:
        recipe = recipe_from_dict(config.get("recipe") or {"model": config["model"]}, source=str(path), check_data=False)
    except RecipeError as exc:  # the recipe stored in config.json, which the message names
        raise CheckpointError(str(exc)) from None
    try:
        model = model_cls(recipe, config["domains"])
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise CheckpointError(f"{path}: a {config['model']} model cannot be set up with the domains "
                              f"{config['domains'][:8]} ({type(exc).__name__}: {exc}); the model folder is damaged or was "
                              "edited by hand.") from None
    problem = _consistency_problem(config, model_cls, model, registry)
    if problem:
        raise CheckpointError(f"{path}: {problem}; the model folder is damaged or was edited by hand.")
    from ganzoo.model import MAX_ACTIVATION_VALUES, largest_activation

    values, graph = largest_activation(model_cls, recipe, config["domains"], config["networks"])
    if values > MAX_ACTIVATION_VALUES:
        size = recipe.data.image_size
        raise CheckpointError(
            f"{path}: translating one {size}x{size} image would hold an activation of {values:,} values in its {graph} "
            f"({values * 4 / 2**30:.0f} GiB in fp32), more than the {MAX_ACTIVATION_VALUES:,} ganzoo allows; its "
            "image_size or network widths are wrong or were edited by hand.")
    return model


def load_model(path: str | Path, *, device: str | torch.device = "cpu", with_discriminator: bool = True):
    """Rebuild the model saved in ``path`` (model folder or run directory) with its weights."""
    folder = resolve_model_folder(path)
    config = read_config(folder)
    model = checked_model(folder, config)
    specs = {role: spec for role, spec in config["networks"].items()}
    missing = [role for role in specs if not (folder / f"{role}.safetensors").is_file()]
    if not with_discriminator or all(role.startswith(DISCRIMINATOR_PREFIX) for role in missing):
        # A weights-only pull (`ganzoo pull` without --full) has no discriminator: it translates without one.
        specs = {r: s for r, s in specs.items() if (folder / f"{r}.safetensors").is_file()}
    elif missing:
        raise CheckpointError(f"{folder} lacks {missing[0]}.safetensors named in config.json; re-download or re-save the model.")
    try:
        model.build(specs, init=False)
    except RecipeError as exc:  # the network arguments come from config.json (which the message names), not a recipe
        raise CheckpointError(str(exc)) from None
    for role, net in model.nets.items():
        _load_into(net, folder / f"{role}.safetensors", role)
    for role, net in model.ema_nets.items():
        ema_path = folder / f"{role}.ema.safetensors"
        _load_into(net, ema_path if ema_path.is_file() else folder / f"{role}.safetensors", role)
    _load_frozen(model, folder)
    model.step = int(config.get("step", 0))
    model.folder = folder
    return model.to(device)


def restore_weights(model, path: str | Path) -> None:
    """Load the weights (and EMA copies) saved in ``path`` into ``model``'s own networks, wherever they live.

    Resume uses this: the live model (already on its device, compiled, channels-last) takes the values; no
    second model is built from config.json.
    """
    folder = resolve_model_folder(path)
    read_config(folder)  # a damaged config.json is reported as on load
    for role, net in model.nets.items():
        _load_into(net, folder / f"{role}.safetensors", role)
    for role, net in model.ema_nets.items():
        ema_path = folder / f"{role}.ema.safetensors"
        _load_into(net, ema_path if ema_path.is_file() else folder / f"{role}.safetensors", role)
    _load_frozen(model, folder)


def _load_frozen(model, folder: Path) -> None:
    """Load the model's frozen networks from ``folder``; one without a file there is dropped (the model then
    says what it lacks when it needs it, e.g. a folder written before the network was saved)."""
    frozen = getattr(model, "frozen_nets", {})
    for role in [r for r in frozen if not (folder / f"{r}.safetensors").is_file()]:
        del frozen[role]
    for role, net in frozen.items():
        _load_into(net, folder / f"{role}.safetensors", role)


def init_weights_from(model, path: str | Path) -> list[str]:
    """Copy the weights of a model folder (or run directory) into a freshly built ``model``: ``ganzoo run --init-from``.

    Only weights move: the new run has its own step 0, optimisers and schedule. The folder must hold the same
    model with the same domains; a network whose file is absent (a weights-only pull has no discriminator)
    keeps its fresh initialisation, and its role is returned.
    """
    try:
        folder = resolve_model_folder(path)
        config = read_config(folder)
    except CheckpointError as exc:
        raise CheckpointError(f"--init-from: {exc}") from None
    name = model.recipe.model
    if config["model"] != name:
        raise CheckpointError(f"--init-from {path} holds a {config['model']} model but the recipe trains {name}; "
                              f"start from a {name} model folder.")
    if list(config["domains"]) != list(model.domains):
        raise CheckpointError(f"--init-from {path} was trained on the domains {', '.join(config['domains'])} but this run's "
                              f"data has {', '.join(model.domains)}; set data.domains to match or start from another model.")
    fresh = []
    for role, net in model.nets.items():
        weights = folder / f"{role}.safetensors"
        if weights.is_file():
            _load_into(net, weights, role)
        else:
            fresh.append(role)
    if len(fresh) == len(model.nets):
        raise CheckpointError(f"--init-from {path} holds none of this model's weight files; pass a complete model folder.")
    for role, net in model.ema_nets.items():
        for candidate in (folder / f"{role}.ema.safetensors", folder / f"{role}.safetensors"):
            if candidate.is_file():
                _load_into(net, candidate, role)
                break
        else:
            net.load_state_dict(model.nets[role].state_dict())
    return fresh


def layout_mismatch(expected: dict[str, Any], found: dict[str, Any]) -> str | None:
    """How a state dict ``found`` differs from ``expected`` (keys and shapes), as a phrase; None if it fits."""
    want = {k: tuple(v.shape) for k, v in expected.items()}
    have = {k: tuple(v.shape) for k, v in found.items()}
    if want == have:
        return None
    missing = [k for k in want if k not in have]
    unexpected = [k for k in have if k not in want]
    if missing:
        return f'lacks "{missing[0]}"'
    if unexpected:
        return f'has unexpected "{unexpected[0]}"'
    key = next(k for k in want if want[k] != have[k])
    return f'has "{key}" of shape {have[key]} instead of {want[key]}'


def _load_into(net: torch.nn.Module, path: Path, role: str) -> None:
    state = load_tensors(path)
    detail = layout_mismatch(net.state_dict(), state)
    if detail:
        raise CheckpointError(f"{path} does not fit the {role} described in config.json (the file {detail}); "
                              "it belongs to another model or configuration.")
    net.load_state_dict(state, strict=True)


def read_train_state(folder: Path) -> dict[str, Any]:
    folder = Path(folder) / "train_state"
    if not (folder / "state.json").is_file():
        raise CheckpointError(f"{folder.parent} has no train_state/ to resume from; it is a weights-only model folder.")
    state_path = folder / "state.json"
    meta = read_json(state_path, "the checkpoint's training state")
    try:
        return _train_state(meta, load_tensors(folder / "optimizers.safetensors"))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise CheckpointError(f"{state_path} does not hold a training state ({type(exc).__name__}: {exc}); the checkpoint "
                              "is damaged.") from None


def _train_state(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    optimizers = {}
    for name, info in meta["optimizers"].items():
        state: dict[int, dict[str, Any]] = {}
        for pid, scalars in info["scalars"].items():
            state[int(pid)] = dict(scalars)
        prefix = f"optimizers/{name}/"
        for key, value in tensors.items():
            if key.startswith(prefix):
                pid, sub = key[len(prefix):].split("/", 1)
                state.setdefault(int(pid), {})[sub] = value
        optimizers[name] = {"state": state, "param_groups": info["param_groups"]}
    rng = {
        "torch": tensors["rng/torch"],
        "cuda": [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng/cuda/"))],
        "python": _python_rng(meta["rng"]["python"]),
        "numpy": _numpy_rng(meta["rng"]["numpy"]),
    }
    return {"step": meta["step"], "optimizers": optimizers, "schedulers": meta.get("schedulers", {}),
            "scaler": meta.get("scaler"), "rng": rng,
            "model": {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}}


def _python_rng(state: list) -> tuple:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def _numpy_rng(state: list) -> tuple:
    name, keys, pos, has_gauss, cached = state
    arr = np.array(keys["__ndarray__"], dtype=keys["dtype"]) if isinstance(keys, dict) else np.array(keys, dtype=np.uint32)
    return (name, arr, pos, has_gauss, cached)


def restore_rng(rng: dict[str, Any]) -> None:
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])


def save_converted(
    model_name: str,
    out_dir: str | Path,
    *,
    domains: list[str],
    recipe: dict[str, Any],
    state_dicts: dict[str, dict[str, torch.Tensor]],
    ema_state_dicts: dict[str, dict[str, torch.Tensor]] | None = None,
    frozen_state_dicts: dict[str, dict[str, torch.Tensor]] | None = None,
) -> Path:
    """Write converted (e.g. official) weights as a ganzoo model folder.

    ``recipe`` is a recipe document (``model`` is filled in) describing the
    networks; every network role of the model must be in ``state_dicts`` or be
    left out of the folder (e.g. a generator-only release); so is a frozen network (``frozen_state_dicts``).
    Each state dict must
    fit the network exactly (strict loading); nothing is written otherwise.
    """
    from ganzoo.plugins import get_registry
    from ganzoo.recipe import recipe_from_dict

    model_cls = get_registry().get("models", model_name)
    resolved = recipe_from_dict({**recipe, "model": model_name}, source=f"{model_name} conversion", check_data=False)
    model = model_cls(resolved, domains)
    # Build only the networks that have weights: a left-out role (e.g. no discriminator in a
    # generator-only release) need not even be constructible from the recipe's defaults.
    model.build({role: model.network_spec(role) for role in model.network_roles if role in state_dicts}, init=False)
    model.ema_nets = {role: net for role, net in model.ema_nets.items() if role in (ema_state_dicts or {})}
    for role, net in model.nets.items():
        _load_state_strict(net, state_dicts[role], role)
    for role, net in model.ema_nets.items():
        _load_state_strict(net, ema_state_dicts[role], role)
    model.frozen_nets = {role: net for role, net in model.frozen_nets.items() if role in (frozen_state_dicts or {})}
    for role, net in model.frozen_nets.items():
        _load_state_strict(net, frozen_state_dicts[role], role)
    return write_model_folder(model, Path(out_dir), step=0)


def _load_state_strict(net: torch.nn.Module, state: dict[str, torch.Tensor], role: str) -> None:
    detail = layout_mismatch(net.state_dict(), state)
    if detail:
        raise CheckpointError(f"The {role} weights do not fit the {role} network (they {detail}); check the converter options.")
    net.load_state_dict(state, strict=True)



def load_official_checkpoint(path: str | Path) -> Any:
    """Read an official PyTorch checkpoint with ``weights_only=True``: tensors and plain containers, never code.

    Used by every converter. Raises CheckpointError (one sentence) for a missing file, a file that is
    not a PyTorch checkpoint, or one whose unpickling would need other objects (which could run code).
    """
    import pickle
    import re

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint file {path} does not exist; check the path.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # The weights_only unpickler reports garbage bytes ("Unsupported operand") and forbidden
        # objects ("GLOBAL posix.system ...") with the same type; only the latter is a refusal.
        reason = str(exc)
        if "unsupported operand" in reason.lower():
            raise CheckpointError(f"{path} is not a readable PyTorch checkpoint.") from None
        needed = re.search(r"GLOBAL ([\w.]+)", reason)
        what = f" ({needed.group(1)})" if needed else ""
        raise CheckpointError(
            f"Refusing to load {path}: it contains pickled objects other than tensors{what}, "
            "which could run code, and ganzoo only loads checkpoints with weights_only=True."
        ) from None
    except Exception as exc:  # torch.load raises many types for non-torch or truncated files
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}).") from None
