"""``ganzoo demo`` (a Gradio page for a model) and ``ganzoo space`` (the same page as a Hugging Face Space folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ganzoo.console import err
from ganzoo.errors import GanzooError

MODEL_HELP = "model folder, run directory, Hub id (org/name\\[@rev]) or pretrained name"


def _check_port(host: str, port: int) -> None:
    """Refuse a port something already listens on (gradio would otherwise search for another one or fail late)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise GanzooError(f"Cannot serve the demo on {host}:{port} ({exc.strerror or exc}); the port is in use or the "
                              "host is not this machine's: choose another --port or --host.") from None


def register_commands(app) -> None:
    @app.command()
    def demo(
        model: str = typer.Argument(..., help=MODEL_HELP),
        host: str = typer.Option("127.0.0.1", "--host", help="address to serve on (0.0.0.0: every interface)"),
        port: Optional[int] = typer.Option(None, "--port", min=1, max=65535, help="port to serve on (default: 7860, "
                                           "or the next free one)"),
        share: bool = typer.Option(False, "--share", help="also open a public gradio.live link (reaches Gradio's servers)"),
        device: str = typer.Option("cpu", "--device", help="cpu (default), cuda or auto"),
    ):
        """Serve a web page to try a model: upload an image (or pick an example), choose the target, see the result.

        The page shows what the model declares: a target domain (none for single-target models such as pix2pix), attribute toggles (attribute models), a style seed, a "new style" button, a reference image and a strip of latent styles (style models). Runs on CPU by default. Needs the demo extra: pip install 'ganzoo\\[demo]'.
        """
        from ganzoo.console import registry
        from ganzoo.demo import build_demo, launch_options, require_gradio

        require_gradio()
        if port is not None:
            _check_port(host, port)
        from ganzoo.trainer import pick_device

        registry()
        blocks = build_demo(model, device=str(pick_device(device)))
        where = f"http://{host}:{port}" if port is not None else f"{host}, the first free port from 7860"
        err.print(f"[bold]ganzoo demo[/]: {model} on {where} (Ctrl+C stops it)", highlight=False)
        blocks.launch(**launch_options(host, port, share))

    @app.command()
    def space(
        model: str = typer.Argument(..., help=MODEL_HELP),
        out_dir: Path = typer.Argument(..., help="new (or empty) folder for the Space: app.py, requirements.txt, README.md"),
    ):
        """Write a Hugging Face Space that serves the `ganzoo demo` page of MODEL (a local model is copied into it).

        Upload the folder as a Gradio Space (e.g. `hf upload ORG/NAME DIR --repo-type space`), or run it with
        `python DIR/app.py`.
        """
        from ganzoo.console import registry
        from ganzoo.demo import write_space

        registry()
        files = write_space(model, out_dir)
        err.print(f"[green]wrote[/] a Space for {model} to {out_dir} ({len(files)} files); run it with: "
                  f"pip install -r {out_dir / 'requirements.txt'} && python {out_dir / 'app.py'}", highlight=False)
