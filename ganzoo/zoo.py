"""The pretrained zoo: named weight sets (``family.tag``) that plugins register.

Each plugin registers its own entries under the ``pretrained`` registry kind
(a :class:`PretrainedEntry`, or a dict of its fields); ``ganzoo list --pretrained``
shows them with the plugin that provides each. An entry names a Hub repo, or an
official release (a URL) that is downloaded once, checked against its sha256,
converted with the family's converter and cached under
``$HF_HOME/ganzoo/<name>/model``. ``$GANZOO_PRETRAINED_INDEX`` names a JSON file
of entries to use instead (private zoos, tests).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganzoo.errors import did_you_mean
from ganzoo.hub import CARD_NAME, SOURCE_NAME, HubError, model_card, pull_repo, sha256_of

INDEX_ENV = "GANZOO_PRETRAINED_INDEX"  # path of another index file (tests, private zoos)


@dataclass
class PretrainedEntry:
    """One named weight set (``family.tag``): a Hub repo, or an official release to convert."""

    name: str = ""
    family: str = ""  # the model it loads as; default: the name before the first "."
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
    citation: str | None = None  # default: the family's own (its model class's ``citation``)
    plugin: str = ""  # filled in by the index: who registered the entry

    @property
    def source(self) -> str:
        return self.repo or self.url or "?"


def pretrained_index() -> dict[str, PretrainedEntry]:
    """Every registered weight set, or the entries of the file named by ``$GANZOO_PRETRAINED_INDEX``."""
    override = os.environ.get(INDEX_ENV)
    if override:
        return _index_file(Path(override))
    from ganzoo.plugins import get_registry

    registry = get_registry()
    return {entry.name: _entry(entry.name, entry.resolve(), f"plugin {entry.plugin}", entry.plugin)
            for entry in registry.entries("pretrained")}


def _index_file(path: Path) -> dict[str, PretrainedEntry]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HubError(f"{INDEX_ENV}={path} cannot be read ({exc.strerror}); point it at a pretrained index JSON file.") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise HubError(f"The pretrained index {path} is not valid JSON ({exc}); fix the file.") from None
    if not isinstance(raw, dict):
        raise HubError(f"The pretrained index {path} must map names to entries; fix the file.")
    return {name: _entry(name, spec, str(path), str(path)) for name, spec in raw.items() if not name.startswith("_")}


def _entry(name: str, spec: Any, where: str, plugin: str) -> PretrainedEntry:
    """A registered or indexed entry, checked: a PretrainedEntry, or a dict of its fields."""
    try:
        if isinstance(spec, PretrainedEntry):
            entry = PretrainedEntry(**{**vars(spec), "name": name})
        else:
            entry = PretrainedEntry(name=name, **spec)
    except TypeError as exc:
        raise HubError(f"Pretrained entry {name} in {where} is malformed ({exc}); fix the entry.") from None
    entry.family = entry.family or name.split(".", 1)[0]
    entry.plugin = plugin
    if bool(entry.repo) == bool(entry.url) or (entry.url and not entry.converter):
        raise HubError(f"Pretrained entry {name} in {where} needs either repo or url + converter; fix the entry.")
    return entry


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
            length = getattr(response, "length", None)  # file:// responses have none (their size is in a header)
            length = length if length is not None else response.headers.get("Content-Length")
            total = int(length) + done if length is not None else None
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


def print_pretrained(console) -> None:
    """``ganzoo list --pretrained``: the zoo, with where each entry comes from and whether it is cached."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    table.add_column("name", style="bold")
    table.add_column("plugin", style="magenta")
    table.add_column("license")
    table.add_column("source", style="cyan", overflow="fold")
    table.add_column("cached")
    for name, entry in sorted(pretrained_index().items()):
        cached = entry.url is not None and (pretrained_cache_dir(name) / "model" / "config.json").is_file()
        source = entry.repo or f"official release ({entry.converter} converter)"
        table.add_row(name, entry.plugin, entry.license, source, "yes" if cached else "")
    console.print(table)
    console.print("download with: ganzoo pull NAME   (or use NAME directly in ganzoo translate / ganzoo.load)", highlight=False)
