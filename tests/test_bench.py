"""``ganzoo bench`` on CPU: the command's table and JSON, and bf16 autocast for every registered model.

Every model's fp32 bench step (official recipe, shrunk to its declared tiny networks) is part of its contract in
tests/test_contract.py; the sizes here come from the same declarations (tests/families.py), not from a list.
"""

from __future__ import annotations

import json

import pytest

from tests import families


def cli_args(model: str) -> list[str]:
    size, sets = families.bench_settings(model)
    return ["--img-size", str(size), *(arg for text in sets for arg in ("--set", text))]


@pytest.mark.parametrize("model", families.model_names())
def test_bench_in_bf16_trains_and_translates_under_autocast(model):
    # bf16 is the default precision on GPUs: every family's train step and translation must run under it
    from ganzoo.bench import run_bench

    size, sets = families.bench_settings(model)
    r = run_bench(model, img_size=size, batch=2, precision="bf16", device="cpu", steps=1, warmup=1, overrides=sets)
    assert r["model"] == model and r["precision"] == "bf16" and r["train_img_per_s"] > 0 and r["infer_img_per_s"] > 0


def test_bench_cli_prints_the_table_writes_json_and_takes_a_peak(cli, tmp_path):
    out = tmp_path / "b.json"
    proc = cli("bench", "stargan", "--batch", "2", "--steps", "1", "--device", "cpu", "--peak-tflops", "1.5", "--json", str(out),
               *cli_args("stargan"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train img/s" in proc.stdout and "MFU" in proc.stdout
    r = json.loads(out.read_text())
    assert r["model"] == "stargan" and r["device"] == "cpu" and r["batch"] == 2 and r["precision"] == "fp32"
    assert r["recipe"].endswith("stargan_celeba.yaml") and "synthetic" in r["data"]
    assert r["peak_tflops"] == 1.5 and r["mfu"] == pytest.approx(r["achieved_tflops"] / 1.5)
    bad = cli("bench", "no_such_model")
    assert bad.returncode == 2 and "neither a recipe file nor a model" in bad.stderr


class RecordingProgress:
    def __init__(self):
        self.phases, self.first, self.estimates = [], [], []

    def estimate(self, seconds, flops, flops_per_s, iterations):
        assert not self.phases, "the estimate comes before anything is built for real"
        self.estimates.append((seconds, flops, flops_per_s, iterations))

    def phase(self, name, total):
        self.phases.append([name, total, 0])

    def advance(self):
        self.phases[-1][2] += 1

    def first_iteration(self, seconds, remaining):
        self.first.append((seconds, remaining))


def test_bench_reports_each_phase_and_the_first_iteration_before_the_rest():
    from ganzoo.bench import run_bench

    size, sets = families.bench_settings("stargan")
    progress = RecordingProgress()
    run_bench("stargan", img_size=size, batch=2, device="cpu", steps=2, warmup=1, overrides=sets, progress=progress)
    # every phase is filled exactly: the setup, 1 warm-up + 2 timed training iterations, 1 + 2 translations, 2 counted
    assert progress.phases == [["setup (build, trial step)", 1, 1], ["warm-up", 1, 1], ["training (timed)", 2, 2],
                               ["inference", 3, 3], ["FLOP count", 2, 2]]
    assert len(progress.first) == 1 and progress.first[0][0] > 0 and progress.first[0][1] == 4
    [(seconds, flops, rate, iterations)] = progress.estimates
    assert flops > 0 and rate > 0 and seconds == pytest.approx(flops / rate) and iterations == 5


@pytest.mark.parametrize("model", families.model_names())
def test_every_family_train_step_is_counted_on_the_meta_device(model):
    # the up-front estimate builds the model on "meta" and runs its train step there; a family where that fails
    # gets no estimate (silently, in the bench), which this test turns into a failure
    from ganzoo.bench import meta_train_flops

    assert meta_train_flops(families.tiny_recipe(model)) > 0


@pytest.mark.parametrize("model", ["stargan_v2", "cyclegan"])
def test_the_meta_count_equals_the_count_of_a_real_iteration(model):
    # stargan_v2: R1's double backward; cyclegan: two generators, pools of fakes, identity losses
    import torch

    from ganzoo.bench import flop_counter, meta_train_flops
    from ganzoo.data_stream import build_dataset, step_batches
    from ganzoo.step_context import StepContext

    recipe = families.tiny_recipe(model)
    dataset = build_dataset(recipe, "train")
    real = families.model_class(model)(recipe, dataset.domains)
    real.build()
    cpu = torch.device("cpu")
    ctx = StepContext(cpu, "fp32", real.build_optimizers())
    batch = next(iter(step_batches(dataset, real, recipe, start_step=0, device=cpu)))
    with flop_counter() as counter:
        real.current_step = 0
        real.train_step(batch, 0, ctx)
    assert meta_train_flops(recipe, 0) == counter.get_total_flops() > 0


def test_bench_cli_announces_a_slow_first_iteration_with_an_estimate(monkeypatch):
    from typer.testing import CliRunner

    import ganzoo.commands.bench as command
    from ganzoo.cli import app

    monkeypatch.setattr(command, "SLOW_ITERATION_S", 0.0)  # every iteration counts as slow here
    result = CliRunner().invoke(app, ["bench", "stargan", "--batch", "2", "--steps", "1", "--device", "cpu",
                                      *cli_args("stargan")])
    assert result.exit_code == 0, result.output
    assert "note: one training iteration took" in result.stderr and "still to run" in result.stderr, result.stderr
    # and before it, the estimate: FLOPs per iteration at this CPU's measured rate, for the 3 training iterations (1 warm-up, 1 timed, 1 counted)
    said = " ".join(result.stderr.split())  # rich wraps the notes at the console's width
    assert "note: this configuration is about" in said and "so the 3 training iterations take about" in said, said
    assert said.index("this configuration") < said.index("one training iteration took")
    assert "estimated before running" in result.stdout and "ms/iter" in result.stdout


@pytest.mark.parametrize(("budget_s", "sides"), [(float("inf"), [128, 256, 512]), (0.0, [128])])
def test_the_matmul_rate_grows_its_side_only_while_the_next_call_fits_the_budget(monkeypatch, budget_s, sides):
    # bf16 on a CPU that emulates it took 12 s for the 1024-square calls: a slow dtype must stop at a small side
    import torch

    from ganzoo.bench import matmul_flops_per_s

    used, mm = [], torch.mm
    monkeypatch.setattr(torch, "mm", lambda a, b: used.append(a.shape[0]) or mm(a, b))
    assert matmul_flops_per_s(n=512, repeats=2, budget_s=budget_s) > 0
    assert sorted(set(used)) == sides and all(used.count(side) == 3 for side in sides)  # a warm-up call + 2 timed
