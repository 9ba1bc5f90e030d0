"""Multi-host training with 2 processes × 2 CPU devices (gloo) against 1 process × 4 devices
on the same global batch: a process killed alone ends the whole job within seconds (no
hang), a checkpoint corrupt on one process only is rejected by both, then a forwarded
SIGTERM (preemption, agreed by both processes at one step), and every loss equals the
one-process run's. Then each run goes on with the other number of processes and another mesh
(`train.reshard_data`)."""

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tests.test_engine_trainer import ROOT, ckpt_steps, train_rows, wait_for_step

HEARTBEAT_S = 10
STEPS = 40          # every run's length; the preempted job must stop before it


def _env(**extra):
    return dict(os.environ, TLGEN_PROGRESS="0", TLGEN_HEARTBEAT_TIMEOUT=str(HEARTBEAT_S), **extra)


def _train_args(workdir, delay):
    return ["--config", "tests/engine_config.py:regression", "--workdir", workdir,
            f"--config.data.delay={delay}", f"--config.total_steps={STEPS}"]


def launch(workdir, processes, devices, delay, extra=()):
    """The job through launch/local.py (which also stops the rest when one process fails)."""
    command = [sys.executable, "launch/local.py", "-n", str(processes), "--devices-per-process",
               str(devices), "--", *_train_args(workdir, delay), *extra]
    return subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def launch_bare(workdir, delay, port, second_args=()):
    """Two `tlgen train` processes started one by one, as a scheduler does: nothing but JAX's
    coordination service ties them together. The second process gets `second_args` too."""
    procs = []
    for rank, extra in enumerate([(), tuple(second_args)]):
        env = _env(TLGEN_COORDINATOR=f"127.0.0.1:{port}", TLGEN_NUM_PROCESSES="2",
                   TLGEN_PROCESS_ID=str(rank),
                   XLA_FLAGS="--xla_force_host_platform_device_count=2 --xla_backend_optimization_level=0")
        procs.append(subprocess.Popen([sys.executable, "-m", "tlgen", "train", *_train_args(workdir, delay),
                                       *extra],
                                      cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    return procs


def ended(proc):
    """`proc`'s (output, the monotonic time it ended) as a future: waited for in a thread."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(lambda: (proc.communicate(timeout=240)[0], time.monotonic()))   # beside other jobs
    pool.shutdown(wait=False)                          # its thread ends with the job
    return future


def test_two_processes_match_one_through_a_lost_process_a_bad_shard_and_preemption(tmp_path):
    from launch.local import free_port
    single = launch(str(tmp_path / "single"), 1, 4, delay=0)
    # One process raises (its batch does not split over the mesh) while the other already
    # waits for it in a collective: that one is stopped within the heartbeat timeout. (Checked
    # at the end: meanwhile the next job runs.)
    lead_raise, other_raise = launch_bare(str(tmp_path / "raise"), 0.1, free_port(),
                                          ["--config.data.batch_size=6"])
    raised = [ended(lead_raise), ended(other_raise)]

    workdir = str(tmp_path / "multi")
    lead, other = launch_bare(workdir, 0.1, free_port())
    while len(ckpt_steps(workdir)) < 2:                              # checkpoints 4 and 8
        wait_for_step(lead, workdir, 9, checkpoint=True)
    other.kill()                                                     # one process dies alone
    killed_at = time.monotonic()
    lead_output = lead.communicate(timeout=120)[0]
    assert lead.returncode != 0 and time.monotonic() - killed_at < 6 * HEARTBEAT_S, lead_output
    # ended by the peer's death: the coordination service's heartbeat verdict, or, when a
    # collective was in flight, gloo first: the lost connection, or the lead's two devices
    # leaving the broken collective out of step (seen at once after the kill, never before)
    assert ("another task died" in lead_output and "stopped sending heartbeats" in lead_output
            or "Connection reset by peer" in lead_output
            or "Received data size doesn't match expected size" in lead_output), lead_output
    other.wait()

    newest = ckpt_steps(workdir)[-1]                                 # its data shard of process 1
    with open(os.path.join(workdir, "checkpoints", str(newest), "data", "process_1-of-2.json"), "w") as f:
        f.write("{")                                                # is corrupt: both must agree
    job = launch(workdir, 2, 2, delay=0.1)
    while newest + 4 not in ckpt_steps(workdir):                     # resumed from newest - 4
        wait_for_step(job, workdir, 1)
    job.send_signal(signal.SIGTERM)                                  # forwarded to both
    output = job.communicate(timeout=120)[0]
    assert job.returncode == 75, output                             # both saved and stopped
    assert f"checkpoints/{newest} is corrupt (unreadable metadata" in output
    assert os.path.isdir(os.path.join(workdir, "checkpoints_bad", str(newest)))
    assert "preempted=True" in output
    preempted_at = ckpt_steps(workdir)[-1]
    assert newest < preempted_at < STEPS and train_rows(workdir)[-1]["step"] == preempted_at
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints", str(preempted_at), "data"))) == [
        "commit_success.txt", "process_0-of-2.json", "process_1-of-2.json"]

    output = single.communicate(timeout=120)[0]
    assert single.returncode == 0, output
    for split in ("train", "eval"):
        ref = [r for r in train_rows(str(tmp_path / "single"), split) if r["step"] <= preempted_at]
        got = train_rows(workdir, split)
        assert [r["step"] for r in got] == [r["step"] for r in ref]
        np.testing.assert_allclose([r["loss"] for r in got], [r["loss"] for r in ref], rtol=1e-5)

    # Another slice: the preempted 2-process run on 1 process (fsdp over its 4 devices), the
    # finished 1-process run on 2 processes for 4 more steps (as a checkpoint from a pod is
    # taken on to a workstation, or to a larger slice). Refused until the data may be resharded.
    more = ["--config.mesh.fsdp=4"]
    job = launch(workdir, 1, 4, delay=0.1, extra=more)
    output = job.communicate(timeout=120)[0]
    assert job.returncode == 2, output
    assert (f"checkpoint {workdir}/checkpoints/{preempted_at} was written by 2 processes, this run "
            "has 1; resume with 2 processes, or add --config.train.reshard_data=true") in output
    assert ckpt_steps(workdir)[-1] == preempted_at
    single_dir = str(tmp_path / "single")
    for run, processes, delay, extra in ((workdir, 1, 0.1, more),
                                         (single_dir, 2, 0, [f"--config.total_steps={STEPS + 4}"])):
        job = launch(run, processes, 4 // processes, delay=delay,
                     extra=[*extra, "--config.train.reshard_data=true"])
        output = job.communicate(timeout=120)[0]
        assert job.returncode == 0, output
        assert "the state is restored onto this run's mesh" in output
        rows = train_rows(run)
        assert [r["step"] for r in rows] == list(range(1, rows[-1]["step"] + 1))
        assert np.isfinite([r["loss"] for r in rows]).all()
        newest = ckpt_steps(run)[-1]
        assert newest == rows[-1]["step"] == (STEPS if run == workdir else STEPS + 4)
        assert sorted(os.listdir(os.path.join(run, "checkpoints", str(newest), "data"))) == [
            "commit_success.txt", *[f"process_{i}-of-{processes}.json" for i in range(processes)]]

    (lead_output, lead_end), (other_output, failed_at) = (f.result() for f in raised)
    assert other_raise.returncode == 2 and "config.data.batch_size 6 must be divisible" in other_output
    assert lead_raise.returncode != 0 and lead_end - failed_at < 6 * HEARTBEAT_S, lead_output


def test_a_model_axis_across_processes_is_refused(tmp_path):
    """2 processes × 1 device with mesh.model=2: each process would read its own rows into
    one shared batch shard (a silently wrong batch); refused with one sentence, exit 2."""
    command = [sys.executable, "launch/local.py", "-n", "2", "--", *_train_args(str(tmp_path / "w"), 0),
               "--config.mesh.model=2", "--config.mesh.data=1"]
    done = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert ("config.mesh.model 2 spans processes (each has 1 device), so they would share batch "
            "shards while each reads its own rows; set config.mesh.model to a divisor of 1.") in done.stderr
    assert not os.path.exists(tmp_path / "w") or os.listdir(tmp_path / "w") == [], os.listdir(tmp_path / "w")
