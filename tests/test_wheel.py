"""The wheel is the product: build it, install it into a fresh virtual environment, use it from an empty folder.

Nothing is downloaded. The wheel is built by hatchling (the dev extra) from this checkout; the environment gets
the locked third-party versions with ``uv sync --frozen --offline --no-install-project`` (uv.lock, straight from
uv's cache, hard-linked: about a second), then the wheel with ``uv pip install --offline --no-deps``. The CLI then
runs as the installed ``ganzoo`` script, from an empty working directory with no PYTHONPATH, so everything it
finds (recipes by name, the built-in plugins, their commands) came out of the wheel.

uv is found as the Makefile finds it: ``$UV`` (set by ``uv run``, which ``make test`` uses), ``uv`` on PATH,
or ``.tools/bin/uv``; without uv the test is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def find_uv() -> str | None:
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(REPO / ".tools" / "bin" / "uv")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


UV = find_uv()
pytestmark = pytest.mark.skipif(UV is None, reason="needs uv ($UV, uv on PATH or .tools/bin/uv; `make test` provides it)")


class Installed:
    def __init__(self, root: Path, venv: Path, seconds: float):
        self.root, self.venv, self.seconds = root, venv, seconds
        self.workdir = root / "empty"
        self.workdir.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        self.env = {**env, "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", "OMP_NUM_THREADS": "1",
                    "COLUMNS": "200", "HF_HOME": str(root / "hf"), "TORCH_HOME": str(root / "torch"),
                    "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        if self.env.pop("PYTHONDONTWRITEBYTECODE", None):
            # Without bytecode every process compiles torch's sources again (8 s of its 13 s start on 2 cores):
            # the first CLI call writes it here and the others read it. Nothing is written next to the sources.
            self.env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")

    def ganzoo(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.venv / "bin" / "ganzoo"), *args], capture_output=True, text=True,
                              env=self.env, cwd=self.workdir, timeout=600)

    def ok(self, *args: str) -> subprocess.CompletedProcess:
        result = self.ganzoo(*args)
        assert result.returncode == 0, f"ganzoo {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        assert "warning" not in result.stderr, result.stderr
        return result


def uv(*args: str, cwd: Path, env: dict | None = None) -> None:
    result = subprocess.run([UV, *args], capture_output=True, text=True, cwd=cwd, timeout=600,
                            env={**os.environ, "UV_COMPILE_BYTECODE": "0", **(env or {})})  # the test's own pycache, below
    assert result.returncode == 0, f"uv {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    built = subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(dist)],
                           capture_output=True, text=True, cwd=REPO, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = dist.glob("ganzoo-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "ganzoo/recipes/quickstart.yaml" in names and "ganzoo_stargan_v2/__init__.py" in names
    assert not any(n.startswith(("tests/", "recipes/")) for n in names)

    venv = root / "venv"
    t0 = time.perf_counter()
    # the locked versions, from uv's cache only (the same ones `uv run --extra dev` installed for this test run)
    uv("sync", "--quiet", "--frozen", "--offline", "--no-install-project", "--project", str(REPO),
       "--python", sys.executable, cwd=root, env={"UV_PROJECT_ENVIRONMENT": str(venv)})
    uv("pip", "install", "--quiet", "--offline", "--no-deps", "--python", str(venv / "bin" / "python"), str(wheel), cwd=root)
    seconds = time.perf_counter() - t0
    print(f"fresh venv with the wheel installed in {seconds:.1f} s")
    return Installed(root, venv, seconds)


def test_the_installed_package_is_the_wheel_not_the_checkout(installed):
    where = subprocess.run([str(installed.venv / "bin" / "python"), "-c", "import ganzoo, ganzoo_stargan; "
                            "print(ganzoo.__file__); print(ganzoo_stargan.__file__)"],
                           capture_output=True, text=True, env=installed.env, cwd=installed.workdir, timeout=120)
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():
        assert Path(line).is_relative_to(installed.venv) and not Path(line).is_relative_to(REPO), line
    assert installed.seconds < 120, f"installing into a fresh venv took {installed.seconds:.0f} s"


def test_quickstart_trains_by_name(installed):
    run = installed.root / "RUN"
    installed.ok("run", "quickstart", "--set", "train.steps=2", "--set", "train.compile=false", "--out", str(run), "-q")
    assert json.loads((run / "latest.json").read_text())["step"] == 2
    assert not any(installed.workdir.iterdir())  # nothing written to the working directory


def test_compare_two_builtin_families(installed):
    data = installed.root / "shapes"
    # two domains: CycleGAN (one model per pair) trains once, not three times
    installed.ok("make-shapes", str(data), "--domains", "red,blue", "--img-size", "16", "--train", "8", "--val", "2")
    out = installed.root / "compare"
    installed.ok("compare", "stargan", "cyclegan", "--data", str(data), "--steps", "2", "--img-size", "16",
                 "--metrics", "params,content", "--num-val", "2", "--out", str(out), "-q")
    report = json.loads((out / "compare.json").read_text())
    assert (report["models"]["stargan"]["generators"], report["models"]["cyclegan"]["generators"]) == (1, 2)
    assert (out / "compare.png").is_file()


def test_bench_by_model_name(installed):
    """The official recipe by the model's name (shipped in the wheel), on the synthetic stand-in of its small recipe's
    data; narrow networks so one step takes a second, not half a minute."""
    narrow = [f"networks.{role}.{key}={value}" for role in ("generator", "style_encoder", "discriminator")
              for key, value in (("dim_in", 8), ("max_conv_dim", 16))] + ["networks.mapping_network.hidden_dim=16"]
    out = installed.root / "bench.json"
    installed.ok("bench", "stargan_v2", "--img-size", "32", "--batch", "1", "--steps", "1", "--warmup", "0",
                 "--json", str(out), *[arg for item in narrow for arg in ("--set", item)])
    result = json.loads(out.read_text())
    assert "stargan_v2_afhq" in result["recipe"] and Path(result["recipe"]).is_relative_to(installed.venv), result["recipe"]
    assert result["img_size"] == 32 and result["train_img_per_s"] > 0


def test_config_show_and_a_misspelt_recipe(installed):
    shown = installed.ok("config", "show", "stargan_shapes").stdout
    assert "model: stargan" in shown and "shapes" in shown

    typo = installed.ganzoo("run", "stargan_shapse", "--set", "train.steps=2")
    lines = [line for line in typo.stderr.splitlines() if line.strip()]
    assert typo.returncode == 2 and len(lines) == 1 and "Traceback" not in typo.stderr, typo.stderr
    assert lines[0].startswith("error:") and 'Did you mean "stargan_shapes"' in lines[0], lines[0]
