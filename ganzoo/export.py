"""Export a model's inference path as ONNX, TorchScript or a ``torch.export`` program (``ganzoo export``).

What a family exports comes from the family: a model that is an :class:`ganzoo.model.ExportableModel` returns
its graphs from ``export_graphs()``, each an :class:`ExportGraph` (a plain ``nn.Module`` whose inputs are tensors,
described by :class:`TensorSpec`). The core knows no family: it builds example inputs from the specs, exports
with a dynamic batch (and dynamic height / width where a graph says it is fully convolutional), checks the exported
file against PyTorch, and writes ``export.json`` saying the inputs, their ranges and the normalisation.

Every graph is first captured by ``torch.export`` (one capture serves the exported-program and ONNX formats);
TorchScript is ``torch.jit.trace`` of the same module. Everything is written into a folder beside ``--out`` and
renamed into place at the end, so a failed export leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ganzoo.errors import GanzooError

FORMATS = ("onnx", "torchscript", "exported-program")
#: the ONNX opset every graph is written in (ONNX Runtime 1.20+ runs it; opset 18 has every op the families use)
OPSET = 18
SUFFIX = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "exported-program": ".pt2"}
MANIFEST = "export.json"
#: the batch of the example inputs a graph is captured with (not 1: torch.export would specialise a size-1 batch)
EXAMPLE_BATCH = 2
#: the largest batch and side a dynamic graph accepts (torch.export wants bounds; these are far beyond memory)
MAX_BATCH = 4096
MAX_SIDE = 16384
#: what each kind of input holds, for export.json and for drawing example inputs
KINDS = {
    "image": "[-1, 1]: RGB, channels first, pixel / 127.5 - 1",
    "normal": "N(0, I): a standard normal draw per value",
    "index": "integer domain index in 0..{high_minus_1}",
    "label": "{0, 1} per entry: a one-hot (or multi-hot attribute) target label vector",
    "code": "real values, as the matching graph outputs them",
}
NORMALIZATION = {
    "input": "float32 RGB, channels first (N, 3, H, W), in [-1, 1]: x = pixel / 127.5 - 1 (mean 0.5, std 0.5 on [0, 1])",
    "output": "float32 RGB, channels first, in [-1, 1]: pixel = (y + 1) * 127.5, rounded and clipped to 0..255",
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
    "range": [-1.0, 1.0],
}


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of an exported graph.

    ``shape`` holds ints for fixed sizes and the names "batch", "height", "width" for dynamic ones; ``kind`` is one
    of :data:`KINDS` ("index" inputs take values 0..``high``-1); ``meaning`` says what it is, for export.json.
    """

    name: str
    shape: tuple[int | str, ...]
    kind: str = "image"
    meaning: str = ""
    high: int | None = None

    @property
    def dtype(self) -> torch.dtype:
        return torch.int64 if self.kind == "index" else torch.float32

    def describe(self) -> dict[str, Any]:
        what = KINDS[self.kind].replace("{high_minus_1}", str((self.high or 1) - 1))
        return {"name": self.name, "shape": list(self.shape), "dtype": str(self.dtype).removeprefix("torch."),
                "range": what, "meaning": self.meaning}


@dataclass
class ExportGraph:
    """One graph a family exports: ``module(*inputs)`` returns ``output``.

    ``spatial`` is "dynamic" when the graph is fully convolutional (any height and width that are multiples of
    ``multiple_of`` and at least ``min_size``) or "fixed" (the model's image size only). ``reference``, where given,
    is the model's own inference path for the same inputs (``translate`` and friends): the tests check that the
    module computes it, so what is exported is what ``ganzoo translate`` runs. ``notes`` go into export.json.
    """

    name: str
    module: nn.Module
    inputs: tuple[TensorSpec, ...]
    output: TensorSpec
    description: str
    spatial: str = "fixed"
    multiple_of: int = 1
    min_size: int = 1
    reference: Callable[..., torch.Tensor] | None = None
    notes: list[str] = field(default_factory=list)

    def describe(self, image_size: int, fmt: str) -> dict[str, Any]:
        if not any(len(s.shape) == 4 for s in self.inputs):
            spatial = {"kind": "none"}  # no image input (a mapping network)
        elif self.spatial == "dynamic":
            spatial = {"kind": "dynamic", "multiple_of": self.multiple_of, "min": self.min_size}
        else:
            spatial = {"kind": "fixed", "size": image_size}
        return {"name": self.name, "file": self.name + SUFFIX[fmt], "description": self.description,
                "inputs": [s.describe() for s in self.inputs], "outputs": [self.output.describe()],
                "batch": "dynamic", "spatial": spatial, **({"notes": self.notes} if self.notes else {})}


# --------------------------------------------------------------------------- inputs and shapes


def example_inputs(graph: ExportGraph, *, batch: int = EXAMPLE_BATCH, size: int | tuple[int, int] = 16,
                   seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Inputs for ``graph`` of the given batch and spatial size, drawn from each input's kind (seeded)."""
    height, width = (size, size) if isinstance(size, int) else size
    dims = {"batch": batch, "height": height, "width": width}
    gen = torch.Generator().manual_seed(seed)
    tensors = []
    for spec in graph.inputs:
        shape = tuple(dims[d] if isinstance(d, str) else d for d in spec.shape)
        if spec.kind == "image":
            t = torch.rand(shape, generator=gen) * 2 - 1
        elif spec.kind == "index":
            t = torch.randint(0, spec.high or 1, shape, generator=gen)
        elif spec.kind == "label":
            t = (torch.rand(shape, generator=gen) < 0.5).float()
        else:  # normal draws, codes
            t = torch.randn(shape, generator=gen)
        tensors.append(t)
    return tuple(tensors)


def _dynamic_shapes(graph: ExportGraph) -> tuple[dict[int, Any], ...]:
    from torch.export import Dim

    dims: dict[str, Any] = {"batch": Dim("batch", min=1, max=MAX_BATCH)}
    if graph.spatial == "dynamic":
        k = graph.multiple_of
        low = max(1, math.ceil(graph.min_size / k))
        for side in ("height", "width"):
            base = Dim(f"{side}_over_{k}" if k > 1 else side, min=low, max=MAX_SIDE // k)
            dims[side] = base * k if k > 1 else base
    # by position: the module's own argument names need not be the specs' names
    return tuple({axis: dims[d] for axis, d in enumerate(spec.shape) if isinstance(d, str) and d in dims}
                 for spec in graph.inputs)


@contextlib.contextmanager
def _quiet():
    """torch's exporters print progress lines and warn about their own internals; the CLI shows its own progress."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # e.g. torch.jit's deprecation: the format is asked for by name
        yield


# --------------------------------------------------------------------------- export and run one graph


def capture_size(graph: ExportGraph, image_size: int) -> int:
    """The example side a graph is captured at: the image size, except that a dynamic side must hold its stride at
    least twice (torch.export fixes a dimension whose example is 1, here the side over its stride)."""
    if graph.spatial != "dynamic":
        return image_size
    k = max(graph.multiple_of, 1)
    return max(image_size, 2 * k, graph.min_size)


def capture(graph: ExportGraph, image_size: int):
    """``graph`` as a ``torch.export`` program with a dynamic batch (and dynamic spatial size where declared)."""
    module = graph.module.eval()
    args = example_inputs(graph, size=capture_size(graph, image_size))
    with _quiet(), torch.no_grad():
        try:
            return torch.export.export(module, args, dynamic_shapes=_dynamic_shapes(graph), strict=False)
        except Exception as exc:  # noqa: BLE001 - a family's graph that does not trace is a bug in the family
            raise ExportFailed(f"graph {graph.name!r} could not be captured by torch.export ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''}).") from exc


class ExportFailed(GanzooError):
    """A graph could not be exported in the asked format."""


def write_graph(graph: ExportGraph, fmt: str, path: Path, image_size: int, program=None) -> None:
    """Write ``graph`` in ``fmt`` to ``path`` (``program``: its :func:`capture`, when the caller already has one)."""
    if fmt == "torchscript":
        module = graph.module.eval()
        with _quiet(), torch.no_grad():
            traced = torch.jit.trace(module, example_inputs(graph, size=capture_size(graph, image_size)), check_trace=False)
        traced.save(str(path))
        return
    program = program if program is not None else capture(graph, image_size)
    if fmt == "exported-program":
        torch.export.save(program, str(path))
        return
    names = [s.name for s in graph.inputs]
    with _quiet():
        try:
            torch.onnx.export(program, example_inputs(graph, size=capture_size(graph, image_size)), str(path), input_names=names,
                              output_names=[graph.output.name], opset_version=OPSET, external_data=False, dynamo=True)
        except Exception as exc:  # noqa: BLE001 - as in capture
            raise ExportFailed(f"graph {graph.name!r} could not be converted to ONNX ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''}).") from exc


def load_runner(fmt: str, path: Path) -> Callable[..., torch.Tensor]:
    """A function that runs the exported file at ``path`` on CPU tensors and returns a CPU tensor:
    onnxruntime's CPU provider for ONNX, ``torch.jit.load`` / ``torch.export.load`` for the others."""
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]

        def run(*inputs: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})[0])

        return run
    with _quiet():
        if fmt == "torchscript":
            module = torch.jit.load(str(path), map_location="cpu")
        else:
            module = torch.export.load(str(path)).module()

    def run_torch(*inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(*inputs)

    return run_torch


def check_inputs(graph: ExportGraph, image_size: int) -> tuple[torch.Tensor, ...]:
    """Inputs unlike the capture's: batch 3 and, for dynamic graphs, a different non-square size (dynamic for real)."""
    size: int | tuple[int, int] = image_size
    if graph.spatial == "dynamic":
        k = max(graph.multiple_of, 1)
        side = capture_size(graph, image_size)
        size = (side + k, side + 2 * k)
    inputs = example_inputs(graph, batch=3, size=size, seed=1)
    # every row its own target domain (where there are several): a domain baked into the graph would show
    return tuple(torch.arange(t.shape[0]) % (spec.high or 1) if spec.kind == "index" else t
                 for spec, t in zip(graph.inputs, inputs))


def max_difference(graph: ExportGraph, run: Callable[..., torch.Tensor], image_size: int) -> float:
    """Largest absolute difference between the exported graph and the PyTorch module on :func:`check_inputs`."""
    inputs = check_inputs(graph, image_size)
    with torch.no_grad():
        expected = graph.module.eval()(*inputs)
    got = run(*inputs)
    if got.shape != expected.shape:
        return math.inf
    return float((got.float() - expected.float()).abs().max())


# --------------------------------------------------------------------------- a whole model


def model_graphs(model) -> list[ExportGraph]:
    """The graphs ``model``'s family declares, on CPU in fp32; one sentence when it declares none."""
    from ganzoo.model import ExportableModel

    if not isinstance(model, ExportableModel):
        raise GanzooError(f"Model family {model.name} declares nothing to export (no export_graphs method); "
                          "see CONTRIBUTING.md, \"Export\", for how a family declares its graphs.")
    model.to("cpu")
    graphs = list(model.export_graphs())
    for graph in graphs:
        graph.module = graph.module.float().eval()
    return graphs


def export_model(model, fmt: str, out: Path, *, source: str = "", check: bool = True,
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Export every graph of ``model`` in ``fmt`` into the folder ``out`` with ``export.json``; return that manifest.

    ``out`` must not exist or be empty. Files are written into a temporary folder beside it, renamed into place once
    every graph is written (and, with ``check``, matched PyTorch to 1e-4 on fresh inputs).
    """
    if fmt not in FORMATS:
        from ganzoo.errors import did_you_mean

        raise GanzooError(f'--format "{fmt}" is not one of {", ".join(FORMATS)}.{did_you_mean(fmt, FORMATS)}')
    if fmt == "onnx":
        require_onnx()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GanzooError(f"--out {out} already exists and is not empty; choose a new folder so no files get mixed.")
    graphs = model_graphs(model)
    size = model.image_size
    started = time.perf_counter()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise GanzooError(f"--out {out} cannot be written ({exc.strerror or exc}); choose a writable folder.") from None
    try:
        described = []
        for graph in graphs:
            if progress:
                progress(f"{graph.name}: export as {fmt}")
            path = tmp / (graph.name + SUFFIX[fmt])
            begun = time.perf_counter()
            write_graph(graph, fmt, path, size)
            entry = graph.describe(size, fmt)
            entry["export_seconds"] = round(time.perf_counter() - begun, 3)
            if check:
                if progress:
                    progress(f"{graph.name}: check against PyTorch")
                begun = time.perf_counter()
                diff = max_difference(graph, load_runner(fmt, path), size)
                entry["check_seconds"] = round(time.perf_counter() - begun, 3)
                if not diff <= 1e-4:
                    raise ExportFailed(f"graph {graph.name!r} exported as {fmt} differs from PyTorch by {diff:.3g} "
                                       "(more than 1e-4); please report it with the model folder.")
                entry["check"] = {"max_abs_difference": diff, "batch": 3, "against": "PyTorch, same inputs"}
            described.append(entry)
        manifest = {
            "format": fmt,
            **({"opset": OPSET} if fmt == "onnx" else {}),
            "torch": torch.__version__,
            "model": model.name,
            "source": source,
            "domains": list(model.domains),
            "image_size": size,
            "normalization": NORMALIZATION,
            "graphs": described,
            "export_seconds": round(time.perf_counter() - started, 3),
        }
        import ganzoo

        manifest["ganzoo_version"] = ganzoo.__version__
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            out.rmdir()  # empty (checked above)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def require_onnx() -> None:
    """One sentence when the ONNX packages are missing."""
    import importlib.util

    missing = [name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise GanzooError(f"--format onnx needs the {' and '.join(missing)} package(s); install them with "
                          "pip install 'ganzoo[export]'.")
