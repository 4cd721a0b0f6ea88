"""Read official MUNIT checkpoints (NVlabs/MUNIT) into a ganzoo model folder.

The official trainer saves ``gen_%08d.pt`` as ``torch.save({'a': gen_a.state_dict(), 'b': gen_b.state_dict()})``
and ``dis_%08d.pt`` the same way for the discriminators; the pretrained releases (``edges2shoes.pt``, ...) are
generator files. Our networks use the same keys, so conversion is: load safely, infer the constructor arguments
from the tensor shapes, check every key and shape on the meta device, write the folder.

* Files are opened only with ``torch.load(weights_only=True)`` (``ganzoo.api.load_official_checkpoint``).
* Not visible in a state dict: the activation (official ``relu`` for generators, ``lrelu`` for discriminators) and
  the padding (``reflect`` in the released configs; ``--option pad_type=zero`` for files trained with ``zero``).
* Official role names -> ours: gen_a -> generator_a, gen_b -> generator_b, dis_a -> discriminator_a,
  dis_b -> discriminator_b; domain a is ``--domains``' first name.
* Files written by PyTorch before 0.4.1 lack ``num_batches_tracked`` of the content encoders' instance norms; it
  is filled in as 0 (PyTorch's own loader does the same for old files).

Official weights and code are CC BY-NC-SA 4.0; converted weights keep that licence and attribution.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ganzoo.api import CheckpointError, GanzooError, layout_mismatch, load_official_checkpoint, save_converted

from .networks import ACTIVATIONS, MLP_BLOCKS, PAD_TYPES, STYLE_DOWNSAMPLES, AdaINGenerator, MsImageDis

OPTIONS = ("pad_type", "activ", "dis_activ")


def _strip(key: str) -> str:
    while key.startswith("module."):
        key = key[len("module."):]
    return key


def load_official(path: str | Path) -> tuple[str, dict[str, dict[str, torch.Tensor]]]:
    """``(kind, {"a": state, "b": state})`` of one official ``gen_*.pt`` / ``dis_*.pt``; kind is generator or
    discriminator. A file holding one side only is accepted (that side only)."""
    path = Path(path)
    raw = load_official_checkpoint(path)
    if not isinstance(raw, Mapping) or not ({"a", "b"} & set(raw)):
        found = ", ".join(sorted(map(str, raw)))[:80] if isinstance(raw, Mapping) else type(raw).__name__
        raise CheckpointError(f"{path} is not an official MUNIT gen_*.pt or dis_*.pt file (a dict with 'a' and 'b'; "
                              f"found {found or 'nothing'}).")
    sides: dict[str, dict[str, torch.Tensor]] = {}
    for side in ("a", "b"):
        if side not in raw:
            continue
        state = raw[side]
        if not isinstance(state, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
            raise CheckpointError(f"Entry '{side}' of {path} is not a state dict of tensors; pass a gen_*.pt or dis_*.pt file.")
        sides[side] = {_strip(k): v for k, v in state.items()}
    kinds = {"generator" if any(k.startswith("enc_content.") for k in s) else
             "discriminator" if any(k.startswith("cnns.") for k in s) else "?" for s in sides.values()}
    if len(kinds) != 1 or "?" in kinds:
        raise CheckpointError(f"{path} holds neither MUNIT auto-encoders (enc_content.*) nor discriminators (cnns.*).")
    return kinds.pop(), sides


# --------------------------------------------------------------------------- inferring the layout


def _indices(state: Mapping[str, torch.Tensor], prefix: str) -> list[int]:
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.")
    return sorted({int(m.group(1)) for k in state if (m := pattern.match(k))})


def generator_kwargs(state: Mapping[str, torch.Tensor], *, activ: str = "relu", pad_type: str = "reflect") -> dict[str, Any]:
    first = state["enc_content.model.0.conv.weight"]
    blocks = _indices(state, "enc_content.model")
    n_downsample = len([i for i in blocks if f"enc_content.model.{i}.conv.weight" in state]) - 1
    res_index = blocks[-1]
    n_res = len(_indices(state, f"enc_content.model.{res_index}.model"))
    style_layers = _indices(state, "enc_style.model")
    style_convs = [i for i in style_layers if f"enc_style.model.{i}.conv.weight" in state]
    if len(style_convs) != STYLE_DOWNSAMPLES + 1:
        raise CheckpointError(f"The style encoder has {len(style_convs) - 1} downsamplings, not the official {STYLE_DOWNSAMPLES}.")
    mlp_layers = _indices(state, "mlp.model")
    if len(mlp_layers) != MLP_BLOCKS:
        raise CheckpointError(f"The MLP has {len(mlp_layers)} layers, not the official {MLP_BLOCKS}.")
    return {
        "input_dim": int(first.shape[1]),
        "dim": int(first.shape[0]),
        "style_dim": int(state[f"enc_style.model.{style_layers[-1]}.weight"].shape[0]),
        "n_downsample": n_downsample,
        "n_res": n_res,
        "activ": activ,
        "pad_type": pad_type,
        "mlp_dim": int(state["mlp.model.0.fc.weight"].shape[0]),
    }


def discriminator_kwargs(state: Mapping[str, torch.Tensor], *, activ: str = "lrelu", pad_type: str = "reflect") -> dict[str, Any]:
    scales = _indices(state, "cnns")
    layers = [i for i in _indices(state, "cnns.0") if f"cnns.0.{i}.conv.weight" in state]
    if any(k.startswith("cnns.0.1.norm.") for k in state):
        raise CheckpointError("The discriminator has normalisation parameters; only the official norm: none is supported.")
    first = state["cnns.0.0.conv.weight"]
    return {"input_dim": int(first.shape[1]), "dim": int(first.shape[0]), "n_layer": len(layers), "norm": "none",
            "activ": activ, "num_scales": len(scales), "pad_type": pad_type}


def _fill_instance_norm_counters(state: dict[str, torch.Tensor], network: torch.nn.Module) -> dict[str, torch.Tensor]:
    expected = network.state_dict()
    for key, value in expected.items():
        if key.endswith(".num_batches_tracked") and key not in state and key.replace("num_batches_tracked", "running_mean") in state:
            state[key] = torch.zeros((), dtype=value.dtype)
    return state


def _checked(where: str, cls, kwargs: dict[str, Any], state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    try:
        with torch.device("meta"):  # shapes only: no memory, no init cost
            network = cls(**kwargs)
    except ValueError as exc:
        raise CheckpointError(f"{where} implies an unsupported layout ({exc}).") from None
    state = _fill_instance_norm_counters(dict(state), network)
    detail = layout_mismatch(network.state_dict(), state)
    if detail is not None:
        raise CheckpointError(f"{where} does not match a {cls.__name__} built with {kwargs}: the file {detail}.")
    return state


def read_file(path: Path, options: dict[str, Any]) -> tuple[str, dict[str, tuple[dict[str, Any], dict[str, torch.Tensor]]]]:
    """``(kind, {"a": (kwargs, state), "b": ...})`` of one official file, every key and shape checked."""
    kind, sides = load_official(path)
    out = {}
    for side, state in sides.items():
        where = f"{path} ('{side}')"
        try:
            if kind == "generator":
                kwargs = generator_kwargs(state, activ=options.get("activ", "relu"), pad_type=options.get("pad_type", "reflect"))
                cls = AdaINGenerator
            else:
                kwargs = discriminator_kwargs(state, activ=options.get("dis_activ", "lrelu"),
                                              pad_type=options.get("pad_type", "reflect"))
                cls = MsImageDis
        except (KeyError, IndexError) as exc:
            raise CheckpointError(f"{where} looks like a MUNIT {kind} but lacks an expected tensor ({exc}).") from None
        out[side] = (kwargs, _checked(where, cls, kwargs, state))
    return kind, out


def _check_options(options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise GanzooError(f"Unknown option {unknown[0]!r} for ganzoo convert munit; the options are "
                          "pad_type=reflect|zero|replicate, activ=relu|lrelu|... and dis_activ=lrelu|....")
    if options.get("pad_type", "reflect") not in PAD_TYPES:
        raise GanzooError(f"--option pad_type={options['pad_type']} is not one of {', '.join(PAD_TYPES)}.")
    for key in ("activ", "dis_activ"):
        if options.get(key, "relu") not in ACTIVATIONS:
            raise GanzooError(f"--option {key}={options[key]} is not one of {', '.join(ACTIVATIONS)}.")


def convert_munit(paths, out_dir, *, net: str | None = None, image_size: int | None = None,
                  domains: list[str] | None = None, **options) -> Path:
    """``ganzoo convert munit GEN.pt [DIS.pt] OUT_DIR``: official ``gen_*.pt`` (and optionally ``dis_*.pt``) -> a model folder."""
    roles: dict[str, tuple[dict[str, Any], dict[str, torch.Tensor]]] = {}
    files = [Path(p) for p in paths]
    read = []
    for path in files:  # read first: a file that is not data is refused before any option is looked at
        read.append(read_file(path, {k: v for k, v in options.items() if k in OPTIONS}))
    if net is not None:
        raise GanzooError("ganzoo convert munit takes no --net: the layout is read from the file.")
    _check_options(options)
    if not 1 <= len(files) <= 2:
        raise GanzooError("ganzoo convert munit takes GEN.pt [DIS.pt] OUT_DIR.")
    for path, (kind, sides) in zip(files, read):
        for side, value in sides.items():
            role = f"{kind}_{side}"
            if role in roles:
                raise CheckpointError(f"Two files give the {role}; pass one gen_*.pt and at most one dis_*.pt.")
            roles[role] = value
    if "generator_a" not in roles and "generator_b" not in roles:
        raise CheckpointError("No MUNIT auto-encoders among the files; pass the gen_*.pt file (the release itself).")
    domains = list(domains or ["A", "B"])
    if len(domains) != 2:
        raise GanzooError(f"--domains must name the two MUNIT domains (a,b order), got {domains}.")
    recipe = {
        "networks": {role: {"name": "munit.adain_generator" if role.startswith("generator") else "munit.ms_discriminator",
                            **kwargs} for role, (kwargs, _) in roles.items()},
        "data": {"name": "unaligned", "image_size": int(image_size or 256), "domains": domains, "batch_size": 1},
    }
    return save_converted("munit", out_dir, domains=domains, recipe=recipe,
                          state_dicts={role: state for role, (_, state) in roles.items()})
