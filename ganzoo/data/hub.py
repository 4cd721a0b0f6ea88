"""Labelled images from a Hugging Face Hub dataset repo (``data.hub: org/name``).

Loaded with the ``datasets`` library, so downloads are cached and work offline
(``HF_HUB_OFFLINE=1``) once fetched. The repo is imagefolder-style
(``train/<domain>/*.png``, sub-folders become a ``ClassLabel``) or has an image
column and a ``ClassLabel`` column. Augmentation is the image-folder one.
"""

from __future__ import annotations

from PIL import Image

from ganzoo.data.imagefolder import ImageFolderDataset
from ganzoo.errors import DataError, SplitMissing, did_you_mean

# Split names as the recipe says them -> the names `datasets` may give them.
SPLIT_ALIASES = {"val": ("val", "validation", "valid"), "test": ("test",), "train": ("train",)}


class HubImageDataset(ImageFolderDataset):
    """Images and domain labels from a Hub dataset repo; a domain is a label name."""

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
    ):
        repo_id, _, revision = hub.partition("@")
        self.root = hub
        self.split = split
        self.image_size = int(image_size)
        self.flip = flip
        self.randcrop_prob = randcrop_prob
        self.skipped, self.bad_paths = [], set()
        self.rows = _load_split(repo_id, revision or None, split)
        for column in (image_column, label_column):
            if column not in self.rows.column_names:
                raise DataError(f'Hub dataset {hub} ({split}) has no column "{column}" (columns: {", ".join(self.rows.column_names)}); '
                                "set data.image_column / data.label_column.")
        names = getattr(self.rows.features[label_column], "names", None)
        if not names:
            raise DataError(f'Column "{label_column}" of Hub dataset {hub} is not a ClassLabel, so it names no domains; '
                            "use an imagefolder-style repo (split/<domain>/*.png).")
        self.image_column = image_column
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
        self._groups = self.indices_by_label()

    def _read(self, index: int) -> Image.Image:
        return self.rows[index][self.image_column].convert("RGB")


def _load_split(repo_id: str, revision: str | None, split: str):
    import datasets

    try:
        splits = datasets.load_dataset(repo_id, revision=revision)
    except Exception as exc:  # DatasetNotFoundError, connection and offline errors: one sentence each
        raise DataError(f"Hub dataset {repo_id} cannot be loaded ({type(exc).__name__}); check the name, the network, "
                        "or run once online before using HF_HUB_OFFLINE=1.") from None
    for name in SPLIT_ALIASES.get(split, (split,)):
        if name in splits:
            return splits[name]
    raise SplitMissing(f'Hub dataset {repo_id} has no "{split}" split (it has: {", ".join(splits)}); add a {split}/ folder to the repo.')
