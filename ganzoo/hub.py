"""Model folders on the Hugging Face Hub: download, upload, model cards.

A Hub repo holds exactly a model folder (``config.json`` + ``<role>.safetensors``)
plus a model card (``README.md``) and the resolved recipe (``recipe.yaml``).
Downloads go through ``huggingface_hub`` (its cache, revisions, resumable
downloads, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and tokens); this module only
adds the ganzoo checks and one-sentence errors. The pretrained zoo (named
weight sets) is :mod:`ganzoo.zoo`.

``huggingface_hub`` is imported inside the functions: it reads ``HF_ENDPOINT``
and ``HF_HUB_OFFLINE`` once, at import, and ``ganzoo --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ganzoo.errors import CheckpointError, GanzooError

if TYPE_CHECKING:
    from ganzoo.zoo import PretrainedEntry

CARD_NAME = "README.md"
RECIPE_NAME = "recipe.yaml"
SOURCE_NAME = "source.json"  # where a converted zoo model came from (URL, sha256)
# Files a model folder never sends or needs for inference.
TRAIN_STATE_PATTERNS = ["train_state/*"]

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+", re.ASCII)  # used with fullmatch: no newline slips through "$"
#: The Hub's own rules for each half of org/name: no ".." or "--", no "." or "-" first or last, at most 96 characters.
_HUB_PART = re.compile(r"(?!.*(\.\.|--))[A-Za-z0-9_](?:[\w.-]{0,94}[A-Za-z0-9_])?", re.ASCII)
#: Seconds a Hub server may take to give its first answer (config.json, or the repo on upload) before ganzoo gives
#: up with one sentence; the environment variable GANZOO_HUB_TIMEOUT overrides it.
HUB_TIMEOUT = 30.0


class HubError(GanzooError):
    """A Hub repo or pretrained download cannot be used."""


# --------------------------------------------------------------------------- names


def split_hub_id(text: str, revision: str | None = None) -> tuple[str, str | None]:
    """``"org/name@rev"`` -> ``("org/name", "rev")``; an explicit ``revision`` must agree."""
    repo_id, at, rev = text.partition("@")
    if at:
        if not rev:
            raise HubError(f'"{text}" ends in "@" without a revision; write org/name@REVISION or leave the "@" out.')
        if revision is not None and revision != rev:
            raise HubError(f'"{text}" names revision {rev} but revision={revision} was also given; give one of them.')
        revision = rev
    if not valid_repo_id(repo_id):
        shown = repr(repo_id) if len(repo_id) <= 100 else f"{repo_id[:100]!r}... ({len(repo_id):,} characters)"
        raise HubError(f"{shown} is not a Hub repo id; write it as org/name (or org/name@revision), each part letters, "
                       "digits, '-', '_' or '.', without '..' or '--', and at most 96 characters.")
    if revision is not None and (not revision.strip() or any(ch.isspace() or ord(ch) < 32 for ch in revision)):
        raise HubError(f"The revision {revision[:100]!r} of {repo_id} is not a branch, tag or commit name (it holds "
                       "spaces or control characters); check it.")
    return repo_id, revision


def valid_repo_id(repo_id: str) -> bool:
    """``org/name`` as the Hub accepts it, checked here before the client sees it (``org/..``, a newline: no)."""
    if not _HUB_ID.fullmatch(repo_id):
        return False
    return all(_HUB_PART.fullmatch(part) for part in repo_id.split("/"))


def is_hub_id(text: str) -> bool:
    """``org/name[@rev]`` that is not an existing local path."""
    return not Path(text).exists() and valid_repo_id(text.partition("@")[0])


def hub_timeout() -> float:
    """:data:`HUB_TIMEOUT`, or the seconds in GANZOO_HUB_TIMEOUT."""
    raw = os.environ.get("GANZOO_HUB_TIMEOUT")
    if raw is None:
        return HUB_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise HubError(f"GANZOO_HUB_TIMEOUT={raw[:40]!r} is not a number of seconds from 0 to 86400; fix or unset it.")
    return value


def first_answer(call, repo_id: str, revision: str | None, *, what: str = "download"):
    """``call()`` (a Hub request), given up on after :func:`hub_timeout` seconds without an answer.

    A server that accepts the connection and never answers would otherwise keep the client in timeouts and
    retries for minutes; the call runs in a daemon thread, so a process that gives up does not wait for it.
    Retry warnings from the client stay quiet unless ``ganzoo --verbose``.
    """
    import threading

    from huggingface_hub import constants

    timeout = hub_timeout()
    outcome: dict[str, Any] = {}

    def target():
        try:
            with quiet_client():
                outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="ganzoo-hub", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        at = f"@{revision}" if revision else ""
        raise HubError(f"The Hub at {constants.ENDPOINT} did not answer the {what} of {repo_id}{at} within {timeout:g} s; "
                       "check the network (or HF_ENDPOINT), or raise GANZOO_HUB_TIMEOUT for a slow connection.")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@contextlib.contextmanager
def quiet_client() -> Iterator[None]:
    """huggingface_hub's warnings (retries, timeouts) stay out of the terminal unless ``ganzoo --verbose``."""
    import logging

    from ganzoo import console

    logger = logging.getLogger("huggingface_hub")
    if console.VERBOSE:
        yield
        return
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def resolve(name: str, *, revision: str | None = None, for_inference: bool = False) -> Path:
    """A local model folder for a zoo name or Hub id, downloading (and converting) if needed."""
    from ganzoo.zoo import is_pretrained_name, pull_pretrained

    if is_pretrained_name(name):
        if revision is not None:
            raise HubError(f"revision= applies to Hub repos; the pretrained name {name} pins its own source.")
        return pull_pretrained(name, for_inference=for_inference)
    repo_id, revision = split_hub_id(name, revision)
    return pull_repo(repo_id, revision, for_inference=for_inference)


# --------------------------------------------------------------------------- Hub downloads


@contextlib.contextmanager
def hub_errors(repo_id: str, revision: str | None, *, what: str = "download") -> Iterator[None]:
    """Turn huggingface_hub's exceptions into one-sentence HubErrors that say what to do next."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    at = f"@{revision}" if revision else ""
    try:
        yield
    except GatedRepoError:
        raise HubError(f"Hub repo {repo_id} is gated; accept its terms on the Hub and log in with `hf auth login`.") from None
    except RevisionNotFoundError:
        raise HubError(f"Hub repo {repo_id} has no revision {revision}; check the branch, tag or commit, or leave it out for main.") from None
    except RepositoryNotFoundError:
        # Some servers (mirrors) answer an unknown revision as an unknown repo: ask about main to tell them apart.
        if revision not in (None, "main") and _repo_exists(repo_id):
            raise HubError(f"Hub repo {repo_id} has no revision {revision}; check the branch, tag or commit, or leave it out for main.") from None
        raise HubError(f"Hub repo {repo_id} was not found at {constants.ENDPOINT}; check the name (private repos need `hf auth login`).") from None
    except LocalEntryNotFoundError:
        if constants.HF_HUB_OFFLINE:
            raise HubError(f"{repo_id}{at} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 forbids downloading; "
                           "unset HF_HUB_OFFLINE and pull it once with a network.") from None
        raise HubError(f"Cannot reach the Hub at {constants.ENDPOINT} and {repo_id}{at} is not cached; "
                       "check the network (or HF_ENDPOINT) and try again.") from None
    except OfflineModeIsEnabled:
        raise HubError(f"HF_HUB_OFFLINE=1 forbids the {what} of {repo_id}{at}; unset HF_HUB_OFFLINE to reach the Hub.") from None
    except EntryNotFoundError as exc:
        missing = getattr(exc, "filename", None) or "a file"
        raise HubError(f"Hub repo {repo_id}{at} lacks {missing}, so it is not a (complete) ganzoo model; check the repo id.") from None
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        raise HubError(f"The Hub at {constants.ENDPOINT} refused the {what} of {repo_id}{at} (HTTP {status}); "
                       "check your token's permissions or try again later.") from None
    except OSError as exc:  # connection refused, DNS, timeouts surface as OSError subclasses
        raise HubError(f"The {what} of {repo_id}{at} from {constants.ENDPOINT} failed ({type(exc).__name__}); "
                       "check the network (or HF_ENDPOINT) and try again.") from None


def _repo_exists(repo_id: str, revision: str = "main") -> bool:
    from huggingface_hub import HfApi

    try:
        first_answer(lambda: HfApi().model_info(repo_id, revision=revision), repo_id, revision)  # olah: only with a revision
        return True
    except Exception:
        return False


def pull_repo(repo_id: str, revision: str | None = None, *, for_inference: bool = False) -> Path:
    """Download a ganzoo model repo into the Hugging Face cache; return its snapshot folder.

    config.json comes first and is checked, so a repo of another library is refused before
    its weights are downloaded.
    """
    from huggingface_hub import hf_hub_download, snapshot_download

    from ganzoo.checkpoint import CONFIG_NAME, checked_model, read_config

    with hub_errors(repo_id, revision):
        try:
            etag = min(10.0, hub_timeout() / 3)  # so the client's own retries fit in the bound
            config_path = first_answer(lambda: hf_hub_download(repo_id, CONFIG_NAME, revision=revision, library_name="ganzoo",
                                                               etag_timeout=etag), repo_id, revision)
        except Exception as exc:
            from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, LocalEntryNotFoundError,
                                                RepositoryNotFoundError)

            # A missing file is a 404 on the Hub, but some mirrors answer it as an unknown repo:
            # if the repo answers at that revision, the file is what is missing.
            missing_file = isinstance(exc, EntryNotFoundError) and not isinstance(exc, LocalEntryNotFoundError)
            if missing_file or (isinstance(exc, RepositoryNotFoundError) and not isinstance(exc, GatedRepoError)
                                and _repo_exists(repo_id, revision or "main")):
                raise HubError(f"Hub repo {repo_id} has no config.json, so it is not a ganzoo model; "
                               "check the repo id (ganzoo repos are written by `ganzoo push`).") from None
            raise
    try:
        # the whole config.json is checked (its roles, kinds, domains too) before any weights are downloaded
        checked_model(Path(config_path).parent, read_config(Path(config_path).parent))
    except CheckpointError as exc:
        if "ganzoo-model" not in str(exc):  # a ganzoo config.json that is damaged: say what is wrong with it
            raise HubError(f"Hub repo {repo_id}{'@' + revision if revision else ''}: {exc}") from None
        raise HubError(f"Hub repo {repo_id} is not a ganzoo model (its config.json has no \"format\": \"ganzoo-model\"); "
                       "check the repo id.") from None
    ignore = None
    if for_inference:  # what translating needs: no training state, no discriminators
        from ganzoo.checkpoint import DISCRIMINATOR_PREFIX

        ignore = TRAIN_STATE_PATTERNS + [f"{DISCRIMINATOR_PREFIX}*.safetensors"]
    with hub_errors(repo_id, revision):
        with quiet_client():
            folder = snapshot_download(repo_id, revision=revision, library_name="ganzoo", ignore_patterns=ignore,
                                       etag_timeout=min(10.0, hub_timeout() / 3))
    return Path(folder)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- model card


def model_card(folder: Path, *, entry: PretrainedEntry | None = None, license: str | None = None,
               repo_id: str | None = None) -> str:
    """README.md for a model folder: YAML front matter (library_name, tags, license, datasets) + a body."""
    from huggingface_hub import ModelCardData

    from ganzoo.checkpoint import read_config

    config = read_config(folder)
    recipe = config.get("recipe") or {}
    data = recipe.get("data") or {}
    family = config.get("model", "?")
    datasets = list(entry.datasets) if entry else []
    if data.get("hub"):
        datasets.append(data["hub"])
    license = license or (entry.license if entry else None) or existing_license(folder) or "unknown"
    card = _family_card(family)
    card_data = ModelCardData(
        library_name="ganzoo",
        license=license,
        tags=["ganzoo", "image-to-image", "gan", family],
        datasets=datasets or None,
        pipeline_tag="image-to-image",
    )
    use_as = repo_id or (entry.name if entry else "ORG/NAME")
    domains = config.get("domains", [])
    lines = [
        f"# {entry.name if entry else repo_id or family} ({family})",
        "",
        entry.description if entry else f"A {family} model trained with [ganzoo](https://github.com/ganzoo/ganzoo).",
        "",
        f"- **Model family:** {family} (plugin `{config.get('plugin', '?')}`)",
        f"- **Domains:** {', '.join(domains)}",
        f"- **Image size:** {config.get('image_size')}×{config.get('image_size')}",
        f"- **Training steps:** {config.get('step', 0)}",
        f"- **License:** {license}",
    ]
    if card.get("paper"):
        lines += [f"- **Paper:** {card['paper']}" + (f" (the family's code: {card['license']})" if card.get("license") else "")]
    if entry and entry.url:
        lines += [f"- **Source:** converted from the official release {entry.url} ({entry.upstream}) with "
                  f"`ganzoo convert {entry.converter}`; the original license and attribution apply."]
    if license == "cc-by-nc-4.0":
        lines += ["", "**Non-commercial use only** (CC BY-NC 4.0), like the official code and weights it derives from."]
    lines += ["", "## How to use", "", "```bash", "pip install ganzoo", f"ganzoo pull {use_as}",
              f"ganzoo translate {use_as} --input photos/ --target {domains[-1] if domains else 'DOMAIN'} --out out/",
              "```", "", "```python", "import ganzoo, torch",
              f'model = ganzoo.load("{use_as}")',
              "out = model.translate(images, torch.tensor([0] * len(images)))   # images in [-1, 1], (N, 3, H, W)",
              "```"]
    metrics = _metrics(folder)
    if metrics:
        lines += ["", "## Metrics", "", "| metric | value | protocol |", "|---|---|---|"]
        for name, value in metrics.items():
            if isinstance(value, dict):
                protocol = ", ".join(f"{k}={v}" for k, v in value.get("protocol", {}).items())
                lines.append(f"| {name} | {value.get('value')} | {protocol} |")
            else:
                lines.append(f"| {name} | {value} | |")
    if recipe:
        import yaml

        lines += ["", "## Recipe", "", "The resolved recipe (also in `recipe.yaml`; `ganzoo run recipe.yaml` trains it again):",
                  "", "```yaml", yaml.safe_dump(recipe, sort_keys=False).rstrip(), "```"]
    citation = (entry.citation if entry else None) or card.get("citation")
    lines += ["", "## Citation", "", "```bibtex", citation or "% see the model family's paper", "```"]
    return f"---\n{card_data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n"


def _family_card(family: str) -> dict[str, Any]:
    """What the family's model class declares for cards (citation, licence, paper); empty when it is not installed."""
    from ganzoo.plugins import get_registry

    try:
        cls = get_registry().get("models", family)
    except GanzooError:
        return {}
    return {"citation": cls.citation, "paper": cls.paper, "license": None if cls.license == "unknown" else cls.license}


def _metrics(folder: Path) -> dict[str, Any]:
    """``metrics.json`` beside config.json: {name: {"value": v, "protocol": {...}}} (optional)."""
    path = folder / "metrics.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (json.JSONDecodeError, OSError):
        return {}


def existing_license(folder: Path) -> str | None:
    """The license in a folder's own model card (e.g. a converted zoo model keeps CC BY-NC 4.0)."""
    from huggingface_hub import ModelCard

    path = folder / CARD_NAME
    if not path.is_file():
        return None
    try:
        return ModelCard.load(path).data.license
    except Exception:
        return None


# --------------------------------------------------------------------------- push


def push(model_dir: str | Path, repo_id: str, *, private: bool = False, revision: str | None = None,
         commit_message: str | None = None, license: str | None = None, with_train_state: bool = False) -> str:
    """Upload a model folder (or a run directory's latest checkpoint) with a model card and recipe.yaml.

    Returns the commit URL. The upload is staged in a temporary folder, so the model folder is never changed.
    """
    from huggingface_hub import HfApi

    from ganzoo.checkpoint import read_config, resolve_model_folder

    folder = resolve_model_folder(model_dir)
    config = read_config(folder)
    repo_id, revision = split_hub_id(repo_id, revision)
    api = HfApi(library_name="ganzoo")
    with tempfile.TemporaryDirectory(prefix="ganzoo-push-") as staging_root:
        staging = Path(staging_root) / "repo"
        stage_folder(folder, staging, skip=() if with_train_state else ("train_state",))
        (staging / CARD_NAME).write_text(model_card(folder, license=license, repo_id=repo_id), encoding="utf-8")
        if config.get("recipe"):
            import yaml

            (staging / RECIPE_NAME).write_text(yaml.safe_dump(config["recipe"], sort_keys=False), encoding="utf-8")
        with hub_errors(repo_id, revision, what="upload"):
            first_answer(lambda: api.create_repo(repo_id, private=private, exist_ok=True), repo_id, revision, what="upload")
            if revision not in (None, "main"):
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            info = api.upload_folder(repo_id=repo_id, folder_path=staging, revision=revision,
                                     commit_message=commit_message or f"Upload {config['model']} model with ganzoo")
    return info.commit_url


def _link_allowed(link: Path, folder: Path) -> bool:
    """A symlink in a model folder may point inside it, or (a folder pulled into the Hub cache) into the cached
    repo's own ``blobs/``; nothing else."""
    from ganzoo.checkpoint import inside

    if inside(link, folder):
        return True
    folder = folder.resolve()
    return folder.parent.name == "snapshots" and inside(link, folder.parent.parent / "blobs")


def stage_folder(folder: Path, staging: Path, *, skip: tuple[str, ...] = ()) -> None:
    """Copy the regular files of a model folder into ``staging`` for an upload; a symlink out of the folder, or
    anything but a file or folder (a FIFO, a device), is refused with a sentence, never followed."""
    folder = Path(folder)
    for root, dirs, files in os.walk(folder, followlinks=False):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not (here == folder and d in skip))
        for name in [*dirs, *sorted(files)]:
            path = here / name
            if path.is_symlink() and not _link_allowed(path, folder):
                raise HubError(f"{path} is a symbolic link to {os.path.realpath(path)}, outside the model folder {folder}; "
                               "push uploads only the folder's own files, so replace the link with a copy or remove it.")
            if path.is_symlink() and path.is_dir():
                raise HubError(f"{path} is a symbolic link to a folder; push uploads only the folder's own files, so "
                               "replace the link with a copy or remove it.")
            if not (path.is_file() or path.is_dir()):
                raise HubError(f"{path} is neither a file nor a folder (a FIFO, socket or device); remove it before pushing.")
        rel = here.relative_to(folder)
        try:
            (staging / rel).mkdir(parents=True, exist_ok=True)
            for name in files:
                shutil.copyfile(here / name, staging / rel / name)
        except OSError as exc:
            from ganzoo.output_paths import reason

            raise HubError(f"Cannot stage {folder} for the upload in {staging.parent} ({reason(exc)}); free some space "
                           "there or point TMPDIR at a writable folder with room for the model.") from None


def copy_to(folder: Path, local_dir: Path) -> Path:
    """Copy a pulled model folder to ``local_dir`` (new or empty), all at once: beside it, then renamed."""
    local_dir = Path(local_dir)
    if local_dir.exists() and (not local_dir.is_dir() or any(local_dir.iterdir())):
        raise HubError(f"--local-dir {local_dir} already exists and is not empty; choose a new folder.")
    local_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = local_dir.with_name(f".{local_dir.name}.tmp-{os.getpid()}")
    try:
        shutil.copytree(folder, tmp)  # follows the cache's symlinks: real files in the copy
        if local_dir.exists():
            local_dir.rmdir()
        os.replace(tmp, local_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return local_dir
