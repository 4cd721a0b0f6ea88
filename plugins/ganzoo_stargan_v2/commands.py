"""The StarGAN v2 plugin's own CLI command, ``ganzoo align-faces``. Imported whenever the CLI starts, so it
imports only typer here; torch and the FAN come in the command body (see :mod:`ganzoo_stargan_v2.align`)."""

from __future__ import annotations

from pathlib import Path


def register_commands(app) -> None:
    import typer

    @app.command("align-faces")
    def align_faces(
        input_dir: Path = typer.Argument(..., help="folder of face photos"),
        output_dir: Path = typer.Argument(..., help="folder to write the aligned faces to (PNG, same names)"),
        fan: Path = typer.Option(..., "--fan", help="FAN weights: the official wing.ckpt, or a model folder with "
                                                   "fan.safetensors (`ganzoo pull stargan_v2.celeba_hq`)"),
        mean: Path = typer.Option(..., "--mean", help="the official celeba_lm_mean.npz (98 mean landmarks)"),
        size: int = typer.Option(256, "--size", min=16, max=4096, help="side of the aligned images"),
        min_confidence: float = typer.Option(0.2, "--min-confidence", help="skip images whose median landmark "
                                                                            "heatmap peak is below this (no face)"),
    ):
        """Align face photos to the CelebA-HQ landmark layout with the FAN (StarGAN v2's --mode align)."""
        from ganzoo_stargan_v2.align import FanLandmarks, align_folder, load_mean_layout
        from ganzoo_stargan_v2.convert import load_fan_weights
        from ganzoo_stargan_v2.fan import FAN

        layout = load_mean_layout(mean)
        network = FAN()
        network.load_state_dict(load_fan_weights(fan), strict=True)
        written, skipped = align_folder(input_dir, output_dir, FanLandmarks(network), layout, size=size,
                                        min_confidence=min_confidence)
        total = sum(skipped.values())
        why = ", ".join(f"{n} {reason}" for reason, n in skipped.items() if n)
        print(f"aligned {written} image(s) into {output_dir}; skipped {total}" + (f" ({why})" if why else ""))
