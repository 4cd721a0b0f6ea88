"""One generic training loop for every model family.

The model plugin owns its train step (losses, which optimiser steps when);
the trainer owns the rest: device, precision, EMA, learning rate schedules,
checkpoints, resume, samples, logs and progress. Its pieces live beside it:
:mod:`ganzoo.run_dir` (what is on disk and how it survives a kill),
:mod:`ganzoo.data_stream` (step-seeded batches), :mod:`ganzoo.trial_step`
(the check before the run directory exists) and :mod:`ganzoo.step_context`
(what a train step gets).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from ganzoo import checkpoint as ckpt
from ganzoo import distributed
from ganzoo.data_stream import build_dataset, step_batches
from ganzoo.errors import CheckpointError, DataError, GanzooError, RecipeError, SplitMissing, TrainingError
from ganzoo.loggers import LoggerSet
from ganzoo.loggers import resolve as resolve_loggers
from ganzoo.model import GANModel
from ganzoo.output_paths import reason
from ganzoo.recipe import Recipe
from ganzoo.run_dir import RunDir, RunDirTaken
from ganzoo.step_context import StepContext  # noqa: F401 - models and tests import it from here
from ganzoo.trial_step import trial_step


# --------------------------------------------------------------------------- device and precision


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GanzooError(f'train.device "{name}" is not a device name; use auto, cpu, cuda or cuda:N.') from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GanzooError(f'train.device is "{name}" but no CUDA GPU is visible; use --set train.device=cpu or auto.')
    return device


def cpu_compiler() -> str | None:
    """The C++ compiler torch.compile would build CPU kernels with (CXX, else g++ ...), or None if there is none."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        return get_cpp_compiler("cpu")
    except Exception:  # its own error when none is found; any other failure means the same here
        return None


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` (the default): bf16 autocast on a CUDA GPU with native bf16 (Ampere and later), fp32 elsewhere."""
    if name != "auto":
        return name
    if device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False):
        return "bf16"
    return "fp32"


# --------------------------------------------------------------------------- EMA and schedules


@torch.no_grad()
def update_ema(ema: nn.Module, net: nn.Module, decay: float) -> None:
    """ema = decay * ema + (1 - decay) * net for parameters; buffers are copied."""
    ema_params = [p for p in ema.parameters()]
    net_params = [p.detach() for p in net.parameters()]
    if ema_params:
        torch._foreach_lerp_(ema_params, net_params, 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), net.buffers()):
        b_ema.copy_(b)


def lr_factor(schedule: str, decay_start: int, total: int):
    def factor(step: int) -> float:
        if schedule == "constant" or step < decay_start:
            return 1.0
        return max(0.0, 1.0 - (step - decay_start) / max(1, total - decay_start))

    return factor


# --------------------------------------------------------------------------- the trainer


@dataclass
class RunResult:
    run_dir: Path
    step: int
    checkpoint: Path | None
    losses: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False
    stop_signal: int = signal.SIGINT  # what interrupted it: SIGINT (Ctrl-C) or SIGTERM (a scheduler's preemption)


INIT_FROM = "init_from.json"  # the model folder a run started from (`ganzoo run --init-from`)


class Trainer:
    def __init__(self, recipe: Recipe, run_dir: str | Path, *, resume: bool = False, console=None, quiet: bool = False,
                 init_from: str | Path | None = None, any_free_name: bool = False):
        """``any_free_name``: ``run_dir`` is a default name, and when another run has taken it the run goes to the
        first free ``<run_dir>-2``, ``-3``, ... instead (two runs started in the same second)."""
        from rich.console import Console

        self.init_from = init_from
        self.any_free_name = any_free_name and not resume

        self.recipe = recipe
        self.run_dir = Path(run_dir)
        self.dir = RunDir(self.run_dir)
        self.resume = resume
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self.cfg = recipe.train

    # ------------------------------------------------------------------ setup

    def checkpoint_bytes(self) -> int:
        """About how many bytes one checkpoint of this model takes: weights, EMA copies and Adam's two moments."""
        def size(tensors) -> int:
            return sum(t.numel() * t.element_size() for t in tensors)

        weights = sum(size(net.state_dict().values()) for group in (self.model.nets, self.model.ema_nets) for net in group.values())
        moments = 2 * sum(size(p for p in net.parameters() if p.requires_grad) for net in self.model.nets.values())
        return weights + moments

    def _setup(self) -> None:
        from ganzoo.plugins import get_registry

        cfg = self.cfg
        self.dist = distributed.env_info()
        distributed.check_batch(self.recipe.data.batch_size, self.dist.world_size)
        self.device = distributed.init(self.dist, pick_device(cfg.device))
        if not self.dist.is_main:
            self.quiet = True
        self.precision = resolve_precision(cfg.precision, self.device)
        if self.device.type == "cpu" and self.precision == "fp16" and not self.quiet:
            self.console.print("[yellow]note:[/] fp16 on a CPU runs (to check a recipe before a GPU run) but is slower "
                               "than fp32; use fp32 or bf16 to train on a CPU.", highlight=False)
        if cfg.threads:
            # Small networks on few cores run faster on one thread than on several competing ones.
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)

        # The registry is consulted here once; the dataset, model and network classes come from it.
        registry = get_registry()
        # The loggers' packages are checked here, so a missing one is a sentence before the run directory exists.
        self.logger_classes = resolve_loggers(list(cfg.loggers), registry, str(self.recipe.source or "recipe"))
        self.loggers = LoggerSet()
        self.plugin = ckpt.plugin_of(self.recipe.model, registry)
        self.dataset = build_dataset(self.recipe, "train", registry)
        try:
            self.val_dataset = build_dataset(self.recipe, "val", registry)
        except SplitMissing as exc:
            if self.recipe.eval.every:
                raise RecipeError(f"{self.recipe.source}: eval.every is {self.recipe.eval.every} but the data has no val "
                                  f"split ({str(exc).rstrip('.')}); add one (val/<domain>/ folders beside train/) or set "
                                  "eval.every=0.") from None
            # No val split at all: samples come from the training images. A val split that exists but is
            # broken (a domain missing, no readable images) is an error like any other data error.
            self.val_dataset = self.dataset
            if not self.quiet:
                from rich.markup import escape

                self.console.print(f"[yellow]note:[/] no val split ({escape(str(exc).rstrip('.'))}); samples use training images.",
                                   highlight=False)
        if list(self.val_dataset.domains) != list(self.dataset.domains):
            raise DataError(
                f"The val split's domains ({', '.join(self.val_dataset.domains)}) differ from the train split's "
                f"({', '.join(self.dataset.domains)}); give val/ the same domain folders as train/ or set data.domains."
            )
        model_cls = registry.get("models", self.recipe.model)
        self.model: GANModel = model_cls(self.recipe, self.dataset.domains)
        self.model.build(registry=registry)
        if cfg.ema == 0:
            # EMA disabled: the copies would keep their initial weights and be what samples and the model folder use.
            self.model.ema_nets = {}
        self.model.to(self.device)
        if cfg.channels_last:
            # The EMA copies too: a lerp between tensors of one layout is about twice as fast as across two.
            for net in [*self.model.nets.values(), *self.model.ema_nets.values()]:
                net.to(memory_format=torch.channels_last)
        self._probe()
        if self.resume and self.init_from is None and not self.dir.has_checkpoint() and (self.run_dir / INIT_FROM).is_file():
            # Killed before its first checkpoint: the run starts over, from the weights it started from.
            self.init_from = json.loads((self.run_dir / INIT_FROM).read_text())["init_from"]
        if self.init_from is not None and not (self.resume and self.dir.has_checkpoint()):
            # Weights only, before compile/DDP wrap the networks; a resumed run takes them from its own checkpoint.
            fresh = ckpt.init_weights_from(self.model, self.init_from)
            if self.dist.is_main:  # even with --quiet: the run does not start from scratch
                note = f" ({', '.join(fresh)} not in it: freshly initialised)" if fresh else ""
                self.console.print(f"initialised from {self.init_from}{note}", highlight=False)
        compile_nets = cfg.compile
        if compile_nets and self.device.type == "cpu" and cpu_compiler() is None:
            compile_nets = False
            if not self.quiet:
                self.console.print("[yellow]note:[/] train.compile is on, but torch.compile needs a C++ compiler on a CPU "
                                   "and none was found (set CXX or install g++ or clang++); training uncompiled.",
                                   highlight=False)
        if compile_nets:
            if self.device.type == "cpu":  # torch's "No CUDA runtime is found" warning means nothing to a CPU run
                logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
            # Module.compile() compiles in place: state_dict keys (and so checkpoints) stay unchanged.
            for net in self.model.nets.values():
                net.compile()
        for ds, split in ((self.dataset, "train"), (self.val_dataset, "val")):
            skipped = getattr(ds, "skipped", [])
            if skipped and not self.quiet:
                path, why = skipped[0]
                self.console.print(f"[yellow]note:[/] {len(skipped)} {split} file(s) skipped as unreadable "
                                   f"(first: {path}: {why}).", highlight=False)
        self.evaluation = None
        if self.recipe.eval.every:
            from ganzoo.periodic_eval import PeriodicEval

            self.evaluation = PeriodicEval(self.recipe, self.model, self.val_dataset, self.dataset, device=self.device,
                                           registry=registry, run_dir=self.run_dir, plugin=self.plugin)
            if self.evaluation.unavailable and not self.quiet:
                from rich.markup import escape

                for name, why in self.evaluation.unavailable.items():
                    self.console.print(f"[yellow]note:[/] eval: {name} is n/a ({escape(why)}).", highlight=False)
        if self.dist.active:
            distributed.convert_sync_batchnorm(self.model.nets, self.device)
        self.optimizers = self.model.build_optimizers()
        # One DDP wrapper per network, in model.nets only while train_step runs (see ganzoo.distributed).
        self.ddp_nets = distributed.wrap(self.model.nets, self.device) if self.dist.active else None
        factor = lr_factor(self.model.optim.schedule, self.model.optim.decay_start, cfg.steps)
        self.schedulers = {name: torch.optim.lr_scheduler.LambdaLR(opt, factor) for name, opt in self.optimizers.items()}
        self.scaler = torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else None
        self.ctx = StepContext(self.device, self.precision, self.optimizers, self.scaler,
                               self.dist.rank, self.dist.world_size)
        self.step = 0

    def _probe(self) -> None:
        """The trial step (see :mod:`ganzoo.trial_step`): a recipe whose networks cannot run fails before the run
        directory exists."""
        local = distributed.check_batch(self.recipe.data.batch_size, self.dist.world_size)
        try:
            trial_step(self.model, self.dataset, self.recipe, device=self.device, precision=self.precision, local_batch=local)
        except torch.OutOfMemoryError:
            raise self._out_of_memory("in a trial step on 2 images before training; nothing was written") from None

    def _check_resume_recipe(self) -> None:
        """Refuse to resume with a recipe whose model, networks or data differ from the checkpoint's (the weights
        and optimiser state would not fit, or the data stream would change); other sections may change (more
        steps, a new log interval) and are named in a note."""
        try:
            folder = ckpt.resolve_model_folder(self.run_dir)
            saved = ckpt.read_config(folder).get("recipe")
        except GanzooError:
            return  # no checkpoint yet (the run starts over) or a damaged one (_restore says which)
        if not isinstance(saved, dict):
            return
        refused, changed = resume_differences(saved, self.recipe.to_dict())
        if refused:
            from ganzoo.errors import name_list

            raise RecipeError(
                f"{self.recipe.source}: cannot resume {self.run_dir} with this recipe: it differs from the checkpoint's in "
                f"{name_list(refused)} ({len(refused)} key(s)); resume with the run's own recipe.yaml (only train, eval, "
                "optim and losses may change), or start a new run with --out.")
        if changed and distributed.env_info().is_main:  # even with --quiet: the run goes on differently
            from ganzoo.errors import name_list

            self.console.print(f"[yellow]note:[/] resuming with changed {name_list(changed)}.", highlight=False, soft_wrap=True)

    def _restore(self) -> None:
        """Put the newest checkpoint's weights, optimiser, schedule, scaler, RNG and model state into this run.

        A checkpoint that cannot be read (a damaged state.json, a truncated weights file) is set aside as
        ``checkpoints/damaged-step_N`` with a warning, and the previous one is used; if none can be read, the
        error names the newest checkpoint's problem.
        """
        newest = ckpt.resolve_model_folder(self.run_dir)
        candidates = [newest] + sorted((p for p in self.dir.checkpoints.glob("step_*")
                                        if p.resolve() != newest.resolve() and (p / ckpt.CONFIG_NAME).is_file()), reverse=True)
        first_error = None
        for folder in candidates:
            try:
                state = ckpt.read_train_state(folder)
                ckpt.restore_weights(self.model, folder)
            except GanzooError as exc:
                first_error = first_error or exc
                continue
            break
        else:
            raise CheckpointError(f"Cannot resume {self.run_dir}: {str(first_error).rstrip('.')}; and no earlier checkpoint "
                                  "could be read either.") from None
        if folder is not newest and self.dist.is_main:
            damaged = [c for c in candidates[: candidates.index(folder)]]
            for bad in damaged:
                with contextlib.suppress(OSError):
                    os.replace(bad, bad.with_name(f"damaged-{bad.name}"))
            ckpt.atomic_write_text(self.dir.latest, json.dumps({"step": state["step"],
                                                                "path": f"checkpoints/{folder.name}"}) + "\n")
            self.console.print(f"[yellow]warning:[/] {str(first_error).rstrip('.')}; resuming from {folder.name} instead "
                               f"(set aside as {', '.join('damaged-' + b.name for b in damaged)}).", highlight=False,
                               soft_wrap=True)
        for name, opt in self.optimizers.items():
            _load_optimizer_state(opt, state["optimizers"][name])
        for name, sched in self.schedulers.items():
            sched.load_state_dict(state["schedulers"][name])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        ckpt.restore_rng(state["rng"])
        self.model.load_training_state(state["model"])
        self.step = state["step"]
        if self.dist.is_main:
            self.dir.truncate_log(self.step)

    # ------------------------------------------------------------------ pieces of the loop

    def _loader(self) -> Iterator[dict[str, torch.Tensor]]:
        return step_batches(self.dataset, self.model, self.recipe, start_step=self.step, device=self.device,
                            rank=self.dist.rank, world_size=self.dist.world_size)

    def save_checkpoint(self) -> Path:
        state = {
            "step": self.step,
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": ckpt.capture_rng(),
            "model": self.model.training_state(),
        }
        for role, net in self.model.nets.items():
            if not bool(torch.stack([torch.isfinite(p).all() for p in net.parameters()]).all()):  # one readback per net
                raise TrainingError(f"The {role} weights are not finite at step {self.step}; no checkpoint was written.")
        if not self.dist.is_main:  # rank 0 writes; the others wait until the folder is complete
            distributed.barrier(self.dist)
            return self.dir.checkpoints / f"step_{self.step:08d}"
        folder = self.dir.write_checkpoint(self.model, self.step, state, keep=self.cfg.keep_checkpoints, plugin=self.plugin)
        distributed.barrier(self.dist)
        return folder

    def save_samples(self) -> Path:
        """The model's first still sheet (see :mod:`ganzoo.sheets`) as ``samples/step_XXXXXXXX.png`` + ``.json``."""
        from ganzoo.sheets import REFERENCE_KINDS, STILL_KINDS, SheetInputs, write_sheet

        val = self.val_dataset
        n = min(self.cfg.sample_count, len(val))
        groups = val.indices_by_label()
        # Fixed inputs across the run: one per domain in turn, always the same items.
        picks = []
        for k in range(n):
            group = groups[k % len(groups)] or groups[0]
            picks.append(group[(k // len(groups)) % len(group)])
        labels = torch.tensor([val.labels[i] for i in picks])
        names = [val.domains[int(y)] if labels.dim() == 1 else f"val {i}" for i, y in zip(picks, labels)]
        inputs = SheetInputs(torch.stack([val.load(i) for i in picks]), names, source_labels=labels, seed=self.cfg.seed, step=self.step)
        kind = next(k for k in self.model.sample_sheets if k in STILL_KINDS)
        if kind in REFERENCE_KINDS:  # references: the last item of each domain, usually not a source
            ref_picks = [(d, group[-1]) for d, group in enumerate(groups) if group]
            inputs.references = torch.stack([val.load(i) for _, i in ref_picks])
            inputs.reference_domains = [d for d, _ in ref_picks]
        path = self.dir.samples / f"step_{self.step:08d}.png"
        write_sheet(self.model, kind, inputs, path)
        return path

    # ------------------------------------------------------------------ the loop

    def run(self) -> RunResult:
        # Another run or the user's files: a sentence before any work (rank 0 claims the folder atomically later).
        if not self.any_free_name and distributed.env_info().is_main:
            self.dir.check_free()
            if not self.resume:
                self.dir.refuse_taken()
        if self.resume:
            self._check_resume_recipe()
        self._setup()  # data and networks first: a bad recipe or data folder leaves no run directory behind
        try:
            return self._run()
        except OSError as exc:  # a full or failing disk mid-run (checkpoint, log, sample): the last checkpoint stays
            good = self._last_checkpoint() if self.dist.is_main else None
            keep = f"the last checkpoint is {good}" if good else "no checkpoint had been written yet"
            theirs = exc.filename and not ckpt.inside(Path(str(exc.filename)), self.run_dir)  # not ours: e.g. a data file
            if theirs:
                where, fix = f"Cannot read or write {exc.filename}", "fix that path and continue with"
            else:
                where, fix = f"Cannot write to {self.run_dir}", "free some space and continue with"
            what = f"{reason(exc)}: {Path(str(exc.filename)).name}" if exc.filename and not theirs else reason(exc)
            raise TrainingError(f"{where} at step {self.step} ({what}); training stopped and {keep}; {fix}: "
                                f"ganzoo run --resume {self.run_dir}.") from None
        finally:
            self.dir.release()
            distributed.shutdown(self.dist)

    def _prepare_run_dir(self) -> None:
        base, n = self.run_dir, 1
        while True:
            try:
                return self.dir.prepare(resume=self.resume, checkpoint_bytes=self.checkpoint_bytes(),
                                        keep_checkpoints=self.cfg.keep_checkpoints)
            except RunDirTaken:
                n += 1
                if not self.any_free_name or n > 1000:
                    raise
                self.run_dir = base.with_name(f"{base.name}-{n}")
                self.dir = RunDir(self.run_dir)
                if self.evaluation is not None:
                    self.evaluation.run_dir = self.run_dir

    def _run(self) -> RunResult:
        main = self.dist.is_main
        failure = None
        if main:
            try:
                self._prepare_run_dir()
            except GanzooError as exc:
                failure = exc
        # Under torchrun the other ranks learn of rank 0's failure here instead of waiting for it at a barrier.
        if distributed.any_rank(failure is not None, self.dist, self.device):
            raise failure or TrainingError(f"Rank 0 could not prepare the run directory {self.run_dir}; see its message.")
        resumed = self.resume and self.dir.has_checkpoint()
        if resumed:
            self._restore()
        elif main:
            self.dir.start_fresh(self.recipe.to_yaml())
            if self.init_from is not None:
                ckpt.atomic_write_text(self.run_dir / INIT_FROM, json.dumps({"init_from": str(self.init_from)}) + "\n")
            if self.evaluation is not None:
                self.evaluation.forget_best()
        if main:  # rank 0 only: one set of rows per run, not one per process
            self.loggers = LoggerSet.open(self.logger_classes, self.run_dir, self.recipe,
                                          resume_step=self.step if resumed else None)
        finished = False
        try:
            result = self._loop()
            finished = not result.interrupted
            return result
        finally:
            self.loggers.close(self.dir.last_checkpoint() if finished else None)

    def _loop(self) -> RunResult:
        main = self.dist.is_main
        cfg = self.cfg
        last_ckpt: Path | None = None
        last_losses: dict[str, float] = {}
        interrupted = False
        start_step = self.step

        progress = self._progress()
        task = progress.add_task("train", total=cfg.steps, completed=self.step, losses="")
        pending: list[dict[str, torch.Tensor]] = []
        t0 = time.perf_counter()
        stop = _StopRequest()
        sampled_at = -1
        try:
            with stop, progress:
                for batch in self._loader():
                    self.model.current_step = self.step
                    with distributed.swapped(self.model, self.ddp_nets):
                        losses = self.model.train_step(batch, self.step, self.ctx)
                    self._step_schedulers()
                    if cfg.ema > 0:
                        for role, ema in self.model.ema_nets.items():
                            update_ema(ema, self.model.nets[role], cfg.ema)
                    self.step += 1
                    pending.append({k: v.detach() for k, v in losses.items()})
                    # Ctrl-C lets the step in hand finish, then checkpoints: the saved state is always a whole step.
                    # Under DDP the ranks agree on it at log intervals (one small collective there, none per step).
                    stopping = stop.requested
                    if self.dist.active:
                        at_log_step = self.step % cfg.log_every == 0 or self.step % cfg.checkpoint_every == 0
                        stopping = at_log_step and distributed.any_rank(stop.requested, self.dist, self.device)
                    at_ckpt = self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps or stopping
                    at_log = self.step % cfg.log_every == 0 or at_ckpt
                    if at_log:
                        last_losses = self._flush_losses(pending, t0, start_step)
                        pending = []
                        progress.update(task, completed=self.step, losses=_fmt(last_losses))
                        if not self.console.is_terminal and not self.quiet and self.step % max(cfg.log_every, cfg.steps // 20) == 0:
                            self.console.print(f"step {self.step}/{cfg.steps} {_fmt(last_losses)}")
                    else:
                        progress.update(task, completed=self.step)
                    if cfg.sample_every and self.step % cfg.sample_every == 0:
                        if main:
                            self.loggers.image(self.step, "samples", self.save_samples())
                        sampled_at = self.step
                    if self.evaluation is not None and self.step % self.recipe.eval.every == 0:
                        # Before the checkpoint: a run killed in between evaluates this step again on resume.
                        started = time.perf_counter()
                        if main:
                            self.evaluation(self.step, self.loggers.log)
                        distributed.barrier(self.dist)
                        t0 += time.perf_counter() - started  # it_per_s measures training, not evaluation
                    if at_ckpt:
                        last_ckpt = self.save_checkpoint()
                        self.loggers.checkpoint(self.step, last_ckpt)
                    if stopping:
                        interrupted = True
                        break
        except torch.OutOfMemoryError:
            good = self._last_checkpoint()
            keep = f"the last checkpoint is {good}" if good else "no checkpoint had been written yet"
            raise self._out_of_memory(f"at step {self.step + 1}; {keep}") from None
        except KeyboardInterrupt:
            # A second Ctrl-C (or one outside the main thread): stop now, keep the last whole checkpoint.
            interrupted = True
            last_ckpt = self._last_checkpoint()
        if interrupted and main:
            where = f"the last checkpoint is {last_ckpt}" if last_ckpt else "no checkpoint was written"
            by = " by SIGTERM" if stop.signum == signal.SIGTERM else ""
            self.console.print(f"[yellow]Interrupted{by} at step {self.step}; {where}. "
                               f"Continue with: ganzoo run --resume {self.run_dir}[/]", highlight=False)
        elif cfg.sample_every and sampled_at != self.step and main and not interrupted:
            self.loggers.image(self.step, "samples", self.save_samples())
        distributed.barrier(self.dist)
        return RunResult(self.run_dir, self.step, last_ckpt, last_losses, interrupted, stop_signal=int(stop.signum))

    def _last_checkpoint(self) -> Path | None:
        """The newest complete checkpoint folder of this run, or None before the first one."""
        return self.dir.last_checkpoint()

    def _out_of_memory(self, when: str) -> TrainingError:
        local = distributed.check_batch(self.recipe.data.batch_size, self.dist.world_size)
        size = self.recipe.data.image_size
        remedies = ["lower data.batch_size or data.image_size"]
        if self.precision == "fp32":
            remedies.append("use train.precision=bf16")
        remedies.append(f"free memory on {self.device}")
        return TrainingError(
            f"Out of {'GPU' if self.device.type == 'cuda' else 'device'} memory {when} ({self.recipe.model}, batch "
            f"{local} of {size}x{size} px per process on {self.device}, {self.precision}); {', '.join(remedies[:-1])} "
            f"or {remedies[-1]}."
        )

    def _step_schedulers(self) -> None:
        # Schedules advance once per iteration for every optimiser, also where a model skipped one this
        # iteration (StarGAN v1 steps G every n_critic iterations): PyTorch's ordering warning does not apply.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
            for sched in self.schedulers.values():
                sched.step()

    def _flush_losses(self, pending, t0: float, start_step: int) -> dict[str, float]:
        # Every key of the interval: a loss a model computes on some steps only (a lazy penalty) is the mean of those.
        keys = dict.fromkeys(k for p in pending for k in p)
        stacked = {k: torch.stack([p[k].float() for p in pending if k in p]) for k in keys}
        # Under DDP: the mean over ranks (one collective per log interval), equal on every rank.
        values = {k: distributed.all_reduce_mean(v, self.dist).cpu() for k, v in stacked.items()}  # one host sync per log interval
        for k, v in values.items():
            if not torch.isfinite(v).all():
                if self.scaler is not None and self.scaler.get_scale() >= 1.0:
                    # fp16: a step whose scaled gradients overflowed (a penalty's gradient among them) is skipped
                    # by the grad scaler, which lowers its scale; only a scale driven below 1 means divergence.
                    continue
                good = self._last_checkpoint()
                keep = f"the last good checkpoint is {good}" if good else "no checkpoint had been written yet"
                raise TrainingError(
                    f"Loss {k} became {v[~torch.isfinite(v)][0].item()} by step {self.step}; training stopped and {keep}. "
                    "Lower optim.lr or use train.precision=fp32."
                )
        last = {k: _last_finite(v) for k, v in values.items()}
        elapsed = time.perf_counter() - t0
        it_per_s = (self.step - start_step) / max(elapsed, 1e-9)
        record = {"step": self.step, **{f"loss/{k}": round(v, 6) if math.isfinite(v) else None for k, v in last.items()},
                  **{f"lr/{name}": opt.param_groups[0]["lr"] for name, opt in self.optimizers.items()},
                  "it_per_s": round(it_per_s, 4), "img_per_s": round(it_per_s * self.recipe.data.batch_size, 4)}
        if self.device.type == "cuda":  # read at log intervals only: no extra host sync per step
            record["peak_mem_mb"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
        self.loggers.log(record)  # rank 0's loggers; an empty set elsewhere
        return last

    def _progress(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _SpeedColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[losses]}"),
            console=self.console,
            disable=self.quiet or not self.console.is_terminal,
            transient=False,
        )


class _StopRequest:
    """First Ctrl-C (SIGINT) or SIGTERM (what SLURM, Kubernetes and ``timeout`` send before they kill) asks the
    loop to stop after the current step and checkpoint; a second one interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self.signum = signal.SIGINT
        self._previous: dict[int, object] = {}

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.signum = signum

    def __enter__(self):
        import threading

        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}


class _SpeedColumn:
    """Iterations per second of the rich task (blank until rich has a speed estimate)."""

    def __new__(cls):
        from rich.progress import ProgressColumn
        from rich.text import Text

        class Speed(ProgressColumn):
            def render(self, task):
                return Text(f"{task.speed:.2f} it/s" if task.speed else "-- it/s")

        return Speed()


def _load_optimizer_state(opt: torch.optim.Optimizer, saved: dict) -> None:
    """Load an optimiser's state but keep the implementation this process chose (fused or not): a checkpoint
    written on another device or by an older version names its own, and PyTorch's loader would take that."""
    chosen = [{k: g.get(k) for k in ("fused", "foreach")} for g in opt.param_groups]
    opt.load_state_dict(saved)
    for group, flags in zip(opt.param_groups, chosen):
        group.update(flags)
        for p in group["params"]:
            state = opt.state.get(p, {})
            # Saved moments are plain contiguous tensors; back in the parameter's layout (channels_last runs), as the
            # fused kernels pair elements by memory order and would otherwise update each weight with another's moments.
            for key, value in state.items():
                if torch.is_tensor(value) and value.shape == p.shape and value.stride() != p.stride():
                    state[key] = torch.empty_like(p, dtype=value.dtype).copy_(value)
            if group.get("fused") and torch.is_tensor(state.get("step")):
                # the fused kernels want the step counters on the parameters' device
                state["step"] = state["step"].to(device=p.device, dtype=torch.float32)


def _last_finite(values: torch.Tensor) -> float:
    """The interval's last finite value (nan when it has none): the value shown and logged."""
    finite = values[torch.isfinite(values)]
    return float(finite[-1]) if len(finite) else math.nan


def _fmt(losses: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.3f}" for k, v in list(losses.items())[:6])


def default_run_dir(recipe_path: str | Path) -> Path:
    stem = Path(recipe_path).stem
    return Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


#: Keys of ``data:`` a resumed run may change: where the same images are, and how they are loaded.
RESUMABLE_DATA_KEYS = ("root", "num_workers", "download_hint")


def resume_differences(saved: dict, new: dict) -> tuple[list[str], list[str]]:
    """Dotted keys where recipe ``new`` differs from ``saved``: (those that forbid resuming — model, networks,
    data but its root and loader settings — and those that may change)."""
    def flat(doc, prefix=""):
        items = {}
        for key, value in (doc or {}).items():
            dotted = f"{prefix}{key}"
            if isinstance(value, dict) and value:
                items.update(flat(value, dotted + "."))
            else:
                items[dotted] = value
        return items

    before, after = flat(saved), flat(new)
    refused, changed = [], []
    for key in sorted(set(before) | set(after), key=lambda k: (k.split(".")[0], k)):
        if before.get(key, "<unset>") == after.get(key, "<unset>"):
            continue
        section = key.split(".")[0]
        old, now = before.get(key), after.get(key)
        if key == "data.hub" and isinstance(old, str) and isinstance(now, str) and old.partition("@")[0] == now.partition("@")[0]:
            changed.append(key)  # the same Hub dataset pinned to a commit (what resuming a streamed run asks for)
            continue
        if section in ("model", "networks") or (section == "data" and key.split(".")[1] not in RESUMABLE_DATA_KEYS):
            refused.append(key)
        else:
            changed.append(key)
    return refused, changed
