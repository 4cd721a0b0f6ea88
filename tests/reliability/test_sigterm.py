"""Preemption: SIGTERM finishes the step in hand, checkpoints and exits like the first Ctrl-C (issue 16, class 9).

SIGTERM is what SLURM, Kubernetes and ``timeout`` send before they kill. A real signal goes to a real
``ganzoo run`` process; the resumed run must end with the weights and losses of a run never stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import ganzoo
from ganzoo.recipe import load_recipe
from ganzoo.trainer import Trainer
from tests.reliability.helpers import invoke, tiny_doc, write_recipe
from tests.reliability.test_kills import losses_by_step, weights

pytestmark = pytest.mark.reliability

STEPS = 5


def test_sigterm_checkpoints_the_step_in_hand_and_the_resumed_run_is_bit_identical(tmp_path):
    # checkpoint_every beyond the run: the only checkpoint before the end is the one SIGTERM asks for
    recipe = write_recipe(tmp_path / "r.yaml", tiny_doc(train={"steps": STEPS, "checkpoint_every": 100, "sample_every": 0,
                                                              "log_every": 1, "threads": 1}))
    threads = torch.get_num_threads()
    try:
        straight = Trainer(load_recipe(recipe), tmp_path / "straight", quiet=True).run()
    finally:
        torch.set_num_threads(threads)
    assert straight.step == STEPS

    run = tmp_path / "run"
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "ganzoo", "run", str(recipe), "--out", str(run), "-q"],
                                env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL, stderr=err)
        log = run / "metrics.jsonl"
        deadline = time.monotonic() + 240
        while not (log.is_file() and log.read_text().count("\n") >= 1):  # one whole step done, the next one under way
            assert proc.poll() is None, stderr.read_text()
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.005)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=240)
    message = stderr.read_text()
    assert proc.returncode == 128 + signal.SIGTERM, message  # not killed by it (-15): it exited on its own
    assert "Interrupted by SIGTERM" in message and "--resume" in message, message
    stopped = json.loads((run / "latest.json").read_text())["step"]
    assert 1 <= stopped < STEPS, message
    assert ganzoo.load(str(run)).step == stopped  # the checkpoint of the step in hand, whole
    assert sorted(losses_by_step(run)) == list(range(1, stopped + 1))

    resumed = invoke("run", "--resume", str(run), "-q")
    assert resumed.code == 0, resumed.stderr
    a, b = weights(ganzoo.load(str(tmp_path / "straight"))), weights(ganzoo.load(str(run)))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert losses_by_step(run) == losses_by_step(tmp_path / "straight")
