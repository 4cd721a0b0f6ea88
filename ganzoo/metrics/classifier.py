"""The domain classifier behind the domain-accuracy metric.

A timm backbone fine-tuned to tell the dataset's domains apart (``ganzoo train-classifier``).
It is trained on the train split and its accuracy on the held-out val split is stored with
it and printed next to every domain accuracy it produces: a generated image counts as "in
domain d" only as reliably as the classifier recognises real images of d.

Saved as a folder, no pickle: ``config.json`` (backbone, domains, image size, held-out
accuracy, how it was trained) + ``model.safetensors``. By default it lives next to the data,
in ``ROOT/.ganzoo/classifiers/<backbone>-<size>px/``.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from ganzoo.errors import CheckpointError, GanzooError

DEFAULT_BACKBONE = "resnet18"
DEFAULT_SIZE = 64


def default_folder(root: str | Path, backbone: str = DEFAULT_BACKBONE, image_size: int = DEFAULT_SIZE) -> Path:
    return Path(root).expanduser() / ".ganzoo" / "classifiers" / f"{backbone}-{image_size}px"


def _create(backbone: str, num_classes: int, pretrained: bool) -> torch.nn.Module:
    import timm

    if backbone not in timm.list_models():
        from ganzoo.errors import did_you_mean

        raise GanzooError(f'Unknown timm backbone "{backbone}".{did_you_mean(backbone, timm.list_models())} '
                          "See timm.list_models().")
    try:
        return timm.create_model(backbone, pretrained=pretrained, num_classes=num_classes)
    except Exception as exc:  # noqa: BLE001 - offline without cached weights, mostly
        raise GanzooError(
            f'The pretrained weights of timm backbone "{backbone}" could not be loaded ({type(exc).__name__}); '
            "they come from the Hugging Face cache: download them once online, or train without --pretrained."
        ) from None


@dataclass
class DomainClassifier:
    net: torch.nn.Module
    config: dict[str, Any]
    folder: Path | None = None

    @property
    def domains(self) -> list[str]:
        return list(self.config["domains"])

    @property
    def image_size(self) -> int:
        return int(self.config["image_size"])

    @property
    def val_accuracy(self) -> float:
        return float(self.config["val_accuracy"])

    def to(self, device) -> "DomainClassifier":
        self.net.to(device)
        return self

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Domain index (into :attr:`domains`) of each [-1, 1] image."""
        self.net.eval()
        device = next(self.net.parameters()).device
        x = images.to(device).float()
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True,
                              align_corners=False)
        return self.net(x).argmax(1).cpu()

    def protocol(self) -> dict[str, Any]:
        c = self.config
        return {"classifier": f"timm {c['backbone']} at {c['image_size']} px"
                              f"{' (ImageNet init)' if c.get('pretrained') else ' (from scratch)'}",
                "classifier_val_accuracy": round(self.val_accuracy, 4),
                "classifier_folder": str(self.folder) if self.folder else None}

    def save(self, folder: str | Path) -> Path:
        from safetensors.torch import save_file

        from ganzoo.checkpoint import atomic_write_text

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "model.safetensors.tmp"
        save_file({k: v.detach().contiguous().cpu() for k, v in self.net.state_dict().items()}, str(tmp))
        tmp.replace(folder / "model.safetensors")
        atomic_write_text(folder / "config.json", json.dumps(self.config, indent=2) + "\n")
        self.folder = folder
        return folder


def load_classifier(folder: str | Path) -> DomainClassifier:
    from safetensors.torch import load_file

    folder = Path(folder).expanduser()
    config_path, weights = folder / "config.json", folder / "model.safetensors"
    if not config_path.is_file() or not weights.is_file():
        raise CheckpointError(f"{folder} is not a domain classifier folder (needs config.json and model.safetensors); "
                              "make one with `ganzoo train-classifier --data ROOT`.")
    try:
        config = json.loads(config_path.read_text())
        backbone, domains, size = str(config["backbone"]), list(config["domains"]), int(config["image_size"])
        float(config["val_accuracy"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{config_path} is not a ganzoo classifier config ({exc}).") from None
    if not 2 <= len(domains) <= 10_000 or not 8 <= size <= 4096:
        raise CheckpointError(f"{config_path} has out-of-range values (domains {len(domains)}, image_size {size}).")
    net = _create(backbone, len(domains), pretrained=False)
    from ganzoo.metrics.weights import load_into

    try:
        state = load_file(str(weights))
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{weights} is not a readable safetensors file ({exc}).") from None
    load_into(net, state, weights, f"a {backbone} classifier for {len(domains)} domains")
    return DomainClassifier(net.eval(), config, folder)


def _batches(dataset, indices: list[int], batch: int, rng: random.Random | None):
    for start in range(0, len(indices), batch):
        part = indices[start:start + batch]
        seeds = [rng.random() for _ in part] if rng else [None] * len(part)
        images = torch.stack([dataset.load(i, random.Random(s) if s is not None else None) for i, s in zip(part, seeds)])
        labels = torch.tensor([dataset.labels[i] for i in part])
        yield images, labels


@torch.no_grad()
def accuracy(classifier: DomainClassifier, dataset, batch: int = 64) -> float:
    correct = 0
    for images, labels in _batches(dataset, list(range(len(dataset))), batch, None):
        correct += int((classifier.predict(images) == labels).sum())
    return correct / max(1, len(dataset))


def train_classifier(root: str | Path, *, backbone: str = DEFAULT_BACKBONE, image_size: int = DEFAULT_SIZE,
                     pretrained: bool = False, steps: int = 300, batch_size: int = 32, lr: float = 1e-3,
                     seed: int = 0, device: str = "auto", out: str | Path | None = None, progress=None) -> DomainClassifier:
    """Fine-tune ``backbone`` on ``ROOT/train/<domain>/`` and measure it on ``ROOT/val/<domain>/``."""
    from ganzoo.data.imagefolder import ImageFolderDataset
    from ganzoo.trainer import pick_device

    if steps < 1 or batch_size < 1:
        raise GanzooError(f"train-classifier needs steps >= 1 and batch >= 1, got {steps} and {batch_size}.")
    train = ImageFolderDataset(str(root), "train", image_size=image_size, flip=True, randcrop_prob=0.5)
    val = ImageFolderDataset(str(root), "val", image_size=image_size, domains=train.domains)
    folder = Path(out) if out else default_folder(root, backbone, image_size)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GanzooError(f"Cannot write the classifier to {folder} ({exc.strerror}); name a writable folder with --out.") from None
    dev = pick_device(device)
    torch.manual_seed(seed)
    net = _create(backbone, len(train.domains), pretrained).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    rng = random.Random(seed)
    groups = train.indices_by_label()
    t0 = time.perf_counter()
    net.train()
    for step in range(steps):
        # class-balanced batches, as the GAN trainer draws them
        indices = [rng.choice(groups[rng.randrange(len(groups))]) for _ in range(batch_size)]
        images, labels = next(_batches(train, indices, batch_size, rng))
        loss = F.cross_entropy(net(images.to(dev)), labels.to(dev), label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress is not None:
            progress(step + 1, steps, float(loss))
    classifier = DomainClassifier(net.eval(), {"backbone": backbone, "domains": train.domains, "image_size": image_size,
                                               "pretrained": pretrained})
    classifier.config.update({
        "val_accuracy": accuracy(classifier, val), "val_images": len(val), "train_images": len(train), "steps": steps,
        "batch_size": batch_size, "lr": lr, "seed": seed, "data": str(Path(root).expanduser().resolve()),
        "train_seconds": round(time.perf_counter() - t0, 1),
    })
    classifier.save(folder)
    return classifier.to("cpu")
