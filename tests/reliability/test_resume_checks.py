"""Resume that explains itself: a recipe that differs in model, networks or data is refused with a sentence listing
what differs (train, eval, optim and losses may change, e.g. more steps); an unreadable newest checkpoint (a
damaged state.json) is set aside with a warning and the previous one resumed, or the error names the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.reliability.helpers import BAD_INPUT, cli_error, invoke, tiny_doc, tree, write_recipe

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A 2-step tiny run with a checkpoint after each step (both kept)."""
    from ganzoo.recipe import recipe_from_dict
    from ganzoo.trainer import Trainer

    run = tmp_path_factory.mktemp("resume") / "run"
    doc = tiny_doc(train={"steps": 2, "checkpoint_every": 1, "keep_checkpoints": 2, "sample_every": 0, "log_every": 1})
    Trainer(recipe_from_dict(doc, source="tiny"), run, quiet=True).run()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000001", "step_00000002"]
    return run


@pytest.fixture
def run(finished_run, tmp_path):
    return Path(shutil.copytree(finished_run, tmp_path / "run"))


CHANGES = {
    "another network width": (["--set", "networks.generator.dim_in=16"], ("networks.generator.dim_in",)),
    "another image size": (["--set", "data.image_size=32"], ("data.image_size",)),
    "more data": (["--set", "data.num_train=12", "--set", "data.domains=[red, green]"], ("data.domains", "data.num_train")),
}


@BAD_INPUT
@pytest.mark.parametrize("name", CHANGES)
def test_resume_with_a_recipe_that_does_not_fit_is_refused(name, run):
    args, culprit = CHANGES[name]
    before = tree(run)
    message = cli_error("run", "--resume", str(run), "-q", *args)
    assert "cannot resume" in message and str(run) in message, message
    for key in culprit:
        assert key in message, (key, message)
    assert tree(run) == before


@BAD_INPUT
def test_resume_with_another_model_is_refused(run, tmp_path):
    other = write_recipe(tmp_path / "other.yaml", {"model": "cyclegan", "data": {"name": "shapes", "image_size": 16}})
    message = cli_error("run", str(other), "--resume", str(run), "-q")
    assert "cannot resume" in message and "model" in message and "networks." in message, message


def test_resume_with_more_steps_is_allowed_and_says_what_changed(run):
    outcome = invoke("run", "--resume", str(run), "-q", "--set", "train.steps=3", "--set", "train.log_every=2")
    assert outcome.code == 0, outcome.stderr
    assert "resuming with changed train.log_every, train.steps" in " ".join(outcome.stderr.split()), outcome.stderr
    assert json.loads((run / "latest.json").read_text())["step"] == 3


@BAD_INPUT
def test_a_damaged_state_json_falls_back_to_the_previous_checkpoint(run):
    (run / "checkpoints" / "step_00000002" / "train_state" / "state.json").write_text('{"step": 2, "optimiz')
    outcome = invoke("run", "--resume", str(run), "-q")
    assert outcome.code == 0, outcome.stderr
    said = " ".join(outcome.stderr.split())  # (rich wraps lines between words)
    assert "warning:" in said and "step_00000002/train_state/state.json is not valid JSON" in said, said
    assert "resuming from step_00000001 instead" in said and "damaged-step_00000002" in said, said
    # the damaged checkpoint is kept for inspection, out of the way; step 2 was trained again from step 1
    assert (run / "checkpoints" / "damaged-step_00000002" / "train_state" / "state.json").is_file()
    assert json.loads((run / "latest.json").read_text()) == {"step": 2, "path": "checkpoints/step_00000002"}
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]  # the damaged step's row went with it and came back once


@BAD_INPUT
def test_no_readable_checkpoint_names_the_damaged_file(run):
    for step in ("step_00000001", "step_00000002"):
        (run / "checkpoints" / step / "train_state" / "state.json").write_text("[1, 2")
    message = cli_error("run", "--resume", str(run), "-q")
    assert "step_00000002/train_state/state.json" in message and "no earlier checkpoint" in message, message
