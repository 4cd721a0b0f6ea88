"""Read official StarGAN v1 checkpoints (yunjey/stargan) into a ganzoo model folder.

The official solver saves ``{iter}-G.ckpt`` and ``{iter}-D.ckpt``, each a bare
``state_dict()`` written by ``torch.save``. Our networks use the same keys
(instance-norm running statistics included), so conversion is: load safely,
infer the constructor arguments from the tensor shapes, check the layout, and
write safetensors with ``ganzoo.checkpoint.save_converted``.

    ganzoo convert stargan 200000-G.ckpt 200000-D.ckpt out/stargan_celeba_128

Files are opened only with ``torch.load(weights_only=True)``: a file that needs
arbitrary unpickling (code) is refused, never executed. What the shapes cannot
tell is taken from options: ``--domains`` (attribute or domain names, default
the official five CelebA attributes for 5 labels, the RaFD expressions for 8),
``--image-size`` (needed only without D.ckpt; default 128) and
``--option dataset=celeba|rafd|imagefolder|both`` (the label kind; default from the names).

``dataset=both`` is the official joint CelebA + RaFD model (``--dataset Both``): G's label
has the 2-dim mask vector on top of D's class outputs (5 + 8 + 2 = 15 against 13); the
names default to the five CelebA attributes then the eight RaFD expressions, and a D whose
class count is G's minus 2 marks a joint pair even without the option.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ganzoo.api import CheckpointError, GanzooError, layout_mismatch, load_official_checkpoint, save_converted

from .data import CELEBA_ATTRIBUTES, DEFAULT_ATTRIBUTES, RAFD_EXPRESSIONS
from .networks import Discriminator, Generator

# Keys that tell a G file from a D file.
_GENERATOR_MARKER = "main.0.weight"
_DISCRIMINATOR_MARKER = "conv2.weight"


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A bare official state_dict of tensors, loaded without running pickled code."""
    path = Path(path)
    raw = load_official_checkpoint(path)
    if not isinstance(raw, Mapping) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in raw.items()):
        raise CheckpointError(f"{path} is not a state_dict of tensors; pass the official {{iter}}-G.ckpt / {{iter}}-D.ckpt files.")
    # DataParallel prefixes, should a retrained file carry them.
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in raw.items()}


def _shape(state: Mapping[str, torch.Tensor], key: str, role: str) -> torch.Size:
    if key not in state:
        raise CheckpointError(f'The {role} weights lack "{key}", so they are not an official StarGAN {role}.')
    return state[key].shape


def generator_config(state: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """conv_dim, c_dim, repeat_num of an official G: first conv is (conv_dim, 3 + c_dim, 7, 7)."""
    first = _shape(state, "main.0.weight", "generator")
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"main\.(\d+)\.main\.", k))}
    return {"conv_dim": int(first[0]), "c_dim": int(first[1]) - 3, "repeat_num": len(blocks)}


def discriminator_config(state: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """image_size, conv_dim, c_dim, repeat_num of an official D; conv2's kernel is image_size / 2**repeat_num."""
    convs = {int(m.group(1)) for k in state if (m := re.match(r"main\.(\d+)\.weight$", k))}
    classifier = _shape(state, "conv2.weight", "discriminator")
    repeat_num = len(convs)
    return {
        "image_size": int(classifier[-1]) * 2**repeat_num,
        "conv_dim": int(_shape(state, "main.0.weight", "discriminator")[0]),
        "c_dim": int(classifier[0]),
        "repeat_num": repeat_num,
    }


def _check_layout(role: str, network_cls, kwargs: dict[str, int], state: Mapping[str, torch.Tensor]) -> None:
    with torch.device("meta"):  # shapes only
        network = network_cls(**kwargs)
    detail = layout_mismatch(network.state_dict(), state)
    if detail:
        raise CheckpointError(f"The {role} weights are not an official StarGAN {role} with {kwargs}: the file {detail}.")


def _default_names(c_dim: int) -> list[str]:
    if c_dim == len(DEFAULT_ATTRIBUTES):
        return list(DEFAULT_ATTRIBUTES)
    if c_dim == len(RAFD_EXPRESSIONS):
        return list(RAFD_EXPRESSIONS)
    raise GanzooError(f"The checkpoint has {c_dim} labels; name them with --domains A,B,... (in training order).")


def convert(paths, out_dir, *, image_size: int | None = None, domains: list[str] | None = None, net: str | None = None,
            **options: Any) -> Path:
    """Convert ``G.ckpt`` [``D.ckpt``] (either order) into a model folder at ``out_dir``."""
    if net is not None:
        raise GanzooError("StarGAN checkpoints need no --net; the layout is read from the tensor shapes.")
    unknown = set(options) - {"dataset"}
    if unknown:
        raise GanzooError(f"Unknown stargan converter option {sorted(unknown)[0]}; the only --option is dataset=celeba|rafd|imagefolder|both.")
    dataset = options.get("dataset")
    joint = dataset in ("both", "celeba_rafd")
    if not 1 <= len(paths) <= 2:
        raise GanzooError("Give the official G.ckpt and optionally D.ckpt, then the output folder.")
    states: dict[str, dict[str, torch.Tensor]] = {}
    for path in paths:
        state = load_state_dict(path)
        role = "discriminator" if _DISCRIMINATOR_MARKER in state else "generator" if _GENERATOR_MARKER in state else None
        if role is None or role in states:
            raise CheckpointError(f"{path} is not an official StarGAN G or D state_dict (or the same kind was given twice).")
        states[role] = state
    if "generator" not in states:
        raise CheckpointError("No generator among the files; pass the official {iter}-G.ckpt (and optionally {iter}-D.ckpt).")

    g_kwargs = generator_config(states["generator"])
    _check_layout("generator", Generator, g_kwargs, states["generator"])
    d_kwargs = None
    if "discriminator" in states:
        d_kwargs = discriminator_config(states["discriminator"])
        _check_layout("discriminator", Discriminator, d_kwargs, states["discriminator"])
        joint = joint or (dataset is None and d_kwargs["c_dim"] == g_kwargs["c_dim"] - 2)
        if d_kwargs["c_dim"] != g_kwargs["c_dim"] - (2 if joint else 0):
            what = " (a joint model's G has D's labels plus the 2-dim mask)" if joint else ""
            raise CheckpointError(f"G has {g_kwargs['c_dim']} labels but D classifies {d_kwargs['c_dim']}{what}; they are not one model.")
        if image_size is not None and image_size != d_kwargs["image_size"]:
            raise GanzooError(f"--image-size {image_size} disagrees with the discriminator, which was built for {d_kwargs['image_size']}.")
        image_size = d_kwargs["image_size"]

    c_dim = g_kwargs["c_dim"] - (2 if joint else 0)
    if joint and not domains and c_dim == len(DEFAULT_ATTRIBUTES) + len(RAFD_EXPRESSIONS):
        names = DEFAULT_ATTRIBUTES + RAFD_EXPRESSIONS
    else:
        names = list(domains) if domains else _default_names(c_dim)
    if len(names) != c_dim:
        mask = " (plus the 2-dim mask vector)" if joint else ""
        raise GanzooError(f"--domains names {len(names)} labels but the checkpoint has {c_dim}{mask}.")
    data: dict[str, Any] = {}
    if joint:
        # The CelebA attributes come first, then the RaFD expressions (official label order).
        count = next((i for i, name in enumerate(names) if name not in CELEBA_ATTRIBUTES), len(names))
        if not 0 < count < len(names):
            raise GanzooError("A joint (dataset=both) model's --domains must list CelebA attributes first, then the RaFD "
                              "expressions (default: Black_Hair,Blond_Hair,Brown_Hair,Male,Young,angry,...,surprised).")
        dataset = "celeba_rafd"
        data = {"selected_attrs": names[:count], "expressions": names[count:]}
    dataset = dataset or ("celeba" if all(n in CELEBA_ATTRIBUTES for n in names) else
                          "rafd" if names == RAFD_EXPRESSIONS else "imagefolder")

    networks: dict[str, dict[str, int]] = {"generator": {"conv_dim": g_kwargs["conv_dim"], "repeat_num": g_kwargs["repeat_num"]}}
    if d_kwargs is not None:
        networks["discriminator"] = {"conv_dim": d_kwargs["conv_dim"], "repeat_num": d_kwargs["repeat_num"]}
    recipe = {
        "networks": networks,
        "data": {"name": dataset, "image_size": int(image_size or 128), **(data or {"domains": names})},
    }

    return save_converted("stargan", out_dir, domains=names, recipe=recipe, state_dicts=states)
