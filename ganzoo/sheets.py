"""Sample sheets: the labelled pictures people look at to judge a model.

One code path draws them for the trainer's periodic samples and for ``ganzoo sample``.
A *sheet* is a grid of cells (images at the model's full resolution) with a header
naming the columns and a left margin naming the rows, saved as a PNG with a sidecar
JSON that records its layout. The kinds:

``target_grid``
    sources (rows) translated into every domain or attribute edit the model can reach
    (columns); every model family draws it.
``reference_grid`` (StarGAN v2)
    the paper's figure: references across the top (grouped by domain), sources down
    the left, each cell the source in that reference's style.
``latent_grid`` (StarGAN v2)
    sources (rows) x, per target domain, ``num_styles`` random styles (columns); the
    styles come from ``seed``, so a seed always gives the same picture.
``reference_animation`` / ``latent_animation`` (StarGAN v2)
    a looping GIF (and an MP4 when ffmpeg is available) easing from one style to the
    next, domain by domain, applied to every source: the official ``video_ref`` and
    ``video_latent``.

A model family names the kinds it supports in :attr:`ganzoo.model.GANModel.sample_sheets`;
the first still kind is what the trainer writes as ``samples/step_XXXXXXXX.png``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ganzoo.errors import GanzooError
from ganzoo.image_output import written_beside
from ganzoo.image_output import to_uint8
from ganzoo.model import StyleModel

#: pixels between cells and around the grid
PAD = 2
#: height of one header line of text
LINE_HEIGHT = 12
#: the row-label margin never grows beyond this (long file names are shortened instead)
MAX_LABEL_WIDTH = 120
#: frames per second of the animations
FPS = 20

STILL_KINDS = ("target_grid", "reference_grid", "latent_grid")
ANIMATION_KINDS = ("reference_animation", "latent_animation")
REFERENCE_KINDS = ("reference_grid", "reference_animation")
ALL_KINDS = STILL_KINDS + ANIMATION_KINDS

MP4_NOTE = ('only the GIF was written: MP4 needs imageio[ffmpeg] (pip install "imageio[ffmpeg]") '
            "or an ffmpeg binary on PATH")


def _font():
    from PIL import ImageFont

    # Pillow's embedded default font: no font files needed, the same glyphs on every machine.
    return ImageFont.load_default()


def text_width(text: str) -> int:
    return math.ceil(_font().getlength(text)) if text else 0


def fit_text(text: str, width: int) -> str:
    """``text`` shortened (ending "..") to fit ``width`` pixels."""
    if text_width(text) <= width:
        return text
    while text and text_width(text + "..") > width:
        text = text[:-1]
    return text + ".." if text else ""


# --------------------------------------------------------------------------- the inputs


@dataclass
class SheetInputs:
    """What a sheet is drawn from: source images and, for reference kinds, references with their domains."""

    sources: torch.Tensor  # (N,3,H,W) in [-1,1], at the model's image size
    source_names: list[str]  # row labels (file stems, or the source domain during training)
    source_labels: torch.Tensor | None = None  # known labels (training); attribute models edit these
    references: torch.Tensor | None = None  # (R,3,H,W), grouped by domain in the model's domain order
    reference_domains: list[int] | None = None  # domain index of each reference
    seed: int = 0
    num_styles: int = 4  # random styles per domain (latent grid and animation)
    frames: int = 12  # frames per style-to-style transition in the animations
    step: int | None = None  # training step drawn at (default: the loaded model's)

    def references_by_domain(self) -> list[tuple[int, list[int]]]:
        """(domain, indices into ``references``) for each domain that has references, in domain order."""
        groups: dict[int, list[int]] = {}
        for i, d in enumerate(self.reference_domains or []):
            groups.setdefault(d, []).append(i)
        return sorted(groups.items())


# --------------------------------------------------------------------------- a sheet


@dataclass
class Sheet:
    """A labelled grid of equally sized images; ``None`` cells stay blank."""

    kind: str
    cells: list[list[torch.Tensor | None]]
    row_labels: list[str]
    column_labels: list[str]
    #: optional label per column spanning runs of equal neighbours (e.g. the domain over its styles)
    column_groups: list[str] | None = None
    #: text in the top-left corner (an animation's frame counter)
    corner: str = ""
    #: at least this wide a row-label margin (keeps an animation's frames the same size)
    min_label_width: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def cell_size(self) -> tuple[int, int]:
        first = next(c for row in self.cells for c in row if c is not None)
        return int(first.shape[-2]), int(first.shape[-1])

    @property
    def num_rows(self) -> int:
        return len(self.cells)

    @property
    def num_columns(self) -> int:
        return max(len(row) for row in self.cells)

    @property
    def header_height(self) -> int:
        lines = int(any(self.column_labels)) + int(bool(self.column_groups and any(self.column_groups)))
        return LINE_HEIGHT * max(lines, int(bool(self.corner)))

    @property
    def label_width(self) -> int:
        widest = max([text_width(t) for t in [*self.row_labels, self.corner]] + [0])
        width = min(widest, MAX_LABEL_WIDTH) + 2 * PAD if widest else 0
        return max(width, self.min_label_width)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        h, w = self.cell_size
        return (self.label_width + self.num_columns * (w + PAD) + PAD,
                self.header_height + self.num_rows * (h + PAD) + PAD)

    def cell_box(self, row: int, column: int) -> tuple[int, int]:
        """(left, top) pixel of a cell."""
        h, w = self.cell_size
        return self.label_width + PAD + column * (w + PAD), self.header_height + PAD + row * (h + PAD)

    def render(self):
        """The sheet as an RGB PIL image."""
        from PIL import Image, ImageDraw

        h, w = self.cell_size
        image = Image.new("RGB", self.size, (255, 255, 255))
        for i, row in enumerate(self.cells):
            for j, cell in enumerate(row):
                if cell is not None:
                    image.paste(Image.fromarray(to_uint8(cell).numpy()), self.cell_box(i, j))
        draw, font, black = ImageDraw.Draw(image), _font(), (0, 0, 0)
        label_room = self.label_width - 2 * PAD
        if self.corner:
            draw.text((PAD, 0), fit_text(self.corner, label_room), fill=black, font=font)
        column_line = LINE_HEIGHT if self.column_groups and any(self.column_groups) else 0
        for j, text in enumerate(self.column_labels):
            text = fit_text(text, w)
            left, _ = self.cell_box(0, j)
            draw.text((left + (w - text_width(text)) // 2, column_line), text, fill=black, font=font)
        for first, last, text in _runs(self.column_groups or []):
            span_left, _ = self.cell_box(0, first)
            span = (last - first + 1) * (w + PAD) - PAD
            text = fit_text(text, span)
            draw.text((span_left + (span - text_width(text)) // 2, 0), text, fill=black, font=font)
            if last > first:  # a rule under the group name shows which columns it spans
                draw.line([(span_left, LINE_HEIGHT - 1), (span_left + span - 1, LINE_HEIGHT - 1)], fill=(160, 160, 160))
        for i, text in enumerate(self.row_labels):
            _, top = self.cell_box(i, 0)
            draw.text((PAD, top + (h - LINE_HEIGHT) // 2), fit_text(text, label_room), fill=black, font=font)
        return image

    def layout(self) -> dict[str, Any]:
        """What the sidecar JSON records: enough to find any cell and know what it shows."""
        h, w = self.cell_size
        width, height = self.size
        return {
            "kind": self.kind,
            **self.info,
            "rows": self.num_rows,
            "columns": self.num_columns,
            "row_labels": self.row_labels,
            "column_labels": self.column_labels,
            "column_groups": self.column_groups,
            "cell": {"height": h, "width": w},
            "padding": PAD,
            "header_height": self.header_height,
            "label_width": self.label_width,
            "width": width,
            "height": height,
        }

    def to_tensor(self) -> torch.Tensor:
        """The rendered sheet as a (3,H,W) tensor in [-1,1]."""
        import numpy as np

        return torch.from_numpy(np.array(self.render())).permute(2, 0, 1).float() / 127.5 - 1

    def save(self, path: str | Path) -> list[Path]:
        """Write the PNG and its sidecar JSON (same name, ``.json``)."""
        path = Path(path)
        with written_beside(path) as tmp:
            self.render().save(tmp)
        return [path, write_json(path.with_suffix(".json"), self.layout())]


def _runs(labels: list[str]) -> list[tuple[int, int, str]]:
    """(first, last, label) for each run of equal, non-empty neighbours."""
    runs: list[tuple[int, int, str]] = []
    for j, text in enumerate(labels):
        if runs and runs[-1][2] == text and runs[-1][1] == j - 1:
            runs[-1] = (runs[-1][0], j, text)
        elif text:
            runs.append((j, j, text))
    return runs


def write_json(path: Path, data: dict[str, Any]) -> Path:
    with written_beside(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
    return path


def model_info(model, inputs: SheetInputs) -> dict[str, Any]:
    step = inputs.step if inputs.step is not None else getattr(model, "step", None)
    return {"model": model.name, "step": step, "domains": list(model.domains),
            "image_size": model.image_size, "seed": inputs.seed}


# --------------------------------------------------------------------------- the grids


@torch.no_grad()
def target_grid(model, inputs: SheetInputs) -> Sheet:
    """Rows: sources; columns: the source, then one translation per target the model names."""
    sources = inputs.sources.to(model.device)
    labels = inputs.source_labels.to(model.device) if inputs.source_labels is not None else None
    generator = torch.Generator().manual_seed(inputs.seed)
    targets = model.sheet_targets()
    columns = [sources] + [model.translate_to(sources, index, labels=labels, generator=generator) for _, index in targets]
    return Sheet(
        kind="target_grid",
        cells=[[column[i] for column in columns] for i in range(sources.shape[0])],
        row_labels=list(inputs.source_names),
        column_labels=["source", *(label for label, _ in targets)],
        info={**model_info(model, inputs), "targets": [label for label, _ in targets]},
    )


@torch.no_grad()
def reference_grid(model, inputs: SheetInputs) -> Sheet:
    """First row the references (grouped by domain), first column the sources, each cell source x reference style."""
    _need_references(model, inputs, "reference_grid")
    sources = inputs.sources.to(model.device)
    refs = inputs.references.to(model.device)
    domains = torch.tensor(inputs.reference_domains, device=model.device)
    styles = model.style_codes(domains, reference=refs)
    columns = [model.translate_with_style(sources, s.expand(sources.shape[0], -1)) for s in styles]
    cells: list[list[torch.Tensor | None]] = [[None, *refs]]
    cells += [[sources[i], *(column[i] for column in columns)] for i in range(sources.shape[0])]
    return Sheet(
        kind="reference_grid",
        cells=cells,
        row_labels=["reference", *inputs.source_names],
        column_labels=["source", *([""] * len(refs))],
        column_groups=["", *(model.domains[d] for d in inputs.reference_domains)],
        info={**model_info(model, inputs), "reference_domains": [model.domains[d] for d in inputs.reference_domains]},
    )


@torch.no_grad()
def latent_grid(model, inputs: SheetInputs) -> Sheet:
    """Rows: sources; columns: the source, then for each domain ``num_styles`` random styles, shared by all rows."""
    _need_styles(model, "latent_grid")
    sources = inputs.sources.to(model.device)
    n = sources.shape[0]
    latents = _latent_codes(model, inputs)
    columns, labels, groups = [sources], ["source"], [""]
    for d, name in enumerate(model.domains):
        styles = model.style_codes(torch.full((inputs.num_styles,), d, device=model.device), z=latents[d])
        for k, style in enumerate(styles):
            columns.append(model.translate_with_style(sources, style.expand(n, -1)))
            labels.append(f"z{k + 1}")
            groups.append(name)
    return Sheet(
        kind="latent_grid",
        cells=[[column[i] for column in columns] for i in range(n)],
        row_labels=list(inputs.source_names),
        column_labels=labels,
        column_groups=groups,
        info={**model_info(model, inputs), "num_styles": inputs.num_styles},
    )


def _latent_codes(model, inputs: SheetInputs) -> torch.Tensor:
    """(domains, num_styles, latent_dim) codes drawn on the CPU from ``seed``: the same on every device."""
    generator = torch.Generator().manual_seed(inputs.seed)
    return torch.randn(len(model.domains), inputs.num_styles, model.latent_dim, generator=generator)


def _need_styles(model, kind: str) -> None:
    if kind not in model.sample_sheets or not isinstance(model, StyleModel):
        raise GanzooError(f"Model {model.name} cannot draw a {kind} (it draws: {', '.join(model.sample_sheets)}).")


def _need_references(model, inputs: SheetInputs, kind: str) -> None:
    _need_styles(model, kind)
    if inputs.references is None or not len(inputs.references):
        raise GanzooError(f"A {kind} needs reference images; give --reference REF_DIR laid out as REF_DIR/<domain>/*.png.")


# --------------------------------------------------------------------------- animations


@dataclass
class Animation:
    """Frames (each a :class:`Sheet`) and what the sidecar JSON says about them."""

    kind: str
    frames: list[Sheet]
    info: dict[str, Any]

    def layout(self) -> dict[str, Any]:
        frame = self.frames[0].layout()
        frame.pop("kind")
        return {"kind": self.kind, **self.info, "frames": len(self.frames), "fps": FPS, "frame_layout": frame}

    def save(self, path: str | Path, *, ffmpeg: str | None = None) -> tuple[list[Path], list[str]]:
        """Write the GIF, its JSON, and an MP4 when ``ffmpeg`` names a binary; returns (files, notes)."""
        path = Path(path).with_suffix(".gif")
        images = [frame.render() for frame in self.frames]
        # Every frame differs (the counter in its corner), so PIL keeps them all instead of merging repeats.
        with written_beside(path) as tmp:
            images[0].save(tmp, save_all=True, append_images=images[1:], duration=1000 // FPS, loop=0)
        files = [path, write_json(path.with_suffix(".json"), self.layout())]
        if ffmpeg is None:
            return files, [f"{path.name}: {MP4_NOTE}"]
        mp4 = path.with_suffix(".mp4")
        problem = write_mp4(images, mp4, ffmpeg)
        if problem:
            return files, [f"{path.name}: only the GIF was written; ffmpeg failed ({problem})"]
        return files + [mp4], []


def ease(t: float) -> float:
    """0 -> 1 slow at both ends (the official videos use a sigmoid for the same effect)."""
    return 0.5 - 0.5 * math.cos(math.pi * t)


@torch.no_grad()
def style_animation(model, inputs: SheetInputs, kind: str,
                    segments: list[tuple[int, torch.Tensor, torch.Tensor | None]]) -> Animation:
    """Ease through each domain's styles in a loop (1 -> 2 -> ... -> K -> 1), ``frames`` per transition.

    ``segments``: (domain, styles (K,S), the references those styles came from or None). Each frame
    shows the sources on top and their translations below; a reference animation also cross-fades
    the two references it moves between on the left, so one sees whose style is arriving.
    """
    sources = inputs.sources.to(model.device)
    n = sources.shape[0]
    with_refs = any(refs is not None for _, _, refs in segments)
    total = sum(len(styles) * inputs.frames for _, styles, _ in segments if len(styles) >= 2)
    if total == 0:
        raise GanzooError(f"A {kind} needs at least two styles of one domain to move between; "
                          "give two or more references of a domain (or --num 2 or more).")
    # Every frame gets the same label margin (frame counter, "source", any domain name): one size for all.
    margin_texts = [f"{total}/{total}", "source", *(model.domains[d] for d, _, _ in segments)]
    label_width = min(max(map(text_width, margin_texts)), MAX_LABEL_WIDTH) + 2 * PAD
    frames: list[Sheet] = []
    transitions = []
    for d, styles, refs in segments:
        k = len(styles)
        if k < 2:
            continue
        for a in range(k):
            b = (a + 1) % k
            transitions.append({"domain": model.domains[d], "from": a, "to": b, "first_frame": len(frames)})
            for t in range(inputs.frames):
                alpha = ease(t / inputs.frames)
                style = torch.lerp(styles[a], styles[b], alpha)
                fakes = model.translate_with_style(sources, style.expand(n, -1))
                top, bottom = [*sources], [*fakes]
                if with_refs:
                    blend = torch.lerp(refs[a], refs[b], alpha) if refs is not None else None
                    top, bottom = [None, *top], [blend, *bottom]
                frames.append(Sheet(
                    kind=kind,
                    cells=[top, bottom],
                    row_labels=["source", model.domains[d]],
                    column_labels=(["style"] if with_refs else []) + list(inputs.source_names),
                    corner=f"{len(frames) + 1}/{total}",
                    min_label_width=label_width,
                ))
    info = {**model_info(model, inputs), "frames_per_transition": inputs.frames, "transitions": transitions}
    return Animation(kind=kind, frames=frames, info=info)


@torch.no_grad()
def reference_animation(model, inputs: SheetInputs) -> Animation:
    """Morph between the styles of each domain's references (the official ``video_ref``)."""
    _need_references(model, inputs, "reference_animation")
    refs = inputs.references.to(model.device)
    segments = []
    for d, indices in inputs.references_by_domain():
        chosen = refs[indices]
        segments.append((d, model.style_codes(torch.full((len(indices),), d, device=model.device), reference=chosen), chosen))
    return style_animation(model, inputs, "reference_animation", segments)


@torch.no_grad()
def latent_animation(model, inputs: SheetInputs) -> Animation:
    """Morph between ``num_styles`` random styles of each domain (the official ``video_latent``)."""
    _need_styles(model, "latent_animation")
    latents = _latent_codes(model, inputs)
    segments = [(d, model.style_codes(torch.full((inputs.num_styles,), d, device=model.device), z=latents[d]), None)
                for d in range(len(model.domains))]
    return style_animation(model, inputs, "latent_animation", segments)


# --------------------------------------------------------------------------- MP4


def find_ffmpeg() -> str | None:
    """An ffmpeg binary: the one imageio[ffmpeg] ships, else one on PATH, else None."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # not installed, or installed without its binary
        return shutil.which("ffmpeg")


def write_mp4(images, path: Path, ffmpeg: str) -> str | None:
    """Pipe RGB frames to ffmpeg as H.264; returns why it failed, or None."""
    width, height = images[0].size
    # yuv420p (what players expect) needs even sides: pad with white.
    even_w, even_h = width + width % 2, height + height % 2
    from PIL import Image

    chunks = []
    for image in images:
        if (even_w, even_h) != (width, height):
            padded = Image.new("RGB", (even_w, even_h), (255, 255, 255))
            padded.paste(image, (0, 0))
            image = padded
        chunks.append(image.tobytes())
    raw = b"".join(chunks)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")  # renamed into place once ffmpeg is done
    command = [ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{even_w}x{even_h}",
               "-r", str(FPS), "-i", "-", "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(tmp)]
    try:
        try:
            result = subprocess.run(command, input=raw, capture_output=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        if result.returncode != 0 or not tmp.is_file():
            last_lines = result.stderr.decode(errors="replace").strip().splitlines()
            return last_lines[-1] if last_lines else f"exit code {result.returncode}"
        os.replace(tmp, path)
        return None
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- reading inputs


def read_sources(paths: list[Path], size: int, limit: int) -> tuple[torch.Tensor, list[str], list[str]]:
    """Source images from files and folders: (images, names, notes on what was left out).

    Unreadable files inside folders are skipped; a file named on its own must read.
    """
    from ganzoo.data.images import list_images, read_image, resize, to_tensor
    from ganzoo.errors import DataError

    files: list[tuple[Path, bool]] = []
    for path in paths:
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise DataError(f"{path} contains no images (jpg, jpeg, png, bmp, webp, gif); point --input at images.")
            files += [(f, False) for f in found]
        elif path.is_file():
            files.append((path, True))
        else:
            raise DataError(f"--input {path} does not exist; give image files or a folder of images.")
    images, names, notes = [], [], []
    for file, named in files:
        if len(images) == limit:
            notes.append(f"used the first {limit} source images (raise --limit for more)")
            break
        try:
            images.append(resize(to_tensor(read_image(file)), size))
            names.append(file.stem)
        except DataError as exc:
            if named:
                raise
            notes.append(f"skipped {exc}")
    if not images:
        raise DataError("None of the --input images could be read; see the notes above.")
    return torch.stack(images), names, notes


def read_references(folder: Path, domains: list[str], size: int, limit: int) -> tuple[torch.Tensor, list[int], list[str]]:
    """References laid out as ``folder/<domain>/*.png``: (images, domain of each, notes), in domain order."""
    from ganzoo.data.images import list_images, read_image, resize, to_tensor
    from ganzoo.errors import DataError, did_you_mean

    if not folder.is_dir():
        raise DataError(f"--reference {folder} is not a folder; lay references out as {folder}/<domain>/*.png.")
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    for sub in subfolders:
        if sub.name not in domains:
            raise DataError(f'Reference folder "{sub}" is not one of this model\'s domains ({", ".join(domains)}).'
                            f"{did_you_mean(sub.name, domains)}")
    images, reference_domains, notes = [], [], []
    for d, name in enumerate(domains):
        found = list_images(folder / name) if (folder / name).is_dir() else []
        kept = 0
        for file in found:
            if kept == limit:
                notes.append(f"used the first {limit} references of {name} (raise --limit for more)")
                break
            try:
                images.append(resize(to_tensor(read_image(file)), size))
            except DataError as exc:
                notes.append(f"skipped {exc}")
                continue
            reference_domains.append(d)
            kept += 1
    if not images:
        raise DataError(f"--reference {folder} holds no readable images in domain folders; lay them out as "
                        f"{folder}/<domain>/*.png with domains {', '.join(domains)}.")
    return torch.stack(images), reference_domains, notes


# --------------------------------------------------------------------------- writing


DRAW = {
    "target_grid": target_grid,
    "reference_grid": reference_grid,
    "latent_grid": latent_grid,
    "reference_animation": reference_animation,
    "latent_animation": latent_animation,
}


@dataclass
class Written:
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def write_sheet(model, kind: str, inputs: SheetInputs, path: str | Path, *, ffmpeg: str | None = None) -> Written:
    """Draw one sheet of ``kind`` and save it at ``path`` (PNG or GIF by kind) with its sidecar JSON."""
    if kind not in DRAW:
        raise GanzooError(f'Unknown sheet kind "{kind}"; kinds: {", ".join(ALL_KINDS)}.')
    drawn = DRAW[kind](model, inputs)
    if isinstance(drawn, Animation):
        files, notes = drawn.save(path, ffmpeg=ffmpeg)
        return Written(files, notes)
    return Written(drawn.save(Path(path).with_suffix(".png")))


def write_sheets(model, inputs: SheetInputs, out_dir: str | Path, kinds: list[str] | None = None) -> Written:
    """Every sheet ``model`` supports (or ``kinds``) into ``out_dir`` as ``<kind>.png/.gif`` + ``.json``.

    Reference kinds are skipped, with a note, when ``inputs`` has no references.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = Written()
    ffmpeg = find_ffmpeg()
    for kind in kinds or model.sample_sheets:
        if kind in REFERENCE_KINDS and inputs.references is None:
            written.notes.append(f"skipped the {kind}: it needs --reference REF_DIR (REF_DIR/<domain>/*.png)")
            continue
        if kind == "reference_animation" and all(len(i) < 2 for _, i in inputs.references_by_domain()):
            written.notes.append(f"skipped the {kind}: it moves between references of one domain; give two or more of a domain")
            continue
        result = write_sheet(model, kind, inputs, out_dir / kind, ffmpeg=ffmpeg)
        written.files += result.files
        written.notes += result.notes
    return written
