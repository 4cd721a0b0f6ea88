"""``ganzoo export``: a model's inference path as ONNX, TorchScript or a torch.export program (see :mod:`ganzoo.export`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ganzoo.console import err, friendly, out, registry

FORMATS = ("onnx", "torchscript", "exported-program")  # ganzoo.export.FORMATS, without importing torch for --help


def register_commands(app) -> None:
    @app.command("export")
    @friendly
    def export_cmd(
        model: str = typer.Argument(..., help="model folder, run directory, Hub id (org/name[@rev]) or pretrained name"),
        format: str = typer.Option(..., "--format", "-f", help="onnx (opset 18; needs ganzoo\\[export]), torchscript or "
                                   "exported-program (torch.export, .pt2)"),
        out_dir: Path = typer.Option(..., "--out", "-o", help="new (or empty) folder for the graphs and export.json"),
        check: bool = typer.Option(True, "--check/--no-check", help="run every exported graph on fresh inputs (batch 3, "
                                   "another size where dynamic) and require PyTorch's outputs to 1e-4"),
    ):
        """Export the inference path (generators; mapping network and style encoder where the family has styles) with
        dynamic batch, dynamic height/width where fully convolutional, and export.json saying the inputs, their
        ranges and the normalisation."""
        from ganzoo.errors import GanzooError, did_you_mean

        if format not in FORMATS:
            raise GanzooError(f'--format "{format}" is not one of {", ".join(FORMATS)}.{did_you_mean(format, FORMATS)}')
        if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
            raise GanzooError(f"--out {out_dir} already exists and is not empty; choose a new folder so no files get mixed.")
        from ganzoo import export

        if format == "onnx":
            export.require_onnx()
        registry()
        from ganzoo import load

        net = load(model, device="cpu")
        with err.status(f"exporting {net.name}") as status:
            manifest = export.export_model(net, format, out_dir, source=model, check=check,
                                           progress=lambda what: status.update(f"exporting {net.name}: {what}"))
        for graph in manifest["graphs"]:
            inputs = ", ".join(f"{i['name']} {tuple(i['shape'])}" for i in graph["inputs"])
            checked = f"; max |diff| vs PyTorch {graph['check']['max_abs_difference']:.1e}" if "check" in graph else ""
            out.print(f"{graph['file']}: {graph['description']} ({inputs}){checked}", highlight=False, markup=False)
        opset = f", opset {manifest['opset']}" if "opset" in manifest else ""
        err.print(f"[green]exported[/] {len(manifest['graphs'])} graph(s) as {format}{opset} in "
                  f"{manifest['export_seconds']:.1f} s to {out_dir} (inputs, ranges and normalisation in "
                  f"{out_dir / export.MANIFEST})", highlight=False)
