"""The web demo: one Gradio page for any model folder, Hub id or zoo name (``ganzoo demo``, ``ganzoo space``).

What the page offers comes from what the model declares, never from its family's name:

- the targets are :meth:`GANModel.sheet_targets` (a dropdown when there is more than one, nothing when there is
  one, as for pix2pix, whose only target is its output domain);
- an :class:`ganzoo.model.AttributeModel` whose ``label_kind`` is an attribute kind gets one toggle per name in its
  ``attribute_names`` instead of a target (all toggles are assigned, so no source attributes are needed);
- a :class:`ganzoo.model.StyleModel` gets a seed, a "new style" button, an optional reference image and a strip of
  latent styles (the result is the strip's first picture: the same seed gives the same result).

:class:`DemoPage` holds that plan and does the translating (no gradio needed, so it is tested on its own);
:func:`build_blocks` lays it out as ``gradio.Blocks``. Gradio is the optional extra ``ganzoo[demo]``; it is
imported only here, with its usage analytics off unless the environment turns them on.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganzoo.errors import GanzooError

#: how many latent styles the variation strip shows
STRIP_STYLES = 5
#: bundled example inputs (drawn with the built-in shapes generator)
NUM_EXAMPLES = 3
INSTALL_HINT = "pip install 'ganzoo[demo]'"
#: display height of the input and result images (small models' pixels are scaled up, unsmoothed: see CSS)
IMAGE_HEIGHT = 256
CSS = ("#input-image img, #result img, #latent-strip img, #reference-image img "
       "{ width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; }")


class DemoUnavailable(GanzooError):
    """The optional demo extra (gradio) is not installed."""


def gradio_installed() -> bool:
    """Whether gradio can be found, without importing it (an import takes seconds): checked before loading a model."""
    import importlib.util

    try:
        return importlib.util.find_spec("gradio") is not None
    except (ImportError, ValueError):
        return False


def require_gradio() -> None:
    if not gradio_installed():
        raise DemoUnavailable(f"The web demo needs gradio, which is not installed; install it with {INSTALL_HINT}.")


def import_gradio():
    """gradio, with analytics off (no request leaves the machine unless the user's environment asks for it)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ImportError:
        raise DemoUnavailable(f"The web demo needs gradio, which is not installed; install it with {INSTALL_HINT}.") from None
    return gradio


@dataclass
class DemoPage:
    """What the page for one loaded model offers, and the translation behind its button."""

    model: Any
    title: str
    targets: list[tuple[str, int]] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    styles: bool = False

    @classmethod
    def for_model(cls, model, title: str | None = None) -> "DemoPage":
        from ganzoo.model import ATTRIBUTE_KINDS, AttributeModel, StyleModel

        attributes: list[str] = []
        if isinstance(model, AttributeModel) and getattr(model, "label_kind", "one-hot") in ATTRIBUTE_KINDS:
            attributes = list(getattr(model, "attribute_names", model.domains))
        targets = [] if attributes else list(model.sheet_targets())
        return cls(model=model, title=title or model.name, targets=targets, attributes=attributes,
                   styles=isinstance(model, StyleModel))

    @property
    def image_size(self) -> int:
        return int(self.model.image_size)

    @property
    def target_labels(self) -> list[str]:
        return [label for label, _ in self.targets]

    @property
    def chooses_target(self) -> bool:
        """A target dropdown only where there is a choice."""
        return len(self.targets) > 1

    def describe(self) -> str:
        """One line under the title: what this model does and what to give it."""
        size = self.image_size
        if self.attributes:
            what = f"toggle attributes ({', '.join(self.attributes)})"
        elif self.targets:
            what = "translate into " + (" or ".join(self.target_labels) if self.chooses_target else self.target_labels[0])
        else:
            what = "translate"
        styles = "; styles come from the seed or a reference image" if self.styles else ""
        return f"{self.model.name}: {what}{styles}. Inputs are resized to {size}x{size} px."

    def _input(self, image):
        import numpy as np
        import torch
        from PIL import Image

        from ganzoo.data.images import resize, to_tensor

        if image is None:
            raise GanzooError("Upload an image (or pick an example) first.")
        if isinstance(image, np.ndarray):
            image = Image.fromarray(image.astype(np.uint8))
        x = resize(to_tensor(image.convert("RGB")), self.image_size)
        return x.unsqueeze(0).to(self.model.device, torch.float32)

    def _target(self, x, target: str | None, attributes: list[str] | None):
        import torch

        if self.attributes:
            chosen = set(attributes or ())
            return self.model.attribute_target(x, {name: int(name in chosen) for name in self.attributes})
        if not self.targets:
            raise GanzooError(f"Model {self.model.name} declares no target to translate into.")
        labels = self.target_labels
        if target is None or not self.chooses_target:
            target = labels[0] if target is None or target not in labels else target
        if target not in labels:
            raise GanzooError(f'Target "{target}" is not one of this model\'s targets ({", ".join(labels)}).')
        index = self.targets[labels.index(target)][1]
        return torch.full((x.shape[0],), index, dtype=torch.long, device=x.device)

    def run(self, image, target: str | None = None, attributes: list[str] | None = None, seed: int = 0, reference=None):
        """(result, strip) as uint8 HxWx3 arrays; the strip is None for models without styles.

        With styles, picture ``k`` of the strip uses the latent code drawn from seed ``seed + k``, and the result is
        the reference's style when one is given, else picture 0.
        """
        import torch

        from ganzoo.image_output import to_uint8

        x = self._input(image)
        t = self._target(x, target, attributes)
        seed = int(seed or 0)

        def draw(k: int, ref=None):
            return self.model.translate(x, t, reference=ref, generator=torch.Generator().manual_seed(seed + k))[0]

        if not self.styles:
            return to_uint8(draw(0)).numpy(), None
        strip = [draw(k) for k in range(STRIP_STYLES)]
        result = strip[0] if reference is None else draw(0, self._input(reference))
        return to_uint8(result).numpy(), to_uint8(torch.cat(strip, dim=-1)).numpy()


def write_examples(page: DemoPage, folder: Path) -> list[Path]:
    """A few example inputs drawn by the built-in shapes generator (one colour family each) as PNGs in ``folder``."""
    from PIL import Image

    from ganzoo.data.shapes import DEFAULT_DOMAINS, FAMILY_HUES, render_item

    folder.mkdir(parents=True, exist_ok=True)
    families = [d for d in page.model.domains if d in FAMILY_HUES] or list(DEFAULT_DOMAINS)
    paths = []
    for k in range(NUM_EXAMPLES):
        family = families[k % len(families)]
        pixels, _ = render_item(random.Random(1000 + k), max(page.image_size, 64), family)
        path = folder / f"example_{k}_{family}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def build_blocks(page: DemoPage, *, examples: list[Path] | None = None):
    """The page as ``gradio.Blocks``: input (and examples), the controls the model declares, the result."""
    gr = import_gradio()

    with gr.Blocks(title=f"ganzoo demo: {page.title}", analytics_enabled=False) as blocks:
        gr.Markdown(f"## ganzoo demo: {page.title}\n{page.describe()}")
        with gr.Row():
            with gr.Column():
                source = gr.Image(type="pil", label="input image", sources=["upload", "clipboard"], image_mode="RGB",
                                  format="png", height=IMAGE_HEIGHT, elem_id="input-image")
                target = attributes = seed = reference = new_style = None
                if page.chooses_target:
                    target = gr.Dropdown(page.target_labels, value=page.target_labels[0], label="target domain",
                                         elem_id="target")
                if page.attributes:
                    attributes = gr.CheckboxGroup(page.attributes, value=[], label="attributes of the result",
                                                  elem_id="attributes")
                if page.styles:
                    with gr.Row():
                        seed = gr.Number(0, precision=0, label="style seed", elem_id="seed")
                        new_style = gr.Button("new style", elem_id="new-style")
                    reference = gr.Image(type="pil", label="reference image (optional: use its style)",
                                         sources=["upload", "clipboard"], image_mode="RGB", format="png",
                                         height=IMAGE_HEIGHT // 2, elem_id="reference-image")
                button = gr.Button("translate", variant="primary", elem_id="translate")
            with gr.Column():
                result = gr.Image(type="numpy", label="result", format="png", interactive=False, height=IMAGE_HEIGHT,
                                  elem_id="result")
                strip = None
                if page.styles:
                    strip = gr.Image(type="numpy", label=f"{STRIP_STYLES} latent styles (seeds seed … seed+{STRIP_STYLES - 1})",
                                     format="png", interactive=False, height=IMAGE_HEIGHT // 2, elem_id="latent-strip")
        if examples:
            gr.Examples([[str(p)] for p in examples], inputs=[source], label="examples (drawn by the shapes generator)")

        inputs = [c for c in (source, target, attributes, seed, reference) if c is not None]
        outputs = [c for c in (result, strip) if c is not None]

        names = [n for n, c in (("image", source), ("target", target), ("attributes", attributes), ("seed", seed),
                                ("reference", reference)) if c is not None]

        def translate(*values):
            given = dict(zip(names, values))
            try:
                picture, variations = page.run(given["image"], given.get("target"), given.get("attributes"),
                                               given.get("seed") or 0, given.get("reference"))
            except GanzooError as exc:
                raise gr.Error(str(exc)) from None
            return (picture, variations) if strip is not None else picture

        button.click(translate, inputs=inputs, outputs=outputs, api_name="translate")
        if new_style is not None:
            def next_seed(value):
                return int(value or 0) + STRIP_STYLES  # the next style not yet in the strip

            new_style.click(next_seed, inputs=[seed], outputs=[seed], api_name="new_style").then(
                translate, inputs=inputs, outputs=outputs, api_visibility="private")
    return blocks


def build_demo(model_name: str, *, examples: str | Path | None = None, device: str = "cpu"):
    """Load ``model_name`` (folder, run directory, Hub id or zoo name, as ``ganzoo translate``) and build its page.

    ``examples`` is a folder to write the example inputs into (a temporary one when None). This is what a Space's
    ``app.py`` calls.
    """
    import ganzoo

    require_gradio()  # the install hint before loading (perhaps downloading) anything
    model = ganzoo.load(str(model_name), device=device)
    page = DemoPage.for_model(model, title=Path(str(model_name)).name if Path(str(model_name)).exists() else str(model_name))
    if examples is None:
        import tempfile

        examples = tempfile.mkdtemp(prefix="ganzoo-demo-examples-")
    return build_blocks(page, examples=write_examples(page, Path(examples)))


def launch_options(host: str, port: int | None, share: bool) -> dict[str, Any]:
    """Keyword arguments of ``Blocks.launch`` for ``ganzoo demo`` (no server-side rendering, no MCP server)."""
    return {"server_name": host, "server_port": port, "share": share, "ssr_mode": False, "mcp_server": False,
            "footer_links": [], "show_error": True, "theme": local_theme(), "css": CSS}


def local_theme():
    """Gradio's default look with system fonts: the default theme loads web fonts from Google's servers."""
    gr = import_gradio()
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "SFMono-Regular", "monospace"])


# --------------------------------------------------------------------------- Space


SPACE_APP = '''"""A Hugging Face Space running the ganzoo demo of {model} (written by `ganzoo space`)."""

from pathlib import Path

from ganzoo.demo import build_demo, launch_options

HERE = Path(__file__).resolve().parent
MODEL = {model_expr}

demo = build_demo(MODEL, examples=HERE / "examples")

if __name__ == "__main__":
    options = launch_options("0.0.0.0", 7860, False)
    demo.launch(**options)
'''

SPACE_README = """---
title: {title}
sdk: gradio
app_file: app.py
pinned: false
---

The ganzoo web demo of `{model}`: upload an image, choose the target, see the result.
Run it locally with `pip install -r requirements.txt && python app.py`, or with `ganzoo demo {served}`.
"""


def write_space(model_name: str, out: Path) -> list[Path]:
    """Write ``app.py``, ``requirements.txt`` and a Space ``README.md`` (and, for a local model, a copy of its model
    folder) into ``out``: a Hugging Face Space that serves the same page as ``ganzoo demo MODEL``.

    Everything is written in a sibling temporary folder and renamed into place, so a failure leaves nothing.
    """
    import shutil
    import tempfile

    import ganzoo
    from ganzoo.checkpoint import resolve_model_folder

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GanzooError(f"{out} already exists and is not empty; choose a new folder for the Space.")
    model = ganzoo.load(str(model_name), device="cpu")  # fails on a bad MODEL before anything is written
    page = DemoPage.for_model(model)
    local = Path(str(model_name)).exists()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        if local:
            shutil.copytree(resolve_model_folder(model_name), staging / "model",
                            ignore=shutil.ignore_patterns("train_state", "discriminator*.safetensors"))
            model_expr, shown = 'str(HERE / "model")', Path(str(model_name)).name
        else:
            model_expr, shown = repr(str(model_name)), str(model_name)
        (staging / "app.py").write_text(SPACE_APP.format(model=shown, model_expr=model_expr))
        (staging / "requirements.txt").write_text(f"ganzoo[demo]>={ganzoo.__version__}\n")
        (staging / "README.md").write_text(SPACE_README.format(title=f"ganzoo {shown}"[:60], model=shown,
                                                               served="model" if local else shown))
        write_examples(page, staging / "examples")
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(p for p in out.rglob("*") if p.is_file())
