"""train.loggers: jsonl, TensorBoard, W&B (offline) and MLflow read back with their own packages, across a crash
and a resume; a plugin's logger; a missing package as one sentence before any run directory exists."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from ganzoo.errors import RecipeError
from ganzoo.loggers import Logger
from ganzoo.plugins import get_registry
from ganzoo.recipe import load_recipe
from ganzoo.trainer import Trainer


class MemoryLogger(Logger):
    """A third party's logger, registered like a plugin's: it keeps what it is given."""

    seen: list[tuple] = []

    def log(self, row):
        MemoryLogger.seen.append(("log", dict(row)))

    def image(self, step, tag, path):
        MemoryLogger.seen.append(("image", step, tag, Path(path).name))

    def checkpoint(self, step, folder):
        MemoryLogger.seen.append(("checkpoint", step))

    def close(self, model_folder):
        MemoryLogger.seen.append(("close", model_folder and Path(model_folder).name))


@pytest.fixture
def memory_logger():
    registry = get_registry()
    registry.add("loggers", "memory", MemoryLogger, plugin="test-plugin")
    MemoryLogger.seen = []
    yield MemoryLogger
    registry._tables["loggers"].pop("memory")


def jsonl_rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def wandb_records(path: Path):
    """The records of a W&B ``.wandb`` file (a LevelDB-style log of ``wandb_internal_pb2.Record``): 32 KiB blocks,
    each record chunk behind a 7-byte header (crc32, length, type: 1 full, 2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B"
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:
            break
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def test_loggers_match_jsonl_step_for_step_across_a_crash_and_resume(tiny_recipe, tmp_path, monkeypatch, memory_logger):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    # MLflow's own client against a local file store (a new sqlite store spends ~10 s on migrations; the default
    # sqlite store is checked in the slow test below).
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    path = tiny_recipe({"train": {"steps": 6, "checkpoint_every": 2, "sample_every": 3, "log_every": 1,
                                  "loggers": ["jsonl", "tensorboard", "wandb", "mlflow", "memory"]}})
    run = tmp_path / "run"

    # A crash in step 4: the checkpoint is step 2, rows 1-3 and the sample sheet of step 3 were already logged.
    original = Trainer._step_schedulers

    def crash_in_step_4(self):
        if self.step == 3:
            raise RuntimeError("simulated crash")
        original(self)

    monkeypatch.setattr(Trainer, "_step_schedulers", crash_in_step_4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(load_recipe(path), run, quiet=True).run()
    assert [r["step"] for r in jsonl_rows(run)] == [1, 2, 3]
    assert ("close", None) in memory_logger.seen  # a crashed run hands its loggers no model folder
    monkeypatch.setattr(Trainer, "_step_schedulers", original)
    memory_logger.seen = []
    result = Trainer(load_recipe(path), run, resume=True, quiet=True).run()
    assert result.step == 6 and not result.interrupted

    rows = jsonl_rows(run)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]  # the crashed run's row 3 was dropped, then re-logged
    tags = [k for k in rows[0] if k != "step"]
    assert any(t.startswith("loss/") for t in tags) and any(t.startswith("lr/") for t in tags)
    assert {"it_per_s", "img_per_s"} <= set(tags)

    # TensorBoard: every jsonl number under its jsonl name at its step, once (events after the checkpoint purged).
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    assert set(tags) <= set(events.Tags()["scalars"])
    for tag in tags:
        got = [(e.step, e.value) for e in events.Scalars(tag)]
        assert [s for s, _ in got] == [1, 2, 3, 4, 5, 6], tag
        assert [v for _, v in got] == pytest.approx([r[tag] for r in rows], rel=1e-6), tag
    assert [e.step for e in events.Images("samples")] == [3, 6]
    assert "recipe/text_summary" in events.Tags()["tensors"]

    # W&B offline: two run files (crash, resume) with one run id; together each step once, values as in jsonl.
    files = sorted((run / "wandb").glob("offline-run-*/run-*.wandb"))
    run_id = json.loads((run / "loggers.json").read_text())["wandb"]["id"]
    assert len(files) == 2 and all(f.name == f"run-{run_id}.wandb" for f in files)
    history, names = {}, set()
    for file in files:
        for record in wandb_records(file):
            if record.WhichOneof("record_type") == "run":
                names.add(record.run.display_name)
            if record.WhichOneof("record_type") == "history":
                items = {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in record.history.item}
                assert items["_step"] not in history, f"W&B got step {items['_step']} twice"
                history[items["_step"]] = items
    assert names == {"run"}
    assert sorted(history) == [1, 2, 3, 4, 5, 6]
    for row in rows:
        assert {t: history[row["step"]][t] for t in tags} == pytest.approx({t: row[t] for t in tags})
    assert [s for s in sorted(history) if history[s].get("samples/_type") == "image-file"] == [3, 6]

    # MLflow: one run (the resume continued it), every metric at each step once, the recipe as params, the model.
    state = json.loads((run / "loggers.json").read_text())["mlflow"]
    client = MlflowClient(tracking_uri=state["tracking_uri"])
    (experiment,) = [e for e in client.search_experiments() if e.name == "ganzoo"]
    assert len(client.search_runs([experiment.experiment_id])) == 1
    mlflow_run = client.get_run(state["run_id"])
    assert mlflow_run.info.status == "FINISHED" and mlflow_run.data.params["train.steps"] == "6"
    for tag in tags:
        history_of = sorted((m.step, m.value) for m in client.get_metric_history(state["run_id"], tag))
        assert history_of == [(r["step"], pytest.approx(r[tag])) for r in rows], tag
    model_files = {a.path for a in client.list_artifacts(state["run_id"], "model")}
    assert "model/config.json" in model_files

    # The plugin's logger got the resumed run's rows, the sheet, the checkpoints and the final model folder.
    assert [e[1] for e in memory_logger.seen if e[0] == "log"] == rows[2:]
    assert ("image", 3, "samples", "step_00000003.png") in memory_logger.seen
    assert [e[1] for e in memory_logger.seen if e[0] == "checkpoint"] == [4, 6]
    assert memory_logger.seen[-1] == ("close", "step_00000006")


def test_logger_problems_are_one_sentence_before_any_run_directory(tiny_recipe, tmp_path, monkeypatch):
    import ganzoo.loggers

    real_find_spec = ganzoo.loggers.importlib.util.find_spec
    monkeypatch.setattr(ganzoo.loggers.importlib.util, "find_spec",
                        lambda name, *a: None if name == "wandb" else real_find_spec(name, *a))
    run = tmp_path / "run"
    with pytest.raises(RecipeError) as exc:
        Trainer(load_recipe(tiny_recipe({"train": {"loggers": ["jsonl", "wandb"]}})), run, quiet=True).run()
    message = str(exc.value)
    assert "pip install 'ganzoo[wandb]'" in message and "train.loggers" in message and message.count(". ") == 0
    assert not run.exists()
    with pytest.raises(RecipeError, match="must keep jsonl"):
        Trainer(load_recipe(tiny_recipe({"train": {"loggers": ["tensorboard"]}})), run, quiet=True).run()
    with pytest.raises(Exception, match='Unknown logger "tensorbord". Did you mean "tensorboard"'):
        Trainer(load_recipe(tiny_recipe({"train": {"loggers": ["jsonl", "tensorbord"]}})), run, quiet=True).run()
    assert not run.exists()


@pytest.mark.slow
def test_mlflow_default_store_is_sqlite_in_the_run_directory(tiny_recipe, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = tiny_recipe({"train": {"steps": 2, "checkpoint_every": 2, "sample_every": 0, "loggers": ["jsonl", "mlflow"]}})
    Trainer(load_recipe(path), tmp_path / "run", quiet=True).run()
    state = json.loads((tmp_path / "run" / "loggers.json").read_text())["mlflow"]
    assert state["tracking_uri"] == f"sqlite:///{(tmp_path / 'run' / 'mlflow.db').resolve()}"
    client = MlflowClient(tracking_uri=state["tracking_uri"])
    assert [m.step for m in client.get_metric_history(state["run_id"], "loss/D/real")] == [1, 2]
    assert (tmp_path / "run" / "mlartifacts").is_dir()


def test_eval_rows_become_flat_scalars_and_na_values_are_left_out():
    from ganzoo.loggers import scalars

    row = {"step": 5, "eval": {"fid/latent": 31.5, "kid/latent": None, "lpips": float("nan")}, "eval_seconds": 1.25}
    assert scalars(row) == {"eval/fid/latent": 31.5, "eval_seconds": 1.25}
    assert scalars({"step": 1, "loss/G/adv": 0.5, "flag": True, "note": "x"}) == {"loss/G/adv": 0.5}
