"""Read official StarGAN v2 checkpoints (clovaai/stargan-v2) into our networks.

The official ``CheckpointIO`` writes ``{step:06d}_nets.ckpt`` / ``{step:06d}_nets_ema.ckpt`` as a
``torch.save`` of a dict keyed by network name (generator, mapping_network, style_encoder, plus
discriminator in ``_nets`` and fan when w_hpf > 0), each value a plain state_dict. Our networks use
the same keys, so conversion is: load safely, clean the keys, and infer the constructor arguments
from the tensor shapes so the networks can be rebuilt without any side information.

Files are only ever opened with ``torch.load(weights_only=True)``: a checkpoint that needs
arbitrary unpickling (code) is refused, never executed.

Official weights and code are CC BY-NC 4.0; converted weights keep that license and attribution.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ganzoo.api import CheckpointError, GanzooError, layout_mismatch, load_official_checkpoint, save_converted

from .networks import Discriminator, Generator, MappingNetwork, StyleEncoder

__all__ = ["NETWORK_CLASSES", "load_official", "infer_config", "convert"]

# Role name in the official checkpoint dict -> our class with the same parameter layout.
NETWORK_CLASSES: dict[str, type[torch.nn.Module]] = {
    "generator": Generator,
    "mapping_network": MappingNetwork,
    "style_encoder": StyleEncoder,
    "discriminator": Discriminator,
}

# Official HighPass kernel centre before division by w_hpf; the stored value gives w_hpf back.
_HPF_CENTRE = 8.0

# Every generator checkpoint has this key; used to recognise a bare generator state_dict.
_GENERATOR_MARKER = "from_rgb.weight"


def _strip_module_prefix(key: str) -> str:
    """Drop DataParallel's ``module.`` prefix (possibly repeated) from a state_dict key."""
    while key.startswith("module."):
        key = key[len("module.") :]
    return key


def _clean_state_dict(role: str, value: Any, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()
    ):
        raise CheckpointError(
            f'Entry "{role}" in {path} is not a state_dict of tensors (is this an optimizer '
            "checkpoint?); pass a *_nets_ema.ckpt or *_nets.ckpt file."
        )
    return {_strip_module_prefix(k): v for k, v in value.items()}


def load_official(path: str | Path, extras: dict[str, Any] | None = None) -> dict[str, dict[str, torch.Tensor]]:
    """Load an official ``*_nets(_ema).ckpt`` file as {role: state_dict}, without running code.

    ``module.`` prefixes are stripped; the face-alignment network (``fan``, in the CelebA-HQ release) is
    put into ``extras["fan"]`` when ``extras`` is given, not returned; unknown entries are ignored. A bare generator state_dict
    is accepted as {"generator": ...}. Raises CheckpointError if the file is missing, is not a
    PyTorch checkpoint, needs unsafe unpickling, or has no generator.
    """
    path = Path(path)
    raw = load_official_checkpoint(path)
    if not isinstance(raw, Mapping):
        raise CheckpointError(
            f"{path} holds a {type(raw).__name__}, not a dict of networks; "
            "pass an official StarGAN v2 *_nets_ema.ckpt file."
        )
    if any(isinstance(k, str) and _strip_module_prefix(k) == _GENERATOR_MARKER for k in raw):
        raw = {"generator": raw}
    if extras is not None and "fan" in raw:
        extras["fan"] = raw["fan"]  # the CelebA-HQ release's FAN, for load_fan_weights' checks
    state_dicts = {
        role: _clean_state_dict(role, raw[role], path) for role in NETWORK_CLASSES if role in raw
    }
    if "generator" not in state_dicts:
        found = ", ".join(sorted(map(str, raw))) or "nothing"
        raise CheckpointError(
            f"{path} has no StarGAN v2 generator (found: {found}); "
            "pass an official *_nets_ema.ckpt or *_nets.ckpt file."
        )
    return state_dicts


# --------------------------------------------------------------------------------------------------
# Inferring constructor arguments from shapes
# --------------------------------------------------------------------------------------------------


def _block_indices(state_dict: Mapping[str, torch.Tensor], prefix: str) -> list[int]:
    """Sorted distinct i among keys ``{prefix}.{i}.…`` (e.g. the blocks of a ModuleList)."""
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.")
    return sorted({int(m.group(1)) for k in state_dict if (m := pattern.match(k))})


def _shape(state_dict: Mapping[str, torch.Tensor], key: str, role: str) -> torch.Size:
    try:
        return state_dict[key].shape
    except KeyError:
        raise CheckpointError(
            f'The {role} weights lack "{key}", so they are not an official StarGAN v2 {role}.'
        ) from None


def _trunk_config(state_dict: Mapping[str, torch.Tensor], trunk: str, role: str) -> dict[str, int]:
    """img_size / widths of the style encoder or discriminator trunk (``shared`` or ``main``).

    The trunk has log2(img_size) - 2 downsampling ResBlks, i.e. every Sequential entry that has a
    ``conv1`` is one of them, and it always ends on a 4x4 map.
    """
    indices = _block_indices(state_dict, trunk)
    res_blocks = [i for i in indices if f"{trunk}.{i}.conv1.weight" in state_dict]
    if not res_blocks:
        raise CheckpointError(f"The {role} weights have no residual blocks under {trunk!r}.")
    widths = [_shape(state_dict, f"{trunk}.{i}.conv2.weight", role)[0] for i in res_blocks]
    return {
        "img_size": 2 ** (len(res_blocks) + 2),
        "max_conv_dim": int(max(widths)),
        "dim_in": int(_shape(state_dict, f"{trunk}.0.weight", role)[0]),
    }


def _generator_config(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    role = "generator"
    if "hpf.filter" in state_dict:
        # Official kernel is [[-1]*3, [-1, 8, -1], [-1]*3] / w_hpf, so its centre gives w_hpf back.
        kernel = state_dict["hpf.filter"]
        if kernel.shape != (3, 3) or not float(kernel[1, 1]) > 0:
            raise CheckpointError(
                "The generator's hpf.filter is not the official 3x3 high-pass kernel."
            )
        w_hpf = float(round(_HPF_CENTRE / float(kernel[1, 1]), 6))
    else:
        w_hpf = 0
    blocks = _block_indices(state_dict, "encode")
    widths = [_shape(state_dict, f"encode.{i}.conv2.weight", role)[0] for i in blocks]
    # Encoder = downsampling blocks + 2 bottleneck blocks; official downsampling count is
    # log2(img_size) - 4, +1 with w_hpf > 0.
    num_downsamples = len(blocks) - 2
    img_size = 2 ** (num_downsamples + (3 if w_hpf > 0 else 4))
    return {
        "img_size": img_size,
        "style_dim": int(_shape(state_dict, "decode.0.norm1.fc.weight", role)[1]),
        "max_conv_dim": int(max(widths)) if widths else 512,
        "w_hpf": w_hpf,
        "dim_in": int(_shape(state_dict, "from_rgb.weight", role)[0]),
    }


def _mapping_config(state_dict: Mapping[str, torch.Tensor]) -> dict[str, int]:
    role = "mapping_network"
    heads = _block_indices(state_dict, "unshared")
    head_layers = _block_indices(state_dict, "unshared.0")
    if not heads or not head_layers:
        raise CheckpointError("The mapping_network weights have no per-domain MLP heads.")
    last_layer = head_layers[-1]
    first = _shape(state_dict, "shared.0.weight", role)
    return {
        "latent_dim": int(first[1]),
        "style_dim": int(_shape(state_dict, f"unshared.0.{last_layer}.weight", role)[0]),
        "num_domains": len(heads),
        "hidden_dim": int(first[0]),
    }


def _style_encoder_config(state_dict: Mapping[str, torch.Tensor]) -> dict[str, int]:
    role = "style_encoder"
    trunk = _trunk_config(state_dict, "shared", role)
    return {
        "img_size": trunk["img_size"],
        "style_dim": int(_shape(state_dict, "unshared.0.weight", role)[0]),
        "num_domains": len(_block_indices(state_dict, "unshared")),
        "max_conv_dim": trunk["max_conv_dim"],
        "dim_in": trunk["dim_in"],
    }


def _discriminator_config(state_dict: Mapping[str, torch.Tensor]) -> dict[str, int]:
    role = "discriminator"
    trunk = _trunk_config(state_dict, "main", role)
    last_conv = _block_indices(state_dict, "main")[-1]
    return {
        "img_size": trunk["img_size"],
        "num_domains": int(_shape(state_dict, f"main.{last_conv}.weight", role)[0]),
        "max_conv_dim": trunk["max_conv_dim"],
        "dim_in": trunk["dim_in"],
    }


def infer_config(state_dicts: Mapping[str, Mapping[str, torch.Tensor]]) -> dict[str, Any]:
    """Constructor kwargs for each network present, inferred from tensor shapes.

    Returns {"generator": {...}, "mapping_network": {...}, "style_encoder": {...},
    "discriminator": {...}} (only the roles present) plus "num_domains". Values are plain
    ints/floats, ready for config.json. Widths are returned explicitly (dim_in, max_conv_dim) so
    narrow non-official models rebuild exactly too.
    """
    inferers = {
        "generator": _generator_config,
        "mapping_network": _mapping_config,
        "style_encoder": _style_encoder_config,
        "discriminator": _discriminator_config,
    }
    config: dict[str, Any] = {
        role: inferers[role](state_dicts[role]) for role in NETWORK_CLASSES if role in state_dicts
    }

    # The generator is fully convolutional: with w_hpf = 0 its layout is the same for 16 and 32 px
    # (both get one downsampling block). The style encoder / discriminator trunk pins img_size.
    trunk_sizes = {config[r]["img_size"] for r in ("style_encoder", "discriminator") if r in config}
    if len(trunk_sizes) > 1:
        raise CheckpointError(
            "The style encoder and discriminator disagree on the image size "
            f"({sorted(trunk_sizes)})."
        )
    if trunk_sizes and "generator" in config:
        config["generator"]["img_size"] = trunk_sizes.pop()

    domain_counts = {r: config[r]["num_domains"] for r in config if "num_domains" in config[r]}
    if len(set(domain_counts.values())) > 1:
        raise CheckpointError(f"The networks disagree on the number of domains ({domain_counts}).")
    if domain_counts:
        config["num_domains"] = next(iter(domain_counts.values()))
    return config


def _check_layout(
    role: str, kwargs: dict[str, Any], state_dict: Mapping[str, torch.Tensor]
) -> None:
    """Build the network on the meta device and compare keys and shapes with the checkpoint."""
    try:
        with torch.device("meta"):  # shapes only: no memory, no init cost
            network = NETWORK_CLASSES[role](**kwargs)
    except ValueError as exc:
        raise CheckpointError(f"The {role} weights imply an unsupported layout ({exc}).") from exc
    detail = layout_mismatch(network.state_dict(), state_dict)
    if detail is None:
        return
    raise CheckpointError(
        f"The {role} weights do not match a StarGAN v2 {role} built with {kwargs}: the checkpoint "
        f"{detail}."
    )


def convert(path: str | Path, extras: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, dict[str, torch.Tensor]]]:
    """Load an official checkpoint and infer how to rebuild its networks.

    Returns (config, state_dicts): ``NETWORK_CLASSES[role](**config[role])`` then accepts
    ``state_dicts[role]`` with ``load_state_dict(strict=True)`` for every role present.
    """
    state_dicts = load_official(path, extras)
    config = infer_config(state_dicts)
    for role in NETWORK_CLASSES:
        if role in state_dicts:
            _check_layout(role, config[role], state_dicts[role])
    return config, state_dicts


# Domain names of the official releases, by number of domains (sorted folder order, as the official loader).
OFFICIAL_DOMAINS = {2: ["female", "male"], 3: ["cat", "dog", "wild"]}


def convert_to_folder(paths, out_dir, *, image_size: int | None = None, domains: list[str] | None = None, **options) -> Path:
    """``ganzoo convert stargan_v2 NETS_EMA.ckpt [NETS.ckpt] OUT_DIR``: write a ganzoo model folder.

    The first file gives the inference (EMA) networks; an optional ``*_nets.ckpt`` adds the
    training networks and the discriminator. Without it, the EMA weights serve as both.
    """
    if options:
        raise GanzooError(f"ganzoo convert stargan_v2 takes no option {sorted(options)[0]!r}; use --domains and --image-size.")
    if not 1 <= len(paths) <= 2:
        raise GanzooError("ganzoo convert stargan_v2 takes NETS_EMA.ckpt [NETS.ckpt] OUT_DIR.")
    extras: dict[str, Any] = {}
    config, ema = convert(paths[0], extras)
    raw = ema
    if len(paths) == 2:
        config2, raw = convert(paths[1])
        config.update({k: v for k, v in config2.items() if k not in config})
    num_domains = config.get("num_domains", 2)
    domains = list(domains) if domains else OFFICIAL_DOMAINS.get(num_domains, [f"domain{i}" for i in range(num_domains)])
    if len(domains) != num_domains:
        raise GanzooError(f"--domains names {len(domains)} domains but the weights have {num_domains}.")
    gen = config["generator"]
    size = image_size or gen["img_size"]
    derived = {"img_size", "num_domains", "style_dim"}
    networks = {role: {k: v for k, v in config[role].items() if k not in derived or role == "generator" and k == "style_dim"}
                for role in NETWORK_CLASSES if role in config}
    networks["generator"].pop("img_size", None)
    recipe = {"networks": networks, "data": {"image_size": size}}
    roles = [r for r in ("generator", "mapping_network", "style_encoder") if r in ema]
    # The CelebA-HQ release (w_hpf > 0) keeps its FAN under "fan": keep it whole, as a frozen network.
    frozen = {}
    if gen.get("w_hpf", 0) > 0 and isinstance(extras.get("fan"), Mapping):
        frozen["fan"] = fan_state_dict(extras["fan"], f"{paths[0]} (entry fan)")
    return save_converted(
        "stargan_v2",
        out_dir,
        domains=domains,
        recipe=recipe,
        state_dicts={role: raw[role] for role in raw},
        ema_state_dicts={role: ema[role] for role in roles},
        frozen_state_dicts=frozen,
    )


# --------------------------------------------------------------------------------------------------
# The face-alignment network (FAN) of the CelebA-HQ model
# --------------------------------------------------------------------------------------------------

FAN_FILE = "fan.safetensors"
_FAN_MARKER = "conv1.conv.weight"


def _fan_entries(raw: Any, path: Path) -> Mapping:
    """The FAN's state dict inside an official file: wing.ckpt ({'state_dict': ...}), a *_nets(_ema).ckpt
    with a ``fan`` entry, or a bare FAN state dict."""
    if isinstance(raw, Mapping):
        if isinstance(raw.get("state_dict"), Mapping):
            return raw["state_dict"]
        if isinstance(raw.get("fan"), Mapping):
            return raw["fan"]
        if any(isinstance(k, str) and _strip_module_prefix(k) == _FAN_MARKER for k in raw):
            return raw
    raise CheckpointError(
        f"{path} holds no FAN weights (neither a 'state_dict' as in wing.ckpt nor a 'fan' entry as in the "
        "CelebA-HQ 100000_nets_ema.ckpt); pass the official wing.ckpt."
    )


def fan_state_dict(state: Mapping, where: str) -> dict[str, torch.Tensor]:
    """``state`` cleaned to exactly our FAN's keys and shapes (extra keys are ignored as the official loader
    does; BatchNorm's ``num_batches_tracked`` counters, unused in eval mode, are filled in if absent)."""
    from .fan import FAN

    with torch.device("meta"):
        expected = FAN().state_dict()
    state = {_strip_module_prefix(k): v for k, v in state.items() if isinstance(k, str)}
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"The FAN weights in {where} are not all tensors; pass the official wing.ckpt.")
    cleaned = {}
    for key, meta in expected.items():
        if key not in state and key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.long)
        cleaned[key] = state.get(key)
    missing = [k for k, v in cleaned.items() if v is None]
    if missing:
        raise CheckpointError(f'The FAN weights in {where} lack "{missing[0]}"; they are not the official FAN (wing.ckpt).')
    detail = layout_mismatch(expected, cleaned)
    if detail:
        raise CheckpointError(f"The FAN weights in {where} do not fit the official FAN (they {detail}).")
    return cleaned


def load_fan_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """FAN weights from ``path``: a folder holding ``fan.safetensors`` (a pulled ``stargan_v2.celeba_hq`` model or
    the output of ``ganzoo convert stargan_v2_fan``), a ``.safetensors`` file, or an official checkpoint
    (``wing.ckpt`` or the CelebA-HQ ``100000_nets_ema.ckpt``), read with ``weights_only=True``."""
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_dir():
        if not (path / FAN_FILE).is_file():
            raise CheckpointError(f"{path} holds no {FAN_FILE}; pass the official wing.ckpt or a folder made by "
                                  "`ganzoo convert stargan_v2_fan wing.ckpt OUT` or `ganzoo pull stargan_v2.celeba_hq`.")
        path = path / FAN_FILE
    if path.suffix == ".safetensors" and path.is_file():
        try:
            state = load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same sentence
            raise CheckpointError(f"{path} is not a readable safetensors file ({exc}); re-convert the FAN weights.") from None
        return fan_state_dict(state, str(path))
    return fan_state_dict(_fan_entries(load_official_checkpoint(path), path), str(path))


def convert_fan_to_folder(paths, out_dir, **options) -> Path:
    """``ganzoo convert stargan_v2_fan wing.ckpt OUT_DIR``: the official FAN as ``OUT_DIR/fan.safetensors``.

    Use the folder as ``train.frozen_weights.fan`` or copy the file into a CelebA-HQ model folder.
    """
    from safetensors.torch import save_file

    if options:
        raise GanzooError(f"ganzoo convert stargan_v2_fan takes no option {sorted(options)[0]!r}.")
    if len(paths) != 1:
        raise GanzooError("ganzoo convert stargan_v2_fan takes one file, wing.ckpt, then OUT_DIR.")
    state = load_fan_weights(paths[0])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(out / FAN_FILE), metadata={"role": "fan", "variant": "frozen"})
    return out
