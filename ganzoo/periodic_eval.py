"""``eval.every``: the ``ganzoo eval`` protocol on the val split while training, and the ``best/`` model.

Every N steps rank 0 translates the val split with the live model's inference
networks (the EMA copies where the model has them, in the mode they train in,
as ``ganzoo eval`` runs a loaded model, so the numbers agree), streams the
outputs through the configured metrics and appends one row to metrics.jsonl::

    {"step": 2000, "eval": {"fid/latent": 31.2, "fid/reference": 35.0}, "eval_seconds": 41.3}

With ``eval.best`` the model folder of the best step so far is kept as
``best/`` (written beside and renamed into place, like a checkpoint), with
``best/best.json`` naming the metric, value and step. mmagic's checkpoint hook
keeps its best checkpoint the same way.

Evaluation must not change training: it draws latent codes and references
from its own seeded generators, and every RNG, buffer and module mode is put
back afterwards. It runs before the step's checkpoint, so a resume (which drops
log rows after its checkpoint) evaluates those steps again, once.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import torch

from ganzoo import checkpoint as ckpt
from ganzoo.errors import GanzooError, RecipeError
from ganzoo.metrics.evaluate import EvalData, EvalOptions, MetricUnavailable, Resources, Translator, evaluate
from ganzoo.metrics.weights import WeightsUnavailable
from ganzoo.recipe import Recipe

BEST_FOLDER, BEST_INFO = "best", "best.json"


class PeriodicEval:
    """Built at trainer setup (before the run directory exists: every problem is a RecipeError then)."""

    def __init__(self, recipe: Recipe, model, val_dataset, train_dataset, *, device: torch.device, registry,
                 run_dir: Path, plugin: str | None = None):
        cfg, source = recipe.eval, recipe.source
        self.cfg, self.model, self.registry, self.plugin = cfg, model, registry, plugin
        self.run_dir = Path(run_dir)
        try:
            self.translator = Translator([model])
        except GanzooError as exc:
            raise RecipeError(f"{source}: eval.every is {cfg.every} but {_clause(exc)}; set eval.every=0.") from None
        if not self.translator.tasks:
            raise RecipeError(f"{source}: eval.every is {cfg.every} but {model.name} translates between none of its "
                              "domains; set eval.every=0.")
        self.options = EvalOptions(feature_net=cfg.feature_net, fid_weights=cfg.fid_weights, lpips_weights=cfg.lpips_weights,
                                   classifier=cfg.classifier, outputs_per_input=cfg.outputs_per_input, num_val=cfg.num_val,
                                   num_real=cfg.num_real, batch_size=cfg.batch_size, seed=recipe.train.seed, device=str(device))
        root = recipe.data.root or recipe.data.hub or recipe.data.name  # where a domain classifier is looked for
        self.data = EvalData.from_datasets(val_dataset, train_dataset, root, num_val=cfg.num_val, num_real=cfg.num_real,
                                           seed=recipe.train.seed)
        self.resources = Resources(self.options, device)  # the feature net and real features, built once
        self.metrics, self.unavailable = self._available(source)
        self.best_value = self._saved_best()

    def _available(self, source: str) -> tuple[list[str], dict[str, str]]:
        """The metrics that can run here; one named in eval.metrics that cannot is an error, a default one is n/a."""
        explicit = bool(self.cfg.metrics)
        names, unavailable = [], {}
        for name in self.cfg.metric_names():
            try:
                self._with_env(lambda env: self.registry.get("metrics", name)(env))
            except (WeightsUnavailable, MetricUnavailable, GanzooError) as exc:
                if explicit or self.cfg.best and self.cfg.best.split("/")[0] == name:
                    raise RecipeError(f"{source}: eval.metrics: {name} cannot run here ({_clause(exc)}); set "
                                      "eval.fid_weights, eval.lpips_weights or eval.classifier, or remove it from eval.metrics.") from None
                unavailable[name] = _clause(exc)
                continue
            names.append(name)
        if not names:
            raise RecipeError(f"{source}: eval.every is {self.cfg.every} but none of the metrics can run here "
                              f"({'; '.join(f'{k}: {v}' for k, v in unavailable.items())}); name some in eval.metrics.")
        return names, unavailable

    def _with_env(self, use):
        from ganzoo.metrics.evaluate import EvalEnv, check_feature_counts

        env = EvalEnv(self.translator, self.data, self.options, self.resources)
        metric = use(env)
        if getattr(metric, "needs_features", False):
            modes = {m: self.options.outputs_per_input if diverse else 1 for m, diverse in self.translator.modes.items()}
            check_feature_counts(self.translator, self.data, modes)
        return metric

    def _saved_best(self) -> float | None:
        """The value best/ holds (a resumed run keeps comparing with it)."""
        try:
            info = json.loads((self.run_dir / BEST_FOLDER / BEST_INFO).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        value = info.get("value") if isinstance(info, dict) else None
        return float(value) if isinstance(value, (int, float)) else None

    def forget_best(self) -> None:
        """A run that starts over (nothing to resume) drops the best/ of its earlier attempt."""
        shutil.rmtree(self.run_dir / BEST_FOLDER, ignore_errors=True)
        self.best_value = None

    # ------------------------------------------------------------------ during the run

    def __call__(self, step: int, log=None) -> dict[str, float | None]:
        """Evaluate at ``step``, pass the row to ``log`` (the run's loggers), update best/; return the row's values."""
        t0 = time.perf_counter()
        with _untouched(self.model):
            result = evaluate(self.translator, self.data, self.metrics, self.options, resources=self.resources,
                              registry=self.registry)
        values = {k: (v if isinstance(v, (int, float)) and math.isfinite(v) else None) for k, v in result.headline().items()}
        row = {"step": step, "eval": values, "eval_seconds": round(time.perf_counter() - t0, 3)}
        if log is not None:
            log(row)
        if self.cfg.best:
            self._keep_if_best(step, values)
        return values

    def best_of(self, values: dict[str, float | None]) -> float | None:
        """``eval.best``'s value in a row: the key itself, or the mean over modes of a metric (``fid/latent``,
        ``fid/reference`` for ``fid``); None when it is missing or not finite."""
        best = self.cfg.best
        if best in values:
            return values[best]
        parts = [v for k, v in values.items() if k.startswith(f"{best}/") and k.count("/") == 1]
        if not parts or any(v is None for v in parts):
            return None
        return sum(parts) / len(parts)

    def _keep_if_best(self, step: int, values: dict[str, float | None]) -> None:
        value = self.best_of(values)
        if value is None:
            return
        if self.best_value is not None and not (value < self.best_value if self.cfg.best_mode == "min" else value > self.best_value):
            return
        info = {"metric": self.cfg.best, "mode": self.cfg.best_mode, "value": value, "step": step, "eval": values}
        ckpt.write_model_folder(self.model, self.run_dir / BEST_FOLDER, step=step, plugin=self.plugin,
                                extra_files={BEST_INFO: json.dumps(info, indent=1) + "\n"})
        self.best_value = value


class _untouched:
    """Every RNG, every network's buffers and every module's mode as they were before the block."""

    def __init__(self, model):
        self.nets = [*model.nets.values(), *model.ema_nets.values()]

    def __enter__(self):
        self.rng = ckpt.capture_rng()
        self.buffers = [[b.detach().clone() for b in net.buffers()] for net in self.nets]
        self.modes = [(m, m.training) for net in self.nets for m in net.modules()]
        return self

    def __exit__(self, *exc) -> None:
        with torch.no_grad():
            for net, saved in zip(self.nets, self.buffers):
                for buf, value in zip(net.buffers(), saved):
                    buf.copy_(value)
        for module, training in self.modes:
            module.training = training
        ckpt.restore_rng(self.rng)


def _clause(exc: Exception) -> str:
    """An error's sentence as a clause of another one."""
    return str(exc).strip().rstrip(".")
