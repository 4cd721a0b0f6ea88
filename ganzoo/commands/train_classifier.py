"""``ganzoo train-classifier``: the domain classifier behind the domain-accuracy metric."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ganzoo.console import err, friendly, out


def register_commands(app) -> None:
    @app.command("train-classifier")
    @friendly
    def train_classifier_cmd(
        data: Path = typer.Option(..., "--data", help="image folder ROOT/{train,val}/<domain>/"),
        backbone: str = typer.Option("resnet18", "--backbone", help="any timm model name"),
        pretrained: bool = typer.Option(False, "--pretrained", help="start from the backbone's ImageNet weights (from the HF cache)"),
        img_size: int = typer.Option(64, "--img-size", min=8),
        steps: int = typer.Option(300, "--steps", min=1),
        batch: int = typer.Option(32, "--batch", min=1),
        lr: float = typer.Option(1e-3, "--lr"),
        seed: int = typer.Option(0, "--seed"),
        device: str = typer.Option("auto", "--device"),
        out_dir: Optional[Path] = typer.Option(None, "--out", help="where to save it (default: ROOT/.ganzoo/classifiers/<backbone>-<size>px)"),
    ):
        """Fine-tune a timm classifier on the data's domains (used by the domain-accuracy metric)."""
        from rich.progress import BarColumn, Progress, TextColumn

        from ganzoo.metrics.classifier import train_classifier
        from ganzoo.recipe import check_seed

        check_seed(seed)

        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} loss {task.fields[loss]}"),
                      console=err, transient=True) as progress:
            task = progress.add_task(f"train {backbone}", total=steps, loss="")
            clf = train_classifier(data, backbone=backbone, image_size=img_size, pretrained=pretrained, steps=steps,
                                   batch_size=batch, lr=lr, seed=seed, device=device, out=out_dir,
                                   progress=lambda done, total, loss: progress.update(task, completed=done, loss=f"{loss:.3f}"))
        out.print(f"held-out accuracy [bold]{clf.val_accuracy:.3f}[/] on {clf.config['val_images']} val images; "
                  f"saved to {clf.folder}", highlight=False)
