"""``ganzoo export``: every registered family's inference path round-trips through onnxruntime (CPU) and the
torch.export program to PyTorch's outputs within 1e-4.

The families come from the registry (as in tests/test_contract.py): a new family is covered without editing this
file, and one that declares no ``export_graphs`` fails with the sentence ``ganzoo export`` would print. Each graph is
checked three ways: the graph's module computes the model's own inference path (``translate`` and friends) on the
same inputs; the exported files give the module's outputs on inputs of another batch (3, not the capture's 2) and,
where the graph is fully convolutional, another non-square size; every row of a batch has its own target domain, so
a domain baked into the graph would show.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from ganzoo import export
from ganzoo.errors import GanzooError
from ganzoo.trainer import build_dataset
from tests import families

MODELS = families.model_names()
TOLERANCE = 1e-4

_models: dict[str, object] = {}


def tiny_model(name: str):
    """``name``'s tiny recipe built with its own initialisation (no training: export does not care), on CPU."""
    if name not in _models:
        try:
            recipe = families.tiny_recipe(name)
        except families.NotDeclared as exc:
            pytest.fail(str(exc), pytrace=False)
        model = families.model_class(name)(recipe, build_dataset(recipe, "train").domains)
        torch.manual_seed(0)
        model.build()
        _models[name] = model
    return _models[name]


def graphs_of(model):
    try:
        return export.model_graphs(model)
    except GanzooError as exc:
        pytest.fail(str(exc), pytrace=False)


#: (model, graph name) -> the ONNX file the round trip wrote, for the tests that look inside one
_onnx_files: dict[tuple[str, str], Path] = {}


def structure(graph) -> str:
    """What an export depends on besides the weights: the module's layers and the inputs' shapes and kinds."""
    return repr(graph.module) + repr([(s.shape, s.kind) for s in graph.inputs])


@pytest.mark.parametrize("model", MODELS)
def test_every_graph_round_trips_through_onnxruntime_and_the_exported_program(model, tmp_path_factory):
    """Every graph computes the model's own inference path; every graph of a new structure (a pairwise family's
    second direction is its first with other weights) round-trips through both files within 1e-4."""
    net = tiny_model(model)
    size = net.image_size
    graphs = graphs_of(net)
    assert graphs, f"{model} declares no graphs"
    folder = tmp_path_factory.mktemp(f"{model}-export")
    seen = set()
    for graph in graphs:
        inputs = export.check_inputs(graph, size)
        for spec, value in zip(graph.inputs, inputs):
            assert value.shape[0] == 3 and value.dtype == spec.dtype
            if spec.kind == "index" and (spec.high or 1) > 1:
                assert len(set(value.tolist())) > 1, "every batch holds more than one target domain"
        with torch.no_grad():
            expected = graph.module.eval()(*inputs)
            if graph.reference is not None:  # the graph is the model's own inference path
                torch.testing.assert_close(expected, graph.reference(*inputs), rtol=0, atol=1e-5)
        dims = {d: value.shape[axis] for spec, value in zip(graph.inputs, inputs)
                for axis, d in enumerate(spec.shape) if isinstance(d, str)}
        assert tuple(expected.shape) == tuple(dims.get(d, d) for d in graph.output.shape)
        if structure(graph) in seen:
            continue
        seen.add(structure(graph))
        program = export.capture(graph, size)
        for fmt in ("exported-program", "onnx"):
            path = folder / (graph.name + export.SUFFIX[fmt])
            export.write_graph(graph, fmt, path, size, program=program)
            got = export.load_runner(fmt, path)(*inputs)
            difference = float((got - expected).abs().max())
            assert difference <= TOLERANCE, f"{model} {graph.name} as {fmt}: {difference:.3g}"
        _onnx_files[model, graph.name] = path


def test_onnx_graph_takes_the_domain_as_an_input(tmp_path):
    """StarGAN v2's per-domain heads: the same noise into each domain through one ONNX file gives each domain's style."""
    import onnx

    net = tiny_model("stargan_v2")
    (mapping,) = [g for g in graphs_of(net) if g.name == "mapping_network"]
    path = _onnx_files.get(("stargan_v2", "mapping_network"))
    if path is None:  # run on its own
        path = tmp_path / "m.onnx"
        export.write_graph(mapping, "onnx", path, net.image_size)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert ops & {"GatherElements", "Gather", "GatherND"}, ops
    z = torch.randn(1, net.latent_dim).expand(len(net.domains), -1).contiguous()
    domains = torch.arange(len(net.domains))
    styles = export.load_runner("onnx", path)(z, domains)
    torch.testing.assert_close(styles, net.style_codes(domains, z=z), rtol=0, atol=TOLERANCE)
    assert not torch.allclose(styles[0], styles[1])


def test_torchscript_runs_the_tiled_label_at_any_batch_and_size(tmp_path):
    net = tiny_model("stargan")
    (graph,) = graphs_of(net)
    export.write_graph(graph, "torchscript", tmp_path / "g.pt", net.image_size)
    assert export.max_difference(graph, export.load_runner("torchscript", tmp_path / "g.pt"), net.image_size) <= TOLERANCE


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return tiny_model("stargan").save_pretrained(tmp_path_factory.mktemp("v1") / "model")


def invoke(*args: str):
    """The CLI in this process (its graphs are then captured with warm caches)."""
    from typer.testing import CliRunner

    from ganzoo.cli import app

    return CliRunner().invoke(app, list(args), env={**os.environ, "COLUMNS": "200"})


def test_cli_exports_a_model_folder_with_its_manifest(model_folder, tmp_path):
    out = tmp_path / "exported"
    result = invoke("export", str(model_folder), "--format", "exported-program", "--out", str(out))
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / export.MANIFEST).read_text())
    assert manifest["format"] == "exported-program" and manifest["model"] == "stargan" and "opset" not in manifest
    assert manifest["normalization"]["range"] == [-1.0, 1.0] and manifest["normalization"]["mean"] == [0.5] * 3
    (graph,) = manifest["graphs"]
    assert sorted(p.name for p in out.iterdir()) == sorted([export.MANIFEST, graph["file"]])
    net = tiny_model("stargan")
    assert [i["name"] for i in graph["inputs"]] == ["image", "label"]
    assert graph["inputs"][0]["range"].startswith("[-1, 1]") and graph["inputs"][1]["shape"] == ["batch", len(net.domains)]
    assert graph["spatial"] == {"kind": "dynamic", "multiple_of": 4, "min": 8}
    assert graph["check"]["max_abs_difference"] <= TOLERANCE
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary folder left behind"
    program = torch.export.load(str(out / graph["file"])).module()
    x, c = torch.rand(1, 3, 12, 20) * 2 - 1, torch.eye(len(net.domains))[:1]
    torch.testing.assert_close(program(x, c), net.translate(x, c), rtol=0, atol=TOLERANCE)


def test_manifest_of_style_graphs_names_the_domain_input():
    net = tiny_model("stargan_v2")
    described = {g.name: g.describe(net.image_size, "onnx") for g in graphs_of(net)}
    assert set(described) == {"mapping_network", "style_encoder", "generator"}
    domain = described["mapping_network"]["inputs"][1]
    assert domain["name"] == "domain" and domain["dtype"] == "int64" and domain["shape"] == ["batch"]
    assert domain["range"] == f"integer domain index in 0..{len(net.domains) - 1}"
    assert described["generator"]["spatial"]["kind"] == "dynamic" and described["style_encoder"]["spatial"]["kind"] == "fixed"
    assert described["mapping_network"]["spatial"] == {"kind": "none"}
    assert described["generator"]["file"] == "generator.onnx"


@pytest.mark.parametrize("args, fragment", [
    (["--format", "coreml"], "is not one of onnx, torchscript, exported-program"),
    (["--format", "onnx", "--nonempty"], "already exists and is not empty"),
    (["--format", "exported-program", "--missing-model"], "does not exist"),
])
def test_cli_bad_input_is_one_sentence_and_writes_nothing(model_folder, tmp_path, args, fragment):
    out = tmp_path / "out"
    if "--nonempty" in args:
        args = [a for a in args if a != "--nonempty"]
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    if "--missing-model" in args:
        args = [a for a in args if a != "--missing-model"]
        model_folder = tmp_path / "no-such-model"
    result = invoke("export", str(model_folder), *args, "--out", str(out))
    assert result.exit_code == 2, result.output
    assert fragment in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out"] if out.exists() else [])
    if out.exists():
        assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_a_failed_export_leaves_nothing_half_written(monkeypatch, tmp_path):
    net = tiny_model("stargan_v2")
    written = []
    real = export.write_graph

    def fail_on_second(graph, fmt, path, size, program=None):
        if written:
            raise export.ExportFailed(f"graph {graph.name!r} failed on purpose.")
        real(graph, fmt, path, size, program)
        written.append(path)

    monkeypatch.setattr(export, "write_graph", fail_on_second)
    with pytest.raises(export.ExportFailed):
        export.export_model(net, "exported-program", tmp_path / "out", check=False)
    assert written and not written[0].exists()
    assert list(tmp_path.iterdir()) == []


def test_onnx_without_its_packages_says_how_to_install(monkeypatch, model_folder, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name.startswith("onnx") else real(name, *a))
    with pytest.raises(GanzooError, match=r"pip install 'ganzoo\[export\]'"):
        export.require_onnx()
    result = invoke("export", str(model_folder), "--format", "onnx", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "pip install 'ganzoo[export]'" in result.output
    assert not (tmp_path / "o").exists()


def test_a_family_without_export_graphs_gets_one_sentence():
    class Plain:
        name = "plain"

    with pytest.raises(GanzooError, match="declares nothing to export") as info:
        export.model_graphs(Plain())
    assert "\n" not in str(info.value)


def test_the_gather_picks_what_the_official_indexing_picked():
    """StarGAN v2's heads are picked with a gather (exportable) instead of ``out[arange(N), y]``: same values, same
    gradients."""
    from ganzoo_stargan_v2.networks import pick_domain

    per_domain = torch.randn(5, 3, 4, requires_grad=True)
    y = torch.tensor([2, 0, 1, 2, 1])
    official = per_domain[torch.arange(5), y]
    assert torch.equal(pick_domain(per_domain, y), official)
    (grad_gather,) = torch.autograd.grad(pick_domain(per_domain, y).square().sum(), per_domain)
    (grad_index,) = torch.autograd.grad(official.square().sum(), per_domain)
    assert torch.equal(grad_gather, grad_index)
