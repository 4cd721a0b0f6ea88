"""Images from a Hugging Face Hub dataset repo (``data.hub: org/name``), in one of two layouts.

Loaded with the ``datasets`` library, so downloads are cached and work offline
(``HF_HUB_OFFLINE=1``) once fetched.

* **Labelled** (StarGAN v1/v2): imagefolder-style (``train/<domain>/*.png``, sub-folders
  become a ``ClassLabel``) or an image column and a ``ClassLabel`` column; a domain is a
  label name.
* **Two columns** (the HugGAN layout of ``huggan/horse2zebra``, ``huggan/facades``, ...):
  images of side A in ``imageA`` and of side B in ``imageB`` (``data.column_a`` /
  ``data.column_b`` rename them). Unpaired by default: every non-empty A cell is an item of
  domain 0 and every B cell one of domain 1, which two-domain families (CycleGAN, DiscoGAN,
  UNIT, MUNIT) draw independently. With ``aligned: true`` the A and B of one row are a pair
  (pix2pix): items are rows, :meth:`load_pair` gives both with the same crop and flip, and
  ``direction: BtoA`` swaps input and output.

The layout is the labelled one when the repo has the image and label columns, else the
two-column one. Augmentation is the image-folder one (random resized crop with
``randcrop_prob``, resize, flip) or, with ``load_size``, the official CycleGAN/pix2pix one
(resize to load_size, random crop, flip), drawn from the trainer's per-item ``rng``.

**Streaming** (``streaming: true``, for repos too big to download): the first
``stream_rows`` rows of the split are read through ``datasets``' streaming mode and kept in
memory (encoded), so the data are random access like any other and the trainer's
``(index, seed)`` batches stay exact on resume, provided the rows are the same ones: pin the
revision (``hub: org/name@<commit>``); ``ganzoo run --resume`` refuses a streamed repo
without one, because a branch may have moved since the run began.
"""

from __future__ import annotations

import io
import random

import torch
from PIL import Image

from ganzoo.data.imagefolder import ImageFolderDataset
from ganzoo.data.images import to_tensor
from ganzoo.errors import DataError, SplitMissing, did_you_mean

# Split names as the recipe says them -> the names `datasets` may give them (HugGAN repos have train/test only).
SPLIT_ALIASES = {"val": ("val", "validation", "valid", "test"), "test": ("test",), "train": ("train",)}
DIRECTIONS = ("AtoB", "BtoA")
DEFAULT_STREAM_ROWS = 10_000


class HubImageDataset(ImageFolderDataset):
    """Images and domains from a Hub dataset repo: labelled (image + ClassLabel) or two image columns (HugGAN)."""

    def __init__(
        self,
        hub: str,
        split: str = "train",
        image_size: int = 256,
        domains: list[str] | None = None,
        flip: bool = True,
        randcrop_prob: float = 0.5,
        image_column: str = "image",
        label_column: str = "label",
        column_a: str = "imageA",
        column_b: str = "imageB",
        aligned: bool = False,
        direction: str = "AtoB",
        streaming: bool = False,
        stream_rows: int = DEFAULT_STREAM_ROWS,
        load_size: int | None = None,
    ):
        repo_id, _, revision = hub.partition("@")
        if direction not in DIRECTIONS:
            raise DataError(f'data.direction must be AtoB or BtoA, got "{direction}".{did_you_mean(direction, DIRECTIONS)}')
        if int(stream_rows) < 1:
            raise DataError(f"data.stream_rows must be at least 1, got {stream_rows}.")
        self.root = hub
        self.split = split
        self.image_size = int(image_size)
        self.flip = flip
        self.randcrop_prob = randcrop_prob
        self.aligned = bool(aligned)
        self.load_size = None if load_size is None else int(load_size)
        if self.load_size is not None and self.load_size < self.image_size:
            raise DataError(f"data.load_size ({load_size}) must be at least data.image_size ({image_size}), the crop taken from it.")
        self.skipped, self.bad_paths = [], set()
        self.rows = _load_split(repo_id, revision or None, split, streaming=streaming, rows=int(stream_rows))
        columns = self.rows.column_names
        if image_column in columns and label_column in columns:
            if aligned:
                raise DataError(f'Hub dataset {hub} is labelled ("{image_column}" + "{label_column}"), so it holds no '
                                f'pairs for data.aligned; pairs come as two image columns ("{column_a}", "{column_b}").')
            self._labelled(hub, image_column, label_column, domains)
        elif column_a in columns and column_b in columns:
            self._two_columns(hub, column_a, column_b, domains, direction)
        else:
            raise DataError(f'Hub dataset {hub} ({split}) has neither "{image_column}" + "{label_column}" columns nor '
                            f'"{column_a}" + "{column_b}" (columns: {", ".join(columns)}); set data.image_column / '
                            "data.label_column, or data.column_a / data.column_b, to its column names.")
        self._groups = self.indices_by_label()

    # ------------------------------------------------------------------ layouts

    def _labelled(self, hub: str, image_column: str, label_column: str, domains: list[str] | None) -> None:
        names = getattr(self.rows.features[label_column], "names", None)
        if not names:
            raise DataError(f'Column "{label_column}" of Hub dataset {hub} is not a ClassLabel, so it names no domains; '
                            "use an imagefolder-style repo (split/<domain>/*.png).")
        labels = list(self.rows[label_column])
        domains = list(domains) if domains else list(names)
        for name in domains:
            if name not in names:
                raise DataError(f'Domain "{name}" is not a label of Hub dataset {hub}.{did_you_mean(name, names)} Labels: {", ".join(names)}.')
        if len(domains) < 2:
            raise DataError(f"Hub dataset {hub} gives {len(domains)} domain(s); image translation needs at least 2.")
        self.domains = domains
        keep = [i for i, y in enumerate(labels) if names[y] in domains]
        self.rows = self.rows.select(keep)
        self.labels = [domains.index(names[labels[i]]) for i in keep]
        self.cells = [(i, image_column) for i in range(len(keep))]

    def _two_columns(self, hub: str, column_a: str, column_b: str, domains: list[str] | None, direction: str) -> None:
        sides = [column_a, column_b] if direction == "AtoB" else [column_b, column_a]
        self.domains = list(domains) if domains else (["A", "B"] if direction == "AtoB" else ["B", "A"])
        if len(self.domains) != 2 or len(set(self.domains)) != 2:
            raise DataError(f"Hub dataset {hub} has two sides ({column_a}, {column_b}); data.domains must name two, "
                            f"got {self.domains}.")
        # Empty cells (an unpaired repo whose sides differ in length pads the shorter one) are no images.
        present = {c: [not null for null in self.rows.data.column(c).is_null().to_pylist()] for c in sides}
        if self.aligned:
            rows = [i for i in range(len(self.rows)) if present[sides[0]][i] and present[sides[1]][i]]
            if not rows:
                raise DataError(f'Hub dataset {hub} ({self.split}) has no row with both "{column_a}" and "{column_b}"; '
                                "an aligned (paired) dataset needs both images in a row.")
            self.pair_columns = sides
            self.cells = [(i, sides[0]) for i in rows]
            self.labels = [0] * len(rows)  # items are inputs (domain 0), as the aligned folder dataset labels them
            return
        self.cells, self.labels = [], []
        for label, column in enumerate(sides):
            rows = [i for i, there in enumerate(present[column]) if there]
            if not rows:
                raise DataError(f'Column "{column}" of Hub dataset {hub} ({self.split}) holds no images; the '
                                f"{self.domains[label]} side is empty.")
            self.cells += [(i, column) for i in rows]
            self.labels += [label] * len(rows)

    # ------------------------------------------------------------------ reading

    def _cell(self, row: int, column: str) -> Image.Image:
        value = self.rows[row][column]
        try:
            if isinstance(value, dict):  # streamed rows are kept encoded
                value = Image.open(io.BytesIO(value["bytes"]))
            return value.convert("RGB")
        except Exception as exc:  # noqa: BLE001 - a broken cell in someone else's repo
            raise DataError(f'Row {row}, column "{column}" of Hub dataset {self.root} ({self.split}) is not a readable image '
                            f"({type(exc).__name__}).") from None

    def _read(self, index: int) -> Image.Image:
        return self._cell(*self.cells[index])

    def load_pair(self, index: int, rng: random.Random | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Row ``index``'s (input, output) images with one crop and flip shared by both (``aligned: true``)."""
        if not self.aligned:
            raise DataError(f"Hub dataset {self.root} is read unpaired; set data.aligned: true to read its rows as pairs.")
        row = self.cells[index][0]
        source, target = (self._cell(row, c) for c in self.pair_columns)
        if target.size != source.size:
            target = target.resize(source.size, Image.BICUBIC)
        state = rng.getstate() if rng is not None else None
        first = self.transform(source, rng)
        if rng is not None:
            rng.setstate(state)  # the same draws again: the same crop and flip for the output
        return first, self.transform(target, rng)


    def transform(self, image: Image.Image, rng: random.Random | None = None) -> torch.Tensor:
        """With ``load_size``: the pix2pix/CycleGAN transform (bicubic resize to load_size, random crop of image_size,
        flip; draws: crop x, crop y, flip). Without: the image-folder one."""
        if self.load_size is None:
            return super().transform(image, rng)
        if rng is None:
            return to_tensor(image.resize((self.image_size, self.image_size), Image.Resampling.BICUBIC))
        left = rng.randint(0, self.load_size - self.image_size)
        top = rng.randint(0, self.load_size - self.image_size)
        mirror = self.flip and rng.random() > 0.5
        tensor = to_tensor(image.resize((self.load_size, self.load_size), Image.Resampling.BICUBIC))
        tensor = tensor[:, top:top + self.image_size, left:left + self.image_size]
        return tensor.flip(-1) if mirror else tensor


def _load_split(repo_id: str, revision: str | None, split: str, *, streaming: bool = False, rows: int = DEFAULT_STREAM_ROWS):
    import datasets

    try:
        splits = datasets.load_dataset(repo_id, revision=revision, streaming=streaming)
    except Exception as exc:  # DatasetNotFoundError, connection and offline errors: one sentence each
        raise DataError(f"Hub dataset {repo_id} cannot be loaded ({type(exc).__name__}); check the name, the network, "
                        "or run once online before using HF_HUB_OFFLINE=1.") from None
    for name in SPLIT_ALIASES.get(split, (split,)):
        if name in splits:
            return _take(splits[name], rows, repo_id) if streaming else splits[name]
    raise SplitMissing(f'Hub dataset {repo_id} has no "{split}" split (it has: {", ".join(splits)}); add a {split}/ folder to the repo.')


def _take(stream, rows: int, repo_id: str):
    """The first ``rows`` rows of a streamed split as an in-memory Dataset, images kept encoded."""
    import datasets

    features = stream.features
    if features is not None:
        for column, feature in features.items():
            if isinstance(feature, datasets.Image):
                stream = stream.cast_column(column, datasets.Image(decode=False))
        features = stream.features
    try:
        taken = list(stream.take(rows))
    except Exception as exc:  # noqa: BLE001 - network or format errors while streaming
        raise DataError(f"Streaming Hub dataset {repo_id} failed ({type(exc).__name__}); check the network and try again.") from None
    if not taken:
        raise DataError(f"Streaming Hub dataset {repo_id} gave no rows; check the repo and split.")
    return datasets.Dataset.from_list(taken, features=features)
