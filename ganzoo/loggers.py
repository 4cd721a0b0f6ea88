"""Where a run's rows go: ``train.loggers`` names entries of the ``loggers`` registry kind.

The core registers ``jsonl`` (``metrics.jsonl``, always kept: ``--resume`` and
``ganzoo compare`` read it), ``tensorboard``, ``wandb`` and ``mlflow``; a plugin
adds its own with ``registry.add("loggers", "name", "my_plugin.log:MyLogger")``.

A logger is a class (see :class:`Logger`) built once per run on rank 0, after the
run directory is ready. It receives the same rows ``metrics.jsonl`` gets
(``{"step": N, "loss/G/adv": ..., "lr/G": ..., "it_per_s": ..., "img_per_s": ...}``
per log interval, ``{"step": N, "eval": {...}}`` per evaluation), each sample
sheet, a call after every checkpoint, and the final model folder.

Resume never logs a step twice: ``metrics.jsonl`` is cut back to the checkpoint's
step (:meth:`ganzoo.run_dir.RunDir.truncate_log`); TensorBoard purges the events
after it (``purge_step``); W&B and MLflow are sent rows only once a checkpoint
holding their step is written, so a killed run has sent nothing the resumed one
sends again. Their run ids are kept in ``loggers.json`` so a resume continues the
same W&B / MLflow run.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import secrets
import string
from pathlib import Path
from typing import Any

from ganzoo.errors import RecipeError, TrainingError

#: The file in the run directory where loggers keep what a resume needs (run ids).
STATE_NAME = "loggers.json"


class Logger:
    """A logger's interface; subclasses override what they record.

    ``requires`` maps the modules it imports to the ganzoo extra that installs them; a recipe naming a logger
    whose module is missing fails with one sentence before any run directory exists.
    """

    requires: dict[str, str] = {}

    def __init__(self, run_dir: Path, recipe, *, resume_step: int | None) -> None:
        """``resume_step``: the checkpoint step a resumed run continues from; None for a fresh run."""
        self.run_dir = Path(run_dir)
        self.recipe = recipe
        self.resume_step = resume_step

    def log(self, row: dict[str, Any]) -> None:
        """One metrics.jsonl row (always has ``step``)."""

    def image(self, step: int, tag: str, path: Path) -> None:
        """A PNG written at ``step`` (the periodic sample sheet)."""

    def checkpoint(self, step: int, folder: Path) -> None:
        """A checkpoint of ``step`` is complete on disk."""

    def close(self, model_folder: Path | None) -> None:
        """The run ended; ``model_folder`` is its last model folder when it finished, else None."""

    # helpers for subclasses: what a resume needs, kept in loggers.json
    def _state(self, key: str) -> dict[str, Any]:
        return read_state(self.run_dir).get(key, {})

    def _save_state(self, key: str, value: dict[str, Any]) -> None:
        from ganzoo.checkpoint import atomic_write_text

        state = read_state(self.run_dir)
        state[key] = value
        atomic_write_text(self.run_dir / STATE_NAME, json.dumps(state, indent=1) + "\n")


def read_state(run_dir: Path) -> dict[str, Any]:
    try:
        state = json.loads((Path(run_dir) / STATE_NAME).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return state if isinstance(state, dict) else {}


def scalars(row: dict[str, Any]) -> dict[str, float]:
    """The row's numbers under flat tags (``eval: {fid/latent: 3}`` -> ``eval/fid/latent``); n/a values left out."""
    out: dict[str, float] = {}
    for key, value in row.items():
        if key == "step":
            continue
        if isinstance(value, dict):
            out.update({f"{key}/{k}": v for k, v in scalars(value).items()})
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[key] = float(value)
    return out


def flat_params(doc: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """The resolved recipe as ``{"train.steps": "2", ...}`` (hparams / params want flat, short values)."""
    out: dict[str, str] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flat_params(value, name + "."))
        else:
            out[name] = json.dumps(value) if not isinstance(value, str) else value
    return out


# --------------------------------------------------------------------------- choosing and building


def resolve(names: list[str], registry, source: str = "recipe") -> list[tuple[str, type]]:
    """The logger classes ``train.loggers`` names, their packages checked; call before the run directory exists."""
    if "jsonl" not in names:
        raise RecipeError(f"{source}: train.loggers is {names} but must keep jsonl (metrics.jsonl is what --resume and "
                          "ganzoo compare read); add the others beside it, e.g. [jsonl, tensorboard].")
    if len(set(names)) != len(names):
        raise RecipeError(f"{source}: train.loggers names a logger twice ({names}); list each once.")
    chosen = []
    for name in names:
        entry = registry.entry("loggers", name)
        cls = entry.resolve()
        for module, extra in getattr(cls, "requires", {}).items():
            if not _installed(module):
                raise RecipeError(f"{source}: train.loggers names {name}, which needs the {module} package; install it "
                                  f"with pip install 'ganzoo[{extra}]' or remove {name} from train.loggers.")
        chosen.append((name, cls))
    return chosen


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module blocked in sys.modules
        return False


class LoggerSet:
    """The run's loggers, called in the order the recipe lists them (an empty set on ranks other than 0)."""

    def __init__(self, loggers: list[Logger] | None = None) -> None:
        self.loggers = loggers or []

    @classmethod
    def open(cls, chosen: list[tuple[str, type]], run_dir: Path, recipe, *, resume_step: int | None) -> "LoggerSet":
        opened = cls()
        try:
            for name, logger_cls in chosen:
                try:
                    opened.loggers.append(logger_cls(Path(run_dir), recipe, resume_step=resume_step))
                except ImportError as exc:  # installed (find_spec saw it) but broken
                    extras = sorted(set(getattr(logger_cls, "requires", {}).values())) or ["its plugin"]
                    raise TrainingError(f"The {name} logger could not import its package ({exc}); reinstall it with "
                                        f"pip install --force-reinstall 'ganzoo[{','.join(extras)}]' or remove {name} "
                                        "from train.loggers.") from None
        except BaseException:
            opened.close(None)
            raise
        return opened

    def log(self, row: dict[str, Any]) -> None:
        for logger in self.loggers:
            logger.log(row)

    def image(self, step: int, tag: str, path: Path) -> None:
        for logger in self.loggers:
            logger.image(step, tag, path)

    def checkpoint(self, step: int, folder: Path) -> None:
        for logger in self.loggers:
            logger.checkpoint(step, folder)

    def close(self, model_folder: Path | None) -> None:
        for logger in reversed(self.loggers):
            logger.close(model_folder)
        self.loggers = []


# --------------------------------------------------------------------------- the core's loggers


class JsonlLogger(Logger):
    """``metrics.jsonl``: one JSON row per log interval and per evaluation, appended and flushed at once."""

    def __init__(self, run_dir, recipe, *, resume_step):
        super().__init__(run_dir, recipe, resume_step=resume_step)
        self._file = open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8")

    def log(self, row):
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def close(self, model_folder):
        self._file.close()


class TensorBoardLogger(Logger):
    """Event files in ``tensorboard/`` (``tensorboard --logdir RUN_DIR``): every scalar of every row under its
    metrics.jsonl name, the sample sheets as images, the resolved recipe as text and as hparams."""

    requires = {"tensorboard": "tensorboard"}

    def __init__(self, run_dir, recipe, *, resume_step):
        import shutil

        from torch.utils.tensorboard import SummaryWriter

        super().__init__(run_dir, recipe, resume_step=resume_step)
        folder = self.run_dir / "tensorboard"
        if resume_step is None:  # a fresh start (also one killed before its first checkpoint): old events go
            shutil.rmtree(folder, ignore_errors=True)
            self.writer = SummaryWriter(str(folder))
            self._write_recipe()
        else:
            # Events a killed run wrote after the checkpoint are dropped by TensorBoard's readers.
            self.writer = SummaryWriter(str(folder), purge_step=resume_step + 1)

    def _write_recipe(self) -> None:
        from torch.utils.tensorboard.summary import hparams

        text = self.recipe.to_yaml()
        self.writer.add_text("recipe", "```yaml\n" + text + "\n```", 0)
        doc = flat_params(self.recipe.model_dump(mode="json"))
        values = {}
        for k, v in doc.items():
            try:
                number = json.loads(v)
            except json.JSONDecodeError:
                number = v
            values[k] = number if isinstance(number, (int, float, str, bool)) else v
        exp, ssi, sei = hparams(values, {})
        for summary in (exp, ssi, sei):
            self.writer.file_writer.add_summary(summary)

    def log(self, row):
        step = row["step"]
        for tag, value in scalars(row).items():
            self.writer.add_scalar(tag, value, step)

    def image(self, step, tag, path):
        import numpy as np
        from PIL import Image

        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"))
        self.writer.add_image(tag, array, step, dataformats="HWC")

    def checkpoint(self, step, folder):
        self.writer.flush()  # what the checkpoint covers is on disk before training goes on

    def close(self, model_folder):
        self.writer.close()


class _Deferred(Logger):
    """Rows held back until a checkpoint covers their step: a killed run has sent nothing its resume sends again."""

    def __init__(self, run_dir, recipe, *, resume_step):
        super().__init__(run_dir, recipe, resume_step=resume_step)
        self._rows: list[dict[str, Any]] = []
        self._images: list[tuple[int, str, Path]] = []

    def log(self, row):
        self._rows.append(dict(row))

    def image(self, step, tag, path):
        self._images.append((step, tag, Path(path)))

    def checkpoint(self, step, folder):
        self._send()

    def _send(self) -> None:
        rows, images = self._rows, self._images
        self._rows, self._images = [], []
        self.send(rows, images)

    def send(self, rows: list[dict[str, Any]], images: list[tuple[int, str, Path]]) -> None:
        raise NotImplementedError


class WandbLogger(_Deferred):
    """A Weights & Biases run (``WANDB_MODE=offline`` needs no network; ``WANDB_PROJECT``, default ganzoo): run
    name = the run directory's name, config = the resolved recipe, every scalar, sample sheets as ``wandb.Image``;
    a resume continues the same run id. Files go under ``RUN_DIR/wandb/``."""

    requires = {"wandb": "wandb"}

    def __init__(self, run_dir, recipe, *, resume_step):
        import wandb

        super().__init__(run_dir, recipe, resume_step=resume_step)
        saved = self._state("wandb") if resume_step is not None else {}
        run_id = saved.get("id") or "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "ganzoo"), name=self.run_dir.name, id=run_id,
                              resume="allow", dir=str(self.run_dir), config=recipe.model_dump(mode="json"),
                              settings=wandb.Settings(console="off", x_disable_stats=True, x_disable_meta=True))
        self._save_state("wandb", {"id": self.run.id})

    def send(self, rows, images):
        import wandb

        by_step: dict[int, dict[str, Any]] = {}
        for row in rows:
            by_step.setdefault(row["step"], {}).update(scalars(row))
        for step, tag, path in images:
            by_step.setdefault(step, {})[tag] = wandb.Image(str(path))
        for step in sorted(by_step):
            self.run.log(by_step[step], step=step)

    def close(self, model_folder):
        if model_folder is not None:
            self._send()
        self.run.finish()


class MlflowLogger(_Deferred):
    """An MLflow run: the resolved recipe as params, every scalar as a metric with its step, the final model folder
    as the artifact ``model``. Tracking URI: ``MLFLOW_TRACKING_URI``, else ``sqlite:///RUN_DIR/mlflow.db`` (MLflow 3
    refuses new ``file:`` stores), artifacts in ``RUN_DIR/mlartifacts``; experiment ``MLFLOW_EXPERIMENT_NAME``, default
    ganzoo. A resume continues the same run."""

    requires = {"mlflow": "mlflow"}

    def __init__(self, run_dir, recipe, *, resume_step):
        from mlflow.tracking import MlflowClient

        super().__init__(run_dir, recipe, resume_step=resume_step)
        saved = self._state("mlflow") if resume_step is not None else {}
        uri = (saved.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
               or f"sqlite:///{(self.run_dir / 'mlflow.db').resolve()}")
        self.client = MlflowClient(tracking_uri=uri)
        if saved.get("run_id"):
            self.run_id = saved["run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "ganzoo")
            experiment = self.client.get_experiment_by_name(name)
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(
                name, artifact_location=(self.run_dir / "mlartifacts").resolve().as_uri())
            self.run_id = self.client.create_run(experiment_id, run_name=self.run_dir.name).info.run_id
            self._log_params()
        self._save_state("mlflow", {"run_id": self.run_id, "tracking_uri": uri})

    def _log_params(self) -> None:
        from mlflow.entities import Param

        params = [Param(k, v[:6000]) for k, v in flat_params(self.recipe.model_dump(mode="json")).items()]
        for start in range(0, len(params), 100):  # log_batch takes at most 100 params per call
            self.client.log_batch(self.run_id, params=params[start:start + 100])

    def send(self, rows, images):
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(tag, value, now, row["step"]) for row in rows for tag, value in scalars(row).items()]
        for start in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[start:start + 1000])
        for step, tag, path in images:
            self.client.log_artifact(self.run_id, str(path), artifact_path=tag)

    def close(self, model_folder):
        if model_folder is None:
            self.client.set_terminated(self.run_id, status="KILLED")
            return
        self._send()
        self.client.log_artifacts(self.run_id, str(model_folder), artifact_path="model")
        self.client.set_terminated(self.run_id, status="FINISHED")
