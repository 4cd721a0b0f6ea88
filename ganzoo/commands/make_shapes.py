"""``ganzoo make-shapes``: the built-in shapes set written out as an image folder."""

from __future__ import annotations

from pathlib import Path

import typer

from ganzoo.console import friendly, out
from ganzoo.errors import GanzooError

#: Images per domain (train + val) make-shapes writes at most: the shapes set is a smoke-test set.
MAX_SHAPES = 1_000_000


def register_commands(app) -> None:
    @app.command("make-shapes")
    @friendly
    def make_shapes(
        out_dir: Path = typer.Argument(..., help="folder to write OUT/{train,val}/<domain>/*.png into"),
        domains: str = typer.Option("red,green,blue", "--domains", help="colour families, comma-separated"),
        img_size: int = typer.Option(32, "--img-size", min=8),
        num_train: int = typer.Option(400, "--train", min=1, help="train images per domain"),
        num_val: int = typer.Option(50, "--val", min=1, help="val images per domain"),
        seed: int = typer.Option(0, "--seed"),
    ):
        """Write the built-in shapes set as an image folder (for compare, eval and train-classifier)."""
        from ganzoo.data.shapes import export_folder
        from ganzoo.output_paths import check_output_folder, writing
        from ganzoo.recipe import MAX_IMAGE_SIZE, check_seed

        check_seed(seed)
        if img_size > MAX_IMAGE_SIZE:
            raise GanzooError(f"--img-size {img_size} is more than {MAX_IMAGE_SIZE}, the largest image size ganzoo trains on; "
                              "choose a smaller size.")
        if (num_train + num_val) > MAX_SHAPES:
            raise GanzooError(f"--train {num_train} and --val {num_val} make {num_train + num_val:,} images per domain, more "
                              f"than the {MAX_SHAPES:,} make-shapes writes; ask for fewer.")
        check_output_folder(out_dir, flag="OUT")
        if out_dir.exists() and any(out_dir.iterdir()):
            raise GanzooError(f"{out_dir} is not empty; choose a new folder so no images get mixed.")
        with writing("the shapes folder", out_dir):
            counts = export_folder(out_dir, image_size=img_size, domains=[d.strip() for d in domains.split(",") if d.strip()],
                                   num_train=num_train, num_val=num_val, seed=seed)
        out.print(f"wrote {counts['train']} train and {counts['val']} val images to {out_dir}", highlight=False)
