"""Read official CycleGAN / pix2pix checkpoints (junyanz/pytorch-CycleGAN-and-pix2pix) into model folders.

The official code saves each network on its own as a bare ``state_dict``:
``{epoch}_net_G_A.pth``, ``_net_G_B``, ``_net_D_A``, ``_net_D_B`` (CycleGAN),
``{epoch}_net_G.pth``, ``_net_D`` (pix2pix), and the released pretrained
models are a single ``latest_net_G.pth`` (one direction). Our networks use the
same keys, so conversion is: load safely, work out the layout from the
tensor shapes, drop what old files carry that the layout does not have, and
check every key and shape.

* Files are opened only with ``torch.load(weights_only=True)``: a file that
  needs arbitrary unpickling (code) is refused, never executed.
* Pre-0.4 PyTorch gave InstanceNorm running statistics; old official files
  (including some pretrained releases) still hold ``running_mean`` /
  ``running_var`` / ``num_batches_tracked`` at instance-norm positions. The
  official loader deletes them, and so do we.
* Inferred from shapes: generator kind (ResNet / U-Net), residual blocks or
  U-Net depth, widths, channels, norm (batch = affine weights present,
  instance = conv biases present, none = neither), ResNet dropout (it shifts
  the key indices), discriminator depth. Not visible in a U-Net state_dict:
  dropout (default: on for pix2pix, off for CycleGAN; ``--option use_dropout=...``).
* Official role names -> ours (CycleGAN): G_A -> generator_a2b, G_B -> generator_b2a,
  D_A -> discriminator_b (it judges domain B), D_B -> discriminator_a. A file
  without a suffix (a pretrained ``latest_net_G.pth`` or ``horse2zebra.pth``) is
  taken as G_A; name the domains so that it translates domains[0] -> domains[1].
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ganzoo.api import CheckpointError, GanzooError, did_you_mean, layout_mismatch, load_official_checkpoint, save_converted

from .networks import GENERATOR_LAYOUTS, NLayerDiscriminator, PixelDiscriminator, ResnetGenerator, UnetGenerator

NETWORK_CLASSES = {
    "cyclegan.resnet_generator": ResnetGenerator,
    "cyclegan.unet_generator": UnetGenerator,
    "cyclegan.nlayer_discriminator": NLayerDiscriminator,
    "cyclegan.pixel_discriminator": PixelDiscriminator,
}
_STAT_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


# --------------------------------------------------------------------------- loading


def load_official(path: str | Path) -> dict[str, torch.Tensor]:
    """One official ``*.pth`` as a plain ``{key: tensor}`` state_dict, without running any code."""
    path = Path(path)
    raw = load_official_checkpoint(path)
    if not isinstance(raw, Mapping) or not raw or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in raw.items()):
        raise CheckpointError(
            f"{path} is not a bare state_dict of tensors (is it an optimizer or a training checkpoint?); "
            "pass an official *_net_G*.pth or *_net_D*.pth file."
        )
    state = {}
    for key, value in raw.items():
        while key.startswith("module."):  # saved from DataParallel
            key = key[len("module."):]
        state[key] = value
    return state


# --------------------------------------------------------------------------- inferring the layout


def _norm(state: Mapping[str, torch.Tensor], affine_key: str, bias_key: str) -> str:
    if affine_key in state:
        return "batch"
    return "instance" if bias_key in state else "none"


def _resnet_kwargs(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    blocks = sorted({int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))})
    first, last = blocks[0], blocks[-1]
    block_convs = sorted({int(m.group(1)) for k in state if (m := re.match(rf"model\.{first}\.conv_block\.(\d+)\.weight$", k))
                          and state[k].dim() == 4})
    padded = block_convs[0] == 1  # a padding layer before the conv (reflect/replicate) or the conv's own zeros
    head = state["model.1.weight"]
    tail_index = max(int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.weight$", k)))
    return {
        "input_nc": int(head.shape[1]),
        "output_nc": int(state[f"model.{tail_index}.weight"].shape[0]),
        "ngf": int(head.shape[0]),
        "norm": _norm(state, "model.2.weight", "model.1.bias"),
        # [pad], conv, norm, ReLU, [Dropout], [pad], conv: a dropout layer pushes the second conv one index later.
        "use_dropout": block_convs[-1] - block_convs[0] == (5 if padded else 4),
        "n_blocks": last - first + 1,
        "padding_type": "reflect" if padded else "zero",  # reflect and replicate have the same keys; reflect is official
    }


def _unet_kwargs(state: Mapping[str, torch.Tensor], use_dropout: bool) -> dict[str, Any]:
    # Each U-Net level nests one ``model.`` deeper; the innermost level's keys are the deepest.
    depth = max(k.split(".").count("model") for k in state) - 1
    head = state["model.model.0.weight"]
    return {
        "input_nc": int(head.shape[1]),
        "output_nc": int(state["model.model.3.weight"].shape[1]),  # ConvTranspose2d weights are (in, out, kh, kw)
        "num_downs": depth,
        "ngf": int(head.shape[0]),
        "norm": _norm(state, "model.model.1.model.2.weight", "model.model.1.model.1.bias"),
        "use_dropout": use_dropout,
    }


def _nlayer_kwargs(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    convs = sorted(int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.weight$", k)) and state[k].dim() == 4)
    head = state["model.0.weight"]
    return {
        "input_nc": int(head.shape[1]),
        "ndf": int(head.shape[0]),
        "n_layers": len(convs) - 2,
        "norm": _norm(state, f"model.{convs[1] + 1}.weight", f"model.{convs[1]}.bias"),
    }


def _pixel_kwargs(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    head = state["net.0.weight"]
    return {"input_nc": int(head.shape[1]), "ndf": int(head.shape[0]), "norm": _norm(state, "net.3.weight", "net.2.bias")}


def infer_network(state: Mapping[str, torch.Tensor], *, unet_dropout: bool = True) -> tuple[str, dict[str, Any]]:
    """``(registry name, constructor kwargs)`` of the official network that ``state`` belongs to."""
    keys = set(state)
    try:
        if any(".conv_block." in k for k in keys):
            return "cyclegan.resnet_generator", _resnet_kwargs(state)
        if "model.model.0.weight" in keys:
            return "cyclegan.unet_generator", _unet_kwargs(state, unet_dropout)
        if "model.0.weight" in keys and state["model.0.weight"].dim() == 4 and state["model.0.weight"].shape[-1] == 4:
            return "cyclegan.nlayer_discriminator", _nlayer_kwargs(state)
        if "net.0.weight" in keys:
            return "cyclegan.pixel_discriminator", _pixel_kwargs(state)
    except (KeyError, IndexError, ValueError) as exc:
        raise CheckpointError(f"The weights look like a CycleGAN/pix2pix network but lack an expected tensor ({exc}).") from None
    sample = ", ".join(sorted(keys)[:3])
    raise CheckpointError(f"The weights are not a CycleGAN/pix2pix generator or discriminator (keys such as {sample}).")


def drop_instance_norm_stats(state: dict[str, torch.Tensor], network: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Remove running statistics that old files keep for InstanceNorm layers (the official loader's patch)."""
    modules = dict(network.named_modules())
    kept = {}
    for key, value in state.items():
        prefix, _, suffix = key.rpartition(".")
        if suffix in _STAT_SUFFIXES and isinstance(modules.get(prefix), torch.nn.InstanceNorm2d):
            continue
        kept[key] = value
    return kept


def check_layout(where: str, name: str, kwargs: dict[str, Any], state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Build the network on the meta device; return ``state`` cleaned, or raise naming the first mismatch."""
    try:
        with torch.device("meta"):  # shapes only: no memory, no init cost
            network = NETWORK_CLASSES[name](**kwargs)
    except ValueError as exc:
        raise CheckpointError(f"{where} implies an unsupported layout ({exc}).") from None
    state = drop_instance_norm_stats(state, network)
    detail = layout_mismatch(network.state_dict(), state)
    if detail is None:
        return state
    raise CheckpointError(f"{where} does not match a {name} built with {kwargs}: the file {detail}.")


def _check_net_option(where: str, net: str, name: str, kwargs: dict[str, Any]) -> None:
    """``--net`` names the official generator layout; it must agree with what the file holds."""
    if net not in GENERATOR_LAYOUTS:
        raise GanzooError(f'--net "{net}" is not an official generator layout.{did_you_mean(net, GENERATOR_LAYOUTS)} '
                          f"Layouts: {', '.join(GENERATOR_LAYOUTS)}.")
    class_name, layout = GENERATOR_LAYOUTS[net]
    actual = {k: kwargs.get(k) for k in layout}
    if NETWORK_CLASSES[name].__name__ != class_name or actual != layout:
        found = f"{NETWORK_CLASSES[name].__name__} with {actual}"
        raise CheckpointError(f"{where} holds a {found}, not the --net {net} layout; drop --net or pass the matching file.")


def read_network(path: Path, *, net: str | None = None, unet_dropout: bool = True):
    """Load ``path`` and return ``(kind, registry name, kwargs, clean state_dict)``; kind is generator or discriminator."""
    state = load_official(path)
    name, kwargs = infer_network(state, unet_dropout=unet_dropout)
    kind = "generator" if "generator" in name else "discriminator"
    if net is not None and kind == "generator":
        _check_net_option(str(path), net, name, kwargs)
    return kind, name, kwargs, check_layout(str(path), name, kwargs, state)


# --------------------------------------------------------------------------- the two converters


_CYCLEGAN_ROLES = {"G_A": "generator_a2b", "G_B": "generator_b2a", "D_A": "discriminator_b", "D_B": "discriminator_a"}


def _cyclegan_role(path: Path, kind: str) -> str:
    match = re.search(r"net_([GD]_[AB])", path.stem)
    if match:
        role = _CYCLEGAN_ROLES[match.group(1)]
        if not role.startswith(kind):
            raise CheckpointError(f"{path} is named like a {match.group(1)} file but holds a {kind}.")
        return role
    # A suffix-less file (a pretrained release) is one direction, taken as G_A / D_A.
    return "generator_a2b" if kind == "generator" else "discriminator_b"


def _write(model_name: str, roles: dict[str, tuple[str, dict, dict]], out_dir, domains, image_size, data_name) -> Path:

    recipe = {
        "networks": {role: {"name": name, **kwargs} for role, (name, kwargs, _) in roles.items()},
        "data": {"name": data_name, "image_size": int(image_size), "domains": list(domains), "batch_size": 1},
    }
    return save_converted(model_name, out_dir, domains=list(domains), recipe=recipe,
                          state_dicts={role: state for role, (_, _, state) in roles.items()})


def _check_options(family: str, options: dict[str, Any]) -> None:
    if options:
        raise GanzooError(f"Unknown option(s) for ganzoo convert {family}: {', '.join(options)}; the options are use_dropout=true|false.")


def convert_cyclegan(paths, out_dir, *, net: str | None = None, image_size: int | None = None,
                     domains: list[str] | None = None, use_dropout: bool | None = None, **options) -> Path:
    """Official CycleGAN ``*_net_{G,D}_{A,B}.pth`` files (any subset, or one pretrained ``latest_net_G.pth``) -> a model folder."""
    _check_options("cyclegan", options)
    domains = list(domains or ["A", "B"])
    if len(domains) != 2:
        raise GanzooError(f"--domains must name the two CycleGAN domains (A,B order), got {domains}.")
    roles: dict[str, tuple[str, dict, dict]] = {}
    for path in map(Path, paths):
        kind, name, kwargs, state = read_network(path, net=net, unet_dropout=bool(use_dropout))
        if kind == "generator" and use_dropout is not None:
            kwargs["use_dropout"] = bool(use_dropout)
        role = _cyclegan_role(path, kind)
        if role in roles:
            raise CheckpointError(f"Two files give the {role}; name them *_net_G_A/_G_B/_D_A/_D_B.pth so each direction is clear.")
        roles[role] = (name, kwargs, state)
    return _write("cyclegan", roles, out_dir, domains, image_size or 256, "unaligned")


def convert_pix2pix(paths, out_dir, *, net: str | None = None, image_size: int | None = None,
                    domains: list[str] | None = None, use_dropout: bool | None = None, **options) -> Path:
    """Official pix2pix ``*_net_G.pth`` (and optionally ``*_net_D.pth``) -> a model folder."""
    _check_options("pix2pix", options)
    domains = list(domains or ["A", "B"])
    if len(domains) != 2:
        raise GanzooError(f"--domains must name the input and output domains, got {domains}.")
    roles: dict[str, tuple[str, dict, dict]] = {}
    for path in map(Path, paths):
        kind, name, kwargs, state = read_network(path, net=net, unet_dropout=True if use_dropout is None else bool(use_dropout))
        if kind == "generator" and use_dropout is not None:
            kwargs["use_dropout"] = bool(use_dropout)
        if kind in roles:
            raise CheckpointError(f"Two files hold a pix2pix {kind}; pass one *_net_G.pth and at most one *_net_D.pth.")
        roles[kind] = (name, kwargs, state)
    if "discriminator" in roles:
        # The conditional D's input channels are derived from the generator's (input + output).
        name, kwargs, state = roles["discriminator"]
        generator = roles.get("generator", ("", {"input_nc": 3, "output_nc": 3}, None))[1]
        if kwargs.pop("input_nc") != generator["input_nc"] + generator["output_nc"]:
            raise CheckpointError("The pix2pix discriminator's input channels are not the generator's input + output channels; "
                                  "the files belong to different models.")
    return _write("pix2pix", roles, out_dir, domains, image_size or 256, "aligned")
