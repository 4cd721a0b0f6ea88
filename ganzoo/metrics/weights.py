"""Where the metrics' pretrained networks come from.

A network's weights come, in this order, from the file the user names (``--fid-weights`` and
friends), an environment variable, or the file the usual tools already cached (torch.hub's
``checkpoints/`` folder, where pytorch-fid, torchvision and lpips keep them). A name may also be
a Hugging Face Hub file, ``hf://ORG/REPO[@REVISION]/FILE``, read from the Hugging Face cache (and
fetched into it only when the user named it, the Hub is reachable and HF_HUB_OFFLINE is unset).
Nothing else downloads. If no file is found the metric is unavailable and says how to provide
one; it is never silently computed with another network.

``"random"`` is accepted on purpose, for tests and smoke runs: a randomly initialised
network of the exact architecture. Every number computed with it is stamped as such.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ganzoo.errors import CheckpointError
from ganzoo.hub import sha256_of

RANDOM = "random"
HF_PREFIX = "hf://"


@dataclass(frozen=True)
class WeightSpec:
    """One pretrained network a metric needs."""

    key: str  # short name used in messages and stamps
    what: str  # what the file is, for messages
    env: str  # environment variable naming the file
    cache_name: str  # file name in torch.hub's checkpoints folder
    option: str  # CLI option naming the file
    url: str  # where users can get it (printed, never fetched)


FID_INCEPTION = WeightSpec(
    key="pt_inception-2015-12-05",
    what="the FID Inception-v3 weights (pytorch-fid's pt_inception-2015-12-05)",
    env="GANZOO_FID_WEIGHTS",
    cache_name="pt_inception-2015-12-05-6726825d.pth",
    option="--fid-weights",
    url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
)
TORCHVISION_INCEPTION = WeightSpec(
    key="inception_v3_google",
    what="torchvision's ImageNet Inception-v3 weights (the ImageNet classifier some papers used as their FID feature net)",
    env="GANZOO_TV_INCEPTION_WEIGHTS",
    cache_name="inception_v3_google-0cc3c7bd.pth",
    option="--fid-weights",
    url="https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
)
ALEXNET = WeightSpec(
    key="alexnet-owt",
    what="torchvision's ImageNet AlexNet weights (the LPIPS backbone)",
    env="GANZOO_LPIPS_BACKBONE",
    cache_name="alexnet-owt-7be5be79.pth",
    option="--lpips-weights",
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
)


class WeightsUnavailable(CheckpointError):
    """The weights a metric needs are not on this machine (the metric is reported as n/a)."""


@dataclass(frozen=True)
class ResolvedWeights:
    path: Path | None  # None for RANDOM
    source: str  # "--fid-weights", "$GANZOO_FID_WEIGHTS", "torch.hub cache" or "random"
    sha256: str | None

    @property
    def is_random(self) -> bool:
        return self.path is None

    def stamp(self, spec: WeightSpec) -> str:
        if self.path is None:
            return f"{spec.key}: RANDOM INIT (smoke test only; not comparable with anything)"
        return f"{self.path.name} sha256:{self.sha256[:12]}"


def torch_hub_checkpoints() -> Path:
    """torch.hub's cache of downloaded weights (``$TORCH_HOME/hub/checkpoints``), without importing torch."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")), "torch")
    return Path(torch_home) / "hub" / "checkpoints"


def resolve_weights(spec: WeightSpec, given: str | os.PathLike | None = None) -> ResolvedWeights:
    """The weights file for ``spec``: ``given``, then ``$spec.env``, then torch.hub's cache."""
    candidates = []
    if given is not None:
        candidates.append((str(given), spec.option))
    elif os.environ.get(spec.env):
        candidates.append((os.environ[spec.env], f"${spec.env}"))
    for value, source in candidates:
        if value == RANDOM:
            return ResolvedWeights(None, RANDOM, None)
        if value.startswith(HF_PREFIX):
            path = _from_hub(value, source)
            return ResolvedWeights(path, f"{source} (Hugging Face Hub cache)", sha256_of(path))
        path = Path(value).expanduser()
        if not path.is_file():
            raise CheckpointError(f"{source} names {path}, which is not a file; give the path of {spec.what}.")
        return ResolvedWeights(path, source, sha256_of(path))
    cached = torch_hub_checkpoints() / spec.cache_name
    if cached.is_file():
        return ResolvedWeights(cached, "torch.hub cache", sha256_of(cached))
    raise WeightsUnavailable(
        f"{spec.what} are not on this machine (looked at {spec.option}, ${spec.env} and {cached}); "
        f"download {spec.url} once and pass it with {spec.option} or put it in {cached.parent}."
    )


def _from_hub(value: str, source: str) -> Path:
    """``hf://ORG/REPO[@REVISION]/FILE``: the file from the Hugging Face cache (fetched there if the Hub is reachable
    and HF_HUB_OFFLINE is not set)."""
    from huggingface_hub import hf_hub_download

    from ganzoo.hub import hub_errors, split_hub_id

    parts = value[len(HF_PREFIX):].split("/")
    if len(parts) < 3 or not all(parts):
        raise CheckpointError(f'{source} "{value}" is not a Hub file; write hf://ORG/REPO/FILE (or hf://ORG/REPO@REVISION/FILE).')
    repo_id, revision = split_hub_id(f"{parts[0]}/{parts[1]}")
    with hub_errors(repo_id, revision):
        return Path(hf_hub_download(repo_id, "/".join(parts[2:]), revision=revision))


def read_state_dict(path: Path) -> dict:
    """A state dict from ``.safetensors`` or a PyTorch file (read with weights_only=True: never code)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - a broken file is a user error, named below
            raise CheckpointError(f"{path} is not a readable safetensors file ({exc}).") from None
    from ganzoo.checkpoint import load_official_checkpoint

    state = load_official_checkpoint(path)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state dict (found {type(state).__name__}).")
    return state


def load_into(net, state: dict, path: Path, what: str) -> None:
    """``net.load_state_dict(state)`` with one sentence when the layout is not ``what``'s."""
    from ganzoo.checkpoint import layout_mismatch

    problem = layout_mismatch(net.state_dict(), state)
    if problem:
        raise CheckpointError(f"{path} is not {what}: {problem}.")
    net.load_state_dict(state)
