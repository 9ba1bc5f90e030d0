"""Multi-host training with launch/local.py: 2 processes × 2 CPU devices (gloo) against
1 process × 4 devices on the same global batch, through a SIGKILL of the whole job, a resume,
and a forwarded SIGTERM (preemption, agreed by both processes at one step)."""

import os
import signal
import subprocess
import sys

import numpy as np

from tests.test_engine_trainer import ROOT, ckpt_steps, train_rows, wait_for_step


def launch(workdir, processes, devices, cache_dir, delay):
    env = dict(os.environ, TLGEN_PROGRESS="0", JAX_COMPILATION_CACHE_DIR=str(cache_dir),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    command = [sys.executable, "launch/local.py", "-n", str(processes), "--devices-per-process",
               str(devices), "--", "--config", "tests/engine_config.py:regression",
               "--workdir", workdir, f"--config.data.delay={delay}", "--config.total_steps=60"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_two_processes_match_one_through_kill_resume_and_preemption(tmp_path):
    cache = tmp_path / "jax_cache"
    single = launch(str(tmp_path / "single"), 1, 4, cache, delay=0)

    workdir = str(tmp_path / "multi")
    job = launch(workdir, 2, 2, cache, delay=0.1)
    wait_for_step(job, workdir, 6, checkpoint=True)
    os.killpg(job.pid, signal.SIGKILL)                                   # the whole job dies
    job.wait()

    job = launch(workdir, 2, 2, cache, delay=0.1)
    wait_for_step(job, workdir, 9)
    job.send_signal(signal.SIGTERM)                                      # forwarded to both
    output = job.communicate(timeout=120)[0]
    assert job.returncode == 0, output
    assert "resumed from" in output and "preempted=True" in output
    preempted_at = ckpt_steps(workdir)[-1]
    assert 9 <= preempted_at < 60 and train_rows(workdir)[-1]["step"] == preempted_at
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints", str(preempted_at), "data"))) == [
        "commit_success.txt", "process_0-of-2.json", "process_1-of-2.json"]

    output = single.communicate(timeout=120)[0]
    assert single.returncode == 0, output
    for split in ("train", "eval"):
        ref = [r for r in train_rows(str(tmp_path / "single"), split) if r["step"] <= preempted_at]
        got = train_rows(workdir, split)
        assert [r["step"] for r in got] == [r["step"] for r in ref]
        np.testing.assert_allclose([r["loss"] for r in got], [r["loss"] for r in ref], rtol=1e-5)
