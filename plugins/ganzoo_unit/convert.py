"""Read official UNIT checkpoints (mingyuliutw/UNIT) into model folders.

The official trainer saves ``gen_%08d.pt`` = ``{'a': gen_a.state_dict(), 'b': gen_b.state_dict()}`` (two ``VAEGen``)
and ``dis_%08d.pt`` = ``{'a': dis_a, 'b': dis_b}`` (two ``MsImageDis``). Our networks have the same keys, so
conversion is: load safely, tell the two kinds apart by their keys, read the layout from the tensor shapes, drop
what old files carry that the layout does not have, and check every key and shape.

* Files are opened only with ``weights_only=True`` (``ganzoo.api.load_official_checkpoint``): a file that needs
  arbitrary unpickling is refused, never executed.
* Files written with PyTorch 0.3 hold ``running_mean`` / ``running_var`` at the encoder's instance-norm positions;
  the official ``pytorch03_to_pytorch04`` deletes them, and so do we.
* From shapes: channels, widths, down-sampling and residual-block counts, discriminator depth and scales, and
  whether a discriminator norm is batch or layer norm. Not visible in a state dict: activations, padding and an
  instance (or no) discriminator norm; they default to every official config (relu / lrelu, reflect, none) and
  can be set with ``--option gen_activ=... gen_pad_type=... dis_norm=... dis_activ=... dis_pad_type=...``.
* Roles: ``'a'`` of ``gen_*.pt`` -> generator_a, ``'b'`` -> generator_b, ``'a'`` of ``dis_*.pt`` ->
  discriminator_a (it judges domain a), ``'b'`` -> discriminator_b. ``--domains`` names a and b in that order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ganzoo.api import CheckpointError, GanzooError, layout_mismatch, load_official_checkpoint, save_converted

from .networks import MultiScaleDiscriminator, VAEGenerator

OPTIONS = ("gen_activ", "gen_pad_type", "dis_norm", "dis_activ", "dis_pad_type")
_STATS = ("running_mean", "running_var", "num_batches_tracked")


def read_pair(path: str | Path) -> tuple[str, dict[str, dict[str, torch.Tensor]]]:
    """One official ``gen_*.pt`` or ``dis_*.pt``: ``(kind, {'a': state, 'b': state})``, kind generator or discriminator."""
    path = Path(path)
    raw = load_official_checkpoint(path)
    if not (isinstance(raw, Mapping) and set(raw) == {"a", "b"} and all(isinstance(v, Mapping) and v for v in raw.values())):
        found = sorted(map(str, raw)) if isinstance(raw, Mapping) else type(raw).__name__
        raise CheckpointError(f"{path} is not an official UNIT gen_*.pt or dis_*.pt file ({{'a': ..., 'b': ...}} state "
                              f"dicts; it holds {found}); the optimizer.pt file holds no weights.")
    pair = {}
    for side, state in raw.items():
        if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
            raise CheckpointError(f"{path}: entry '{side}' is not a state dict of tensors.")
        pair[side] = {k.removeprefix("module."): v for k, v in state.items()}
    keys = set(pair["a"])
    if any(k.startswith("enc.") for k in keys):
        return "generator", pair
    if any(k.startswith("cnns.") for k in keys):
        return "discriminator", pair
    raise CheckpointError(f"{path} holds neither a UNIT VAEGen (enc.*, dec.*) nor an MsImageDis (cnns.*): keys such as "
                          f"{', '.join(sorted(keys)[:3])}.")


def _indices(state: Mapping[str, Any], pattern: str) -> list[int]:
    return sorted({int(m.group(1)) for k in state if (m := re.match(pattern, k))})


def generator_kwargs(state: Mapping[str, torch.Tensor], activ: str = "relu", pad_type: str = "reflect") -> dict[str, Any]:
    head = state["enc.model.0.conv.weight"]
    convs = _indices(state, r"enc\.model\.(\d+)\.conv\.weight$")  # the 7x7 conv and the down-sampling convs
    n_down = len(convs) - 1
    return {"input_dim": int(head.shape[1]), "dim": int(head.shape[0]), "n_downsample": n_down,
            "n_res": len(_indices(state, rf"enc\.model\.{n_down + 1}\.model\.(\d+)\.")), "activ": activ, "pad_type": pad_type}


def discriminator_kwargs(state: Mapping[str, torch.Tensor], norm: str | None = None, activ: str = "lrelu",
                         pad_type: str = "reflect") -> dict[str, Any]:
    head = state["cnns.0.0.conv.weight"]
    if norm is None:
        norm = "bn" if "cnns.0.1.norm.weight" in state else "ln" if "cnns.0.1.norm.gamma" in state else "none"
    return {"input_dim": int(head.shape[1]), "dim": int(head.shape[0]),
            "n_layer": len(_indices(state, r"cnns\.0\.(\d+)\.conv\.weight$")),
            "num_scales": len(_indices(state, r"cnns\.(\d+)\.")), "norm": norm, "activ": activ, "pad_type": pad_type}


def check_layout(where: str, cls, kwargs: dict[str, Any], state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Build the network on the meta device; return ``state`` without stale instance-norm statistics, or raise."""
    try:
        with torch.device("meta"):
            network = cls(**kwargs)
    except ValueError as exc:
        raise CheckpointError(f"{where} implies an unsupported layout ({exc}).") from None
    modules = dict(network.named_modules())
    kept = {}
    for key, value in state.items():
        prefix, _, suffix = key.rpartition(".")
        if suffix in _STATS and isinstance(modules.get(prefix), torch.nn.InstanceNorm2d):
            continue  # PyTorch 0.3 gave instance norm running statistics (official pytorch03_to_pytorch04)
        kept[key] = value
    detail = layout_mismatch(network.state_dict(), kept)
    if detail is not None:
        raise CheckpointError(f"{where} does not match a {cls.__name__} built with {kwargs}: the file {detail}.")
    return kept


def convert_unit(paths, out_dir, *, net: str | None = None, image_size: int | None = None,
                 domains: list[str] | None = None, **options) -> Path:
    """Official ``gen_*.pt`` (and optionally ``dis_*.pt``) -> a UNIT model folder."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown or net is not None:
        bad = "--net" if net is not None else unknown[0]
        raise GanzooError(f"ganzoo convert unit does not take {bad}; its options are {', '.join(OPTIONS)} (as --option key=value).")
    domains = list(domains or ["A", "B"])
    if len(domains) != 2:
        raise GanzooError(f"--domains must name the two UNIT domains (a,b order), got {domains}.")
    roles: dict[str, tuple[str, dict[str, Any], dict[str, torch.Tensor]]] = {}
    for path in map(Path, paths):
        kind, pair = read_pair(path)
        if any(role.startswith(kind) for role in roles):
            raise CheckpointError(f"Two files hold UNIT {kind}s; pass one gen_*.pt and at most one dis_*.pt.")
        for side, state in pair.items():
            where = f"{path} ['{side}']"
            try:
                if kind == "generator":
                    cls, name = VAEGenerator, "unit.vae_generator"
                    kwargs = generator_kwargs(state, options.get("gen_activ", "relu"), options.get("gen_pad_type", "reflect"))
                else:
                    cls, name = MultiScaleDiscriminator, "unit.ms_discriminator"
                    kwargs = discriminator_kwargs(state, options.get("dis_norm"), options.get("dis_activ", "lrelu"),
                                                  options.get("dis_pad_type", "reflect"))
            except (KeyError, IndexError) as exc:
                raise CheckpointError(f"{where} looks like a UNIT {kind} but lacks an expected tensor ({exc}).") from None
            roles[f"{kind}_{side}"] = (name, kwargs, check_layout(where, cls, kwargs, state))
    if not any(role.startswith("generator") for role in roles):
        raise CheckpointError("No gen_*.pt among the files; a UNIT model folder needs the generators to translate.")
    recipe = {
        "networks": {role: {"name": name, **kwargs} for role, (name, kwargs, _) in roles.items()},
        "data": {"name": "unaligned", "image_size": int(image_size or 256), "domains": domains, "batch_size": 1},
    }
    return save_converted("unit", out_dir, domains=domains, recipe=recipe,
                          state_dicts={role: state for role, (_, _, state) in roles.items()})
