"""Model folders on the Hugging Face Hub, and the pretrained zoo.

A Hub repo holds exactly a model folder (``config.json`` + ``<role>.safetensors``)
plus a model card (``README.md``) and the resolved recipe (``recipe.yaml``).
Downloads go through ``huggingface_hub`` (its cache, revisions, resumable
downloads, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and tokens); this module only
adds the ganzoo checks, the zoo index and one-sentence errors.

Zoo entries that point at an official release (a URL, not a Hub repo) are
downloaded once, checked against their sha256, converted with the family's
converter and cached under ``$HF_HOME/ganzoo/<name>/model``.

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
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

from ganzoo.errors import CheckpointError, GanzooError, did_you_mean

INDEX_ENV = "GANZOO_PRETRAINED_INDEX"  # path of another index file (tests, private zoos)
CARD_NAME = "README.md"
RECIPE_NAME = "recipe.yaml"
SOURCE_NAME = "source.json"  # where a converted zoo model came from (URL, sha256)
# Files a model folder never sends or needs for inference.
TRAIN_STATE_PATTERNS = ["train_state/*"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class HubError(GanzooError):
    """A Hub repo or pretrained download cannot be used."""


# --------------------------------------------------------------------------- the zoo index


@dataclass
class PretrainedEntry:
    """One named weight set (``family.tag``): a Hub repo, or an official release to convert."""

    name: str
    family: str
    description: str = ""
    repo: str | None = None
    revision: str | None = None
    url: str | None = None
    sha256: str | None = None
    archive_members: list[str] = field(default_factory=list)
    converter: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    license: str = "unknown"
    datasets: list[str] = field(default_factory=list)
    upstream: str | None = None
    citation: str | None = None

    @property
    def source(self) -> str:
        return self.repo or self.url or "?"


def pretrained_index() -> dict[str, PretrainedEntry]:
    """The zoo: ``ganzoo/pretrained.json``, or the file named by ``$GANZOO_PRETRAINED_INDEX``."""
    override = os.environ.get(INDEX_ENV)
    if override:
        path = Path(override)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise HubError(f"{INDEX_ENV}={override} cannot be read ({exc.strerror}); point it at a pretrained index JSON file.") from None
    else:
        text = resources.files("ganzoo").joinpath("pretrained.json").read_text(encoding="utf-8")
        path = Path("ganzoo/pretrained.json")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HubError(f"The pretrained index {path} is not valid JSON ({exc}); fix the file.") from None
    entries = {}
    for name, spec in raw.items():
        if name.startswith("_"):
            continue
        try:
            entry = PretrainedEntry(name=name, **spec)
        except TypeError as exc:
            raise HubError(f"Pretrained entry {name} in {path} is malformed ({exc}); fix the index.") from None
        if bool(entry.repo) == bool(entry.url) or (entry.url and not entry.converter):
            raise HubError(f"Pretrained entry {name} in {path} needs either repo or url + converter; fix the index.")
        entries[name] = entry
    return entries


def is_pretrained_name(text: str) -> bool:
    """``family.tag`` with a family the index knows (so typos get a did-you-mean, not 'no such folder')."""
    if "/" in text or "." not in text or Path(text).exists():
        return False
    families = {entry.family for entry in pretrained_index().values()}
    return text.split(".", 1)[0] in families


def pretrained_entry(name: str) -> PretrainedEntry:
    index = pretrained_index()
    if name not in index:
        raise HubError(f'There is no pretrained model "{name}".{did_you_mean(name, index)} See `ganzoo list --pretrained`.')
    return index[name]


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
    if not _HUB_ID.match(repo_id):
        raise HubError(f'"{repo_id}" is not a Hub repo id; write it as org/name (or org/name@revision).')
    return repo_id, revision


def is_hub_id(text: str) -> bool:
    """``org/name[@rev]`` that is not an existing local path."""
    return not Path(text).exists() and bool(_HUB_ID.match(text.partition("@")[0]))


def resolve(name: str, *, revision: str | None = None, for_inference: bool = False) -> Path:
    """A local model folder for a zoo name or Hub id, downloading (and converting) if needed."""
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
        HfApi().model_info(repo_id, revision=revision)  # olah serves model_info only with a revision
        return True
    except Exception:
        return False


def pull_repo(repo_id: str, revision: str | None = None, *, for_inference: bool = False) -> Path:
    """Download a ganzoo model repo into the Hugging Face cache; return its snapshot folder.

    config.json comes first and is checked, so a repo of another library is refused before
    its weights are downloaded.
    """
    from huggingface_hub import hf_hub_download, snapshot_download

    from ganzoo.checkpoint import CONFIG_NAME, read_config

    with hub_errors(repo_id, revision):
        try:
            config_path = hf_hub_download(repo_id, CONFIG_NAME, revision=revision, library_name="ganzoo")
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
        read_config(Path(config_path).parent)
    except CheckpointError:
        raise HubError(f"Hub repo {repo_id} is not a ganzoo model (its config.json has no \"format\": \"ganzoo-model\"); "
                       "check the repo id.") from None
    with hub_errors(repo_id, revision):
        folder = snapshot_download(repo_id, revision=revision, library_name="ganzoo",
                                   ignore_patterns=TRAIN_STATE_PATTERNS if for_inference else None)
    return Path(folder)


# --------------------------------------------------------------------------- official releases


def pretrained_cache_dir(name: str) -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "ganzoo" / name


def pull_pretrained(name: str, *, for_inference: bool = False, console=None) -> Path:
    """The local model folder of a zoo entry: a Hub repo, or an official release converted once."""
    entry = pretrained_entry(name)
    if entry.repo:
        return pull_repo(entry.repo, entry.revision, for_inference=for_inference)

    from huggingface_hub import constants

    cache = pretrained_cache_dir(name)
    final = cache / "model"
    if (final / "config.json").is_file():
        return final
    if constants.HF_HUB_OFFLINE:
        raise HubError(f"{name} has not been downloaded yet and HF_HUB_OFFLINE=1 forbids downloading; "
                       f"unset HF_HUB_OFFLINE and run `ganzoo pull {name}` once with a network.")
    cache.mkdir(parents=True, exist_ok=True)
    download = download_release(entry, cache / "download", console=console)
    work = Path(tempfile.mkdtemp(dir=cache, prefix=".convert-"))
    try:
        inputs = _unpack(entry, download, work / "files")
        converter = _converter(entry)
        model_dir = converter(inputs, work / "model", **entry.options)
        (Path(model_dir) / CARD_NAME).write_text(model_card(Path(model_dir), entry=entry), encoding="utf-8")
        source = {"name": name, "url": entry.url, "sha256": sha256_of(download), "converter": entry.converter,
                  "options": entry.options, "license": entry.license}
        (Path(model_dir) / SOURCE_NAME).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
        os.replace(model_dir, final)  # the cache holds a complete folder or none
    finally:
        shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(cache / "download", ignore_errors=True)  # converted once: the raw release is no longer needed
    return final


def _converter(entry: PretrainedEntry):
    from ganzoo.plugins import get_registry

    return get_registry().get("converters", entry.converter)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_release(entry: PretrainedEntry, folder: Path, *, console=None) -> Path:
    """Download ``entry.url`` into ``folder`` (resuming a ``.part`` file) and verify its sha256.

    A hash mismatch deletes the file: a corrupt or changed release is never converted.
    Without a published hash the first download's hash is printed so it can be recorded.
    """
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    console = console or Console(stderr=True)
    folder.mkdir(parents=True, exist_ok=True)
    filename = Path(urllib.request.urlparse(entry.url).path).name or "release"
    target = folder / filename
    part = folder / f"{filename}.part"
    done = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(entry.url, headers={"User-Agent": "ganzoo", **({"Range": f"bytes={done}-"} if done else {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            if done and response.status != 206:  # the server ignored the range: start over
                done = 0
            total = response.length + done if response.length is not None else None
            with open(part, "ab" if done else "wb") as fh, Progress(
                "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                console=console, transient=True,
            ) as progress:
                task = progress.add_task(f"{entry.name}: {filename}", total=total, completed=done)
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    fh.write(chunk)
                    progress.advance(task, len(chunk))
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and done:  # already complete
            pass
        else:
            raise HubError(f"The official release of {entry.name} at {entry.url} answered HTTP {exc.code}; "
                           "the link may be dead: report it, or convert a copy you have with `ganzoo convert`.") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HubError(f"Downloading {entry.name} from {entry.url} failed ({reason}); check the network and run "
                       "`ganzoo pull` again (it resumes).") from None
    digest = sha256_of(part)
    if entry.sha256 and digest != entry.sha256.lower():
        part.unlink()
        raise HubError(f"The download of {entry.name} has sha256 {digest[:12]}… but the index expects {entry.sha256[:12]}…; "
                       "the file was corrupted or changed upstream, so it was deleted: retry, and report it if it persists.")
    if not entry.sha256:
        console.print(f"[yellow]warning:[/] no sha256 is published for {entry.name}; the download has sha256 {digest} "
                      "(recorded in the model folder's source.json).", highlight=False)
    os.replace(part, target)
    return target


def _unpack(entry: PretrainedEntry, download: Path, folder: Path) -> list[Path]:
    """The converter's input files: the download itself, or the named members of a zip archive."""
    folder.mkdir(parents=True)
    if not entry.archive_members:
        return [download]
    if not zipfile.is_zipfile(download):
        raise HubError(f"The release of {entry.name} is not a zip archive, but the index lists members to take from one; fix the index.")
    found = []
    with zipfile.ZipFile(download) as archive:
        by_basename = {Path(info.filename).name: info for info in archive.infolist() if not info.is_dir()}
        for member in entry.archive_members:
            if member not in by_basename:
                raise HubError(f"The release archive of {entry.name} has no {member}; the upstream release changed: report it.")
            target = folder / member  # basename only: archive paths never escape the folder
            with archive.open(by_basename[member]) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            found.append(target)
    return found


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
    citation = entry.citation if entry else None
    lines += ["", "## Citation", "", "```bibtex", citation or _FAMILY_CITATIONS.get(family, "% see the model family's paper"), "```"]
    return f"---\n{card_data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n"


_FAMILY_CITATIONS = {
    "stargan": "@inproceedings{choi2018stargan, title={StarGAN: Unified Generative Adversarial Networks for Multi-Domain "
               "Image-to-Image Translation}, author={Choi, Yunjey and others}, booktitle={CVPR}, year={2018}}",
    "stargan_v2": "@inproceedings{choi2020starganv2, title={StarGAN v2: Diverse Image Synthesis for Multiple Domains}, "
                  "author={Choi, Yunjey and Uh, Youngjung and Yoo, Jaejun and Ha, Jung-Woo}, booktitle={CVPR}, year={2020}}",
    "cyclegan": "@inproceedings{zhu2017unpaired, title={Unpaired Image-to-Image Translation using Cycle-Consistent "
                "Adversarial Networks}, author={Zhu, Jun-Yan and Park, Taesung and Isola, Phillip and Efros, Alexei A}, "
                "booktitle={ICCV}, year={2017}}",
    "pix2pix": "@inproceedings{isola2017image, title={Image-to-Image Translation with Conditional Adversarial Networks}, "
               "author={Isola, Phillip and Zhu, Jun-Yan and Zhou, Tinghui and Efros, Alexei A}, booktitle={CVPR}, year={2017}}",
}


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
        ignore = None if with_train_state else shutil.ignore_patterns("train_state")
        shutil.copytree(folder, staging, ignore=ignore)
        (staging / CARD_NAME).write_text(model_card(folder, license=license, repo_id=repo_id), encoding="utf-8")
        if config.get("recipe"):
            import yaml

            (staging / RECIPE_NAME).write_text(yaml.safe_dump(config["recipe"], sort_keys=False), encoding="utf-8")
        with hub_errors(repo_id, revision, what="upload"):
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision not in (None, "main"):
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            info = api.upload_folder(repo_id=repo_id, folder_path=staging, revision=revision,
                                     commit_message=commit_message or f"Upload {config['model']} model with ganzoo")
    return info.commit_url


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


def print_pretrained(console) -> None:
    """``ganzoo list --pretrained``: the zoo, with where each entry comes from and whether it is cached."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    table.add_column("name", style="bold")
    table.add_column("license", style="magenta")
    table.add_column("source", style="cyan", overflow="fold")
    table.add_column("cached")
    for name, entry in sorted(pretrained_index().items()):
        cached = entry.url is not None and (pretrained_cache_dir(name) / "model" / "config.json").is_file()
        source = entry.repo or f"official release ({entry.converter} converter)"
        table.add_row(name, entry.license, source, "yes" if cached else "")
    console.print(table)
    console.print("download with: ganzoo pull NAME   (or use NAME directly in ganzoo translate / ganzoo.load)", highlight=False)
