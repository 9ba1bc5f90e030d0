"""Launch scripts: the TPU pod script's gcloud commands (dry run), the SLURM batch script's
srun line, and launch/local.py's per-process environment and failure handling.
(2-process training through launch/local.py runs in test_engine_multihost.py.)"""

import importlib.util
import os
import stat
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("launch_local", os.path.join(ROOT, "launch", "local.py"))
local = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(local)

TPU_ARGS = ["--name", "tl-test", "--project", "proj-1", "--zone", "us-central2-b",
            "--accelerator-type", "v4-32", "--runtime-version", "tpu-ubuntu2204-base",
            "--repo", "https://example.com/tlgen.git", "--workdir", "/mnt/b/runs/tae"]


def fake_tool(bin_dir, name, body):
    path = bin_dir / name
    path.write_text("#!/bin/bash\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def run_script(args, tmp_path, env=None):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake_tool(bin_dir, "gcloud", f"touch {tmp_path}/gcloud_was_run; exit 99")
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", **(env or {}))
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_tpu_pod_dry_run_prints_every_gcloud_command(tmp_path):
    result = run_script(["bash", "launch/tpu_pod.sh", "--dry-run", "--spot", *TPU_ARGS, "--",
                         "--config", "configs/timescale_ae_synthetic.py:base",
                         "--config.total_steps=100"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "gcloud_was_run").exists()
    create, describe, install, train, delete = result.stdout.strip().splitlines()
    location = "--project proj-1 --zone us-central2-b"
    assert create == ("gcloud compute tpus queued-resources create tl-test --node-id tl-test "
                      f"{location} --accelerator-type v4-32 --runtime-version tpu-ubuntu2204-base --spot")
    assert describe.startswith(f"gcloud compute tpus queued-resources describe tl-test {location}")
    for line in (install, train):
        assert line.startswith(f"gcloud compute tpus tpu-vm ssh tl-test {location} --worker=all '--command=")
    assert "pip install -q -U '\\''jax[tpu]'\\'' '\\''git+https://example.com/tlgen.git@main'\\''" in install
    assert ("TLGEN_DISTRIBUTED=auto python3 -m tlgen train --workdir /mnt/b/runs/tae "
            "--config configs/timescale_ae_synthetic.py:base --config.total_steps=100") in train
    assert delete == f"gcloud compute tpus queued-resources delete tl-test {location} --force --quiet"


def test_tpu_pod_needs_its_flags(tmp_path):
    result = run_script(["bash", "launch/tpu_pod.sh", "--dry-run", *TPU_ARGS[:6]], tmp_path)
    assert result.returncode == 2
    assert "--accelerator-type is required" in result.stderr
    for args, says in ((["--dry-run", "--name"], "--name needs a value"),
                       (["--dry-run", *TPU_ARGS[:4], "--zone", "--dry-run"], "--zone needs a value"),
                       (["--dry-run", *TPU_ARGS, "--max-restarts", "5x"],
                        "--max-restarts 5x must be a whole number")):
        result = run_script(["bash", "launch/tpu_pod.sh", *args], tmp_path)
        assert result.returncode == 2 and result.stderr.startswith(f"tpu_pod.sh: {says}"), result.stderr


def test_tpu_pod_resumes_with_the_saved_config_when_nothing_follows(tmp_path):
    result = run_script(["bash", "launch/tpu_pod.sh", "--dry-run", *TPU_ARGS], tmp_path)
    assert result.returncode == 0, result.stderr
    train = result.stdout.strip().splitlines()[3]
    assert train.endswith("python3 -m tlgen train --workdir /mnt/b/runs/tae '")  # nothing after it


def test_slurm_script_runs_one_tlgen_per_task(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_tool(bin_dir, "srun", 'echo "srun $*"; echo "TLGEN_DISTRIBUTED=$TLGEN_DISTRIBUTED"')
    result = run_script(["bash", "launch/slurm_gpu.sbatch", "--config", "configs/x.py:large"],
                        tmp_path, env={"WORKDIR": "/shared/run"})
    assert result.returncode == 0, result.stderr
    assert ("srun --kill-on-bad-exit=1 --cpu-bind=none python -m tlgen train --workdir /shared/run "
            "--config configs/x.py:large") in result.stdout
    assert "TLGEN_DISTRIBUTED=auto" in result.stdout
    with open(os.path.join(ROOT, "launch/slurm_gpu.sbatch")) as f:
        directives = [line for line in f if line.startswith("#SBATCH")]
    assert any("--signal=B:USR1@" in d for d in directives) and any("--gpus-per-node" in d for d in directives)
    missing = run_script(["bash", "launch/slurm_gpu.sbatch"], tmp_path)
    assert missing.returncode != 0 and "WORKDIR" in missing.stderr
    fake_tool(bin_dir, "srun", "exit 3")
    failed = run_script(["bash", "launch/slurm_gpu.sbatch"], tmp_path, env={"WORKDIR": "/shared/run"})
    assert failed.returncode == 3


def test_slurm_script_stops_training_and_requeues_before_the_time_limit(tmp_path):
    """SLURM's USR1 (--signal=B:USR1@300): SIGTERM to srun (tlgen saves and exits 0), then
    `scontrol requeue` of the job; without the signal the job just ends."""
    import signal
    import time

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_tool(bin_dir, "srun", f"trap 'echo stopped > {tmp_path}/srun_stopped; kill $!; exit 0' TERM\n"
                               f"touch {tmp_path}/srun_started\nsleep 30 & wait")
    fake_tool(bin_dir, "scontrol", f'echo "$*" > {tmp_path}/scontrol')
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", WORKDIR="/shared/run",
               SLURM_JOB_ID="42")
    job = subprocess.Popen(["bash", "launch/slurm_gpu.sbatch"], cwd=ROOT, env=env,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while not (tmp_path / "srun_started").exists() and time.time() < deadline:
        time.sleep(0.05)
    job.send_signal(signal.SIGUSR1)
    assert job.wait(timeout=30) == 0
    assert (tmp_path / "srun_stopped").read_text().strip() == "stopped"
    assert (tmp_path / "scontrol").read_text().strip() == "requeue 42"
    assert "job 42 is requeued" in job.stderr.read()


def test_local_process_env():
    env = local.process_env(1, 2, 1234, "cpu", 3)
    assert env["TLGEN_COORDINATOR"] == "127.0.0.1:1234"
    assert (env["TLGEN_NUM_PROCESSES"], env["TLGEN_PROCESS_ID"]) == ("2", "1")
    assert env["XLA_FLAGS"].split().count("--xla_force_host_platform_device_count=3") == 1
    assert "device_count=8" not in env["XLA_FLAGS"] and env["JAX_PLATFORMS"] == "cpu"
    assert local.process_env(1, 2, 1234, "gpu", 1)["CUDA_VISIBLE_DEVICES"] == "1"


def test_local_fails_when_a_process_fails(tmp_path):
    result = subprocess.run(
        [sys.executable, "launch/local.py", "-n", "2", "--", "--config", "missing.py:tiny",
         "--workdir", str(tmp_path / "w")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "config file missing.py does not exist" in result.stderr


def test_local_stops_the_others_when_one_process_fails(tmp_path, monkeypatch):
    """Process 1 fails alone (exit 5) while process 0 would run on: process 0 gets SIGTERM, and
    the launcher exits with the failed process's code. The processes are a stand-in script."""
    stopped = tmp_path / "rank0_stopped"
    script = tmp_path / "fake_python"
    script.write_text("#!/bin/bash\n"
                      'if [ "$TLGEN_PROCESS_ID" = 1 ]; then sleep 0.5; exit 5; fi\n'
                      'trap \'touch "$STOPPED"; kill $! 2>/dev/null; exit 0\' TERM\n'
                      "sleep 60 & wait $!\n")
    script.chmod(0o755)
    monkeypatch.setenv("STOPPED", str(stopped))
    monkeypatch.setattr(local.sys, "executable", str(script))
    monkeypatch.setattr(local.signal, "signal", lambda *args: None)    # keep pytest's handlers
    monkeypatch.setattr(local, "GRACE_SECONDS", 5)
    start = time.monotonic()
    assert local.main(["-n", "2", "--", "--workdir", str(tmp_path / "w")]) == 5
    assert stopped.exists() and time.monotonic() - start < 5


@pytest.mark.parametrize("argv,message", [(["-n", "0", "--", "--workdir", "w"], "--num-processes must be >= 1"),
                                          (["--devices-per-process", "0", "--", "--workdir", "w"],
                                           "--devices-per-process must be >= 1"),
                                          (["-n", "2"], "the tlgen train arguments")])
def test_local_rejects_bad_counts(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        local.main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
