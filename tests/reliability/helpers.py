"""Shared by the reliability suite: the CLI in-process, one-sentence checks, tiny models and images.

How bad-input kinds are counted (the number in README.md's Reliability section is measured, not written):
a test function marked ``@pytest.mark.bad_input`` (``BAD_INPUT`` below) in any ``tests/reliability/test_*.py``
is one kind per test case it yields, so a parametrized one counts once per parameter set, and a ``pytest.param``
entry marked ``bad_input`` in the parametrization of an unmarked function counts once. :func:`count_bad_input_kinds`
computes that from the modules themselves (no test run needed), and ``test_bad_input_count.py`` asserts that
README.md states it. To add a kind: add a case to a marked test (or a new marked test); then update the README
number, which the suite otherwise fails on.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from tests.conftest import TINY_V2

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    code: int
    message: str  # the error line (stderr), without the "error: " prefix
    stderr: str


def invoke(*args: str) -> Outcome:
    """The real ``ganzoo`` command, in this process (fast: torch and the plugins are already imported)."""
    from typer.testing import CliRunner

    from ganzoo.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    # Anything but a clean exit means an exception escaped the command: that is the traceback a user would see.
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{result.stderr}")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    return Outcome(result.exit_code, errors[-1][len("error: "):] if errors else "", result.stderr)


def assert_one_sentence(message: str) -> None:
    """What every user error must be: one non-empty line that reads as a sentence, no traceback."""
    assert message and "\n" not in message, message
    assert "Traceback" not in message and not re.search(r'File ".*", line \d+', message), message
    assert len(message) < 600, message  # a sentence, not a dump
    assert message.rstrip()[-1] in ".?", message  # ends like one


def cli_error(*args: str) -> str:
    """Run the CLI, assert exit code 2 with exactly one error line last and no traceback; return the sentence."""
    outcome = invoke(*args)
    assert outcome.code == 2, (outcome.code, outcome.stderr)
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error:"), outcome.stderr
    assert sum(line.startswith("error:") for line in lines) == 1, outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert_one_sentence(outcome.message)
    return outcome.message


def write_recipe(path: Path, doc: dict | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    return path


def tiny_doc(**sections) -> dict:
    """TINY_V2 (StarGAN v2, 16 px) with sections replaced or merged."""
    from ganzoo.recipe import deep_merge

    return deep_merge(TINY_V2, sections)


def tiny_model_folder(folder: Path, domains=("red", "green", "blue"), seed: int = 0) -> Path:
    """A tiny StarGAN v2 model folder with random weights (what `ganzoo run` writes, minus training)."""
    from ganzoo.plugins import get_registry
    from ganzoo.recipe import recipe_from_dict

    torch.manual_seed(seed)
    recipe = recipe_from_dict(TINY_V2, source="tiny", check_data=False)
    model = get_registry().get("models", "stargan_v2")(recipe, list(domains))
    model.build()
    return model.save_pretrained(folder)


def save_png(path: Path, size=(20, 16), colour=(200, 30, 40), mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)
    return path


def noise_jpeg(path: Path, size: int = 48, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path, quality=90)
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width x height`` RGB pixels, with no pixel data (a few dozen bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.parent.mkdir(parents=True, exist_ok=True)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def image_folder(root: Path, layout: dict[str, dict[str, int]]) -> Path:
    """``layout`` maps split -> {domain: number of 20x16 PNGs}."""
    for split, domains in layout.items():
        for d, (domain, count) in enumerate(domains.items()):
            for i in range(count):
                save_png(root / split / domain / f"{i}.png", colour=(40 + 60 * d, 20 * i, 200 - 60 * d))
    return root


def tree(folder: Path) -> list[str]:
    """Every path under ``folder`` (empty if it does not exist): what a failed command must not have written."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


#: The marker of a test whose cases are each one kind of bad input (see the module docstring).
BAD_INPUT = pytest.mark.bad_input


def _marked(obj) -> bool:
    return any(mark.name == "bad_input" for mark in getattr(obj, "pytestmark", []))


def _cases(fn) -> tuple[int, int]:
    """(all test cases of ``fn``, those marked bad_input on their own pytest.param)."""
    total, marked = 1, 0
    for mark in getattr(fn, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        values = list(mark.args[1]) if len(mark.args) > 1 else list(mark.kwargs.get("argvalues", []))
        total *= len(values)
        marked = max(marked, sum(1 for v in values if any(m.name == "bad_input" for m in getattr(v, "marks", ()))))
    return total, marked


def count_bad_input_kinds(folder: Path | None = None) -> dict[str, int]:
    """Bad-input kinds per test module of ``folder`` (tests/reliability): see the module docstring."""
    import importlib

    folder = folder or Path(__file__).parent
    counts = {}
    for path in sorted(folder.glob("test_*.py")):
        module = importlib.import_module(f"tests.reliability.{path.stem}")
        found = 0
        for name, obj in vars(module).items():
            if not name.startswith("test") or not callable(obj):
                continue
            total, marked = _cases(obj)
            found += total if _marked(obj) else marked
        if found:
            counts[path.stem] = found
    return counts
