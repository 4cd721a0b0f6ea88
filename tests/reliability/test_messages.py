"""Messages: one sentence, never a C++ stack or a 69 KB line (long lists are cut and the count named); "does not
exist" only for what does not exist (a FIFO, a directory or /dev/zero as base: is named as what it is)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.reliability.helpers import BAD_INPUT, assert_one_sentence, cli_error, save_png, tiny_doc, tiny_model_folder, write_recipe

pytestmark = pytest.mark.reliability


def _fifo(tmp: Path) -> tuple[str, str]:
    os.mkfifo(tmp / "pipe.yaml")
    return "pipe.yaml", "is a FIFO"


def _directory(tmp: Path) -> tuple[str, str]:
    (tmp / "folder.yaml").mkdir()
    return "folder.yaml", "is a directory"


def _dev_zero(tmp: Path) -> tuple[str, str]:
    return "/dev/zero", "is a character device"


@BAD_INPUT
@pytest.mark.parametrize("make", [_fifo, _directory, _dev_zero], ids=["FIFO as base:", "directory as base:", "/dev/zero as base:"])
def test_a_base_that_is_not_a_file_is_named_as_what_it_is(make, tmp_path):
    base, kind = make(tmp_path)
    path = write_recipe(tmp_path / "recipe.yaml", {"base": base, **tiny_doc()})
    message = cli_error("config", "show", str(path))  # a FIFO is never opened: no hang waiting for a writer
    assert kind in message and "does not exist" not in message and base in message, message


@BAD_INPUT
def test_a_fifo_as_the_recipe_is_named_as_what_it_is(tmp_path):
    os.mkfifo(tmp_path / "recipe.yaml")
    message = cli_error("run", str(tmp_path / "recipe.yaml"), "--out", str(tmp_path / "run"))
    assert "is a FIFO" in message and "does not exist" not in message, message


@BAD_INPUT
def test_a_69_kb_override_is_cut_to_a_sentence(tmp_path):
    path = write_recipe(tmp_path / "recipe.yaml", tiny_doc())
    message = cli_error("config", "show", str(path), "--set", "x" * 70_000)  # no "=": quoted back in the message
    assert len(message) <= 520, len(message)
    assert "characters cut" in message and "dotted.key=value" in message, message


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model_folder(tmp_path_factory.mktemp("messages") / "model")


@BAD_INPUT
def test_a_long_list_of_domains_is_cut_and_counted(tmp_path):
    domains = [f"domain_{i:03d}" for i in range(300)]
    folder = tiny_model_folder(tmp_path / "many", domains=domains)
    save_png(tmp_path / "a.png", size=(16, 16))
    message = cli_error("translate", str(folder), "-i", str(tmp_path / "a.png"), "-t", "domain_9999", "-o", str(tmp_path / "out"))
    assert "domain_000, domain_001" in message and "and 292 more" in message and "domain_150" not in message, message


@BAD_INPUT
def test_no_cpp_stack_frames_in_a_sentence(model, tmp_path):
    # TORCH_SHOW_CPP_STACKTRACES=1 (common while debugging) makes every PyTorch error carry its C++ frames.
    folder = Path(shutil.copytree(model, tmp_path / "model"))
    config = json.loads((folder / "config.json").read_text())
    config["networks"]["mapping_network"]["kwargs"]["latent_dim"] = -4  # nn.Linear's C++ check refuses it
    (folder / "config.json").write_text(json.dumps(config))
    save_png(tmp_path / "a.png", size=(16, 16))
    result = run_cli("translate", str(folder), "-i", str(tmp_path / "a.png"), "-t", "red", "-o", str(tmp_path / "out"),
                     env={"TORCH_SHOW_CPP_STACKTRACES": "1"}, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[:3000]
    message = lines[0][len("error: "):]
    assert_one_sentence(message)
    assert "networks.mapping_network" in message and "negative dimension -4" in message, message
    assert "Exception raised from" not in message and "frame #" not in message
    assert "CapturedTraceback" not in message and ".so" not in message, message


def test_tidy_message_keeps_start_and_end():
    from ganzoo.errors import GanzooError

    text = "start " + "y" * 5000 + " end; do this."
    message = str(GanzooError(text))
    assert message.startswith("start ") and message.endswith(" end; do this.") and "4,920 characters cut" in message
    many = " ".join(["word"] * 1000) + " do this."
    assert len(str(GanzooError(many))) < 1050 and str(GanzooError(many)).endswith("word do this.")
    ordinary = "a sentence of ordinary words, " * 20 + "so it stays whole."  # 620 characters: kept as it is
    assert str(GanzooError(ordinary)) == ordinary.strip()
    assert str(GanzooError("short\nand two lines.")) == "short and two lines."
