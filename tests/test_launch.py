"""Launch scripts: the TPU pod script's gcloud commands (dry run), the SLURM batch script's
srun line, and launch/local.py's per-process environment and failure handling.
(2-process training through launch/local.py runs in test_engine_multihost.py.)"""

import importlib.util
import os
import signal
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
    assert "uv venv -q --allow-existing --python 3.11 ~/tlgen-env" in install        # Python >= 3.11
    assert ("uv pip install -q --python ~/tlgen-env/bin/python -U '\\''jax[tpu]'\\'' "
            "'\\''git+https://example.com/tlgen.git@main'\\''") in install
    assert ("TLGEN_DISTRIBUTED=auto ~/tlgen-env/bin/python -m tlgen train --workdir /mnt/b/runs/tae "
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
    assert train.endswith("/bin/python -m tlgen train --workdir /mnt/b/runs/tae '")  # nothing after it


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
    tasks = run_script(["bash", "launch/slurm_gpu.sbatch"], tmp_path,
                       env={"WORKDIR": "/shared/run", "SLURM_CPUS_PER_TASK": "12"})
    assert "srun --kill-on-bad-exit=1 --cpu-bind=none --cpus-per-task=12 python -m tlgen train" in tasks.stdout
    with open(os.path.join(ROOT, "launch/slurm_gpu.sbatch")) as f:
        directives = [line for line in f if line.startswith("#SBATCH")]
    assert any("--signal=B:USR1@" in d for d in directives) and any("--gpus-per-node" in d for d in directives)
    missing = run_script(["bash", "launch/slurm_gpu.sbatch"], tmp_path)
    assert missing.returncode != 0 and "WORKDIR" in missing.stderr
    fake_tool(bin_dir, "srun", "exit 3")
    failed = run_script(["bash", "launch/slurm_gpu.sbatch"], tmp_path, env={"WORKDIR": "/shared/run"})
    assert failed.returncode == 3


def test_slurm_script_stops_training_and_requeues_before_the_time_limit(tmp_path):
    """SLURM's USR1 (--signal=B:USR1@300): SIGTERM to srun (tlgen saves and exits 75), then
    `scontrol requeue` of the job; without the signal the job just ends."""
    import signal
    import time

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_tool(bin_dir, "srun", f"trap 'echo stopped > {tmp_path}/srun_stopped; kill $!; exit 75' TERM\n"
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


def test_the_coordinator_port_is_free_and_outside_the_ephemeral_range():
    """Ports of the ephemeral range may go to any socket bound to port 0 (gloo's) in the
    seconds before the processes bind the coordinator's."""
    import socket
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    ports = [local.free_port() for _ in range(20)]
    assert all(10000 <= p < low for p in ports) and len(set(ports)) > 1
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports[0]))                  # free


def test_local_gpus_are_the_ones_the_shell_selected(monkeypatch, capsys):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4, 6")
    assert [local.process_env(r, 2, 1234, "gpu", 1)["CUDA_VISIBLE_DEVICES"] for r in (0, 1)] == ["4", "6"]
    with pytest.raises(SystemExit) as exit_info:
        local.main(["-n", "3", "--platform", "gpu", "--", "--workdir", "w"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().endswith(
        "error: -n 3 processes need as many GPUs, but CUDA_VISIBLE_DEVICES selects 2")


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


def test_local_turns_ctrl_c_into_a_save_and_stop(tmp_path):
    """Ctrl-C reaches the launcher's whole process group, as a terminal sends it: the processes
    ignore that SIGINT and get SIGTERM from the launcher instead (tlgen saves, exits 75), and
    the launcher exits 75. The processes are a stand-in script that records its signals."""
    script = tmp_path / "fake_python"
    script.write_text("#!/bin/bash\n"
                      f'trap \'echo TERM >> "{tmp_path}/signals_$TLGEN_PROCESS_ID"; kill $! 2>/dev/null; exit 75\' TERM\n'
                      f'touch "{tmp_path}/started_$TLGEN_PROCESS_ID"\n'
                      "sleep 60 & wait $!\n")
    script.chmod(0o755)
    runner = (f"import sys; sys.path.insert(0, {ROOT!r}); import launch.local as local; "
              f"local.sys.executable = {str(script)!r}; "
              "sys.exit(local.main(['-n', '2', '--', '--workdir', 'w']))")
    job = subprocess.Popen([sys.executable, "-c", runner], cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"started_{r}").exists() for r in (0, 1)) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGINT)
    assert job.wait(timeout=30) == 75
    for rank in (0, 1):
        assert (tmp_path / f"signals_{rank}").read_text().split() == ["TERM"]


@pytest.mark.parametrize("codes,restarts,exit_code,says", [
    ([75, 0], 1, 0, "restart 1 of 1"),              # saved at a preemption notice: a new slice resumes
    ([75], 0, 1, "training stopped (exit 75; slice tl-test is ACTIVE)"),
    ([3], 1, 1, "training stopped (exit 3; slice tl-test is ACTIVE)")])   # a failure on a live slice
def test_tpu_pod_restarts_after_a_saved_stop(tmp_path, codes, restarts, exit_code, says):
    """gcloud is a stand-in: the slice is ACTIVE, and the workers' `tlgen train` exits with
    `codes` one run after the other."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "codes").write_text("\n".join(map(str, codes)) + "\n")
    fake_tool(bin_dir, "gcloud", f'case "$*" in\n'
                                 f'  *"queued-resources describe"*) echo ACTIVE ;;\n'
                                 f'  *"tlgen train"*) code=$(head -n 1 {tmp_path}/codes); '
                                 f'sed -i 1d {tmp_path}/codes; exit "$code" ;;\n'
                                 f'esac')
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    result = subprocess.run(["bash", "launch/tpu_pod.sh", *TPU_ARGS, "--max-restarts", str(restarts)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == exit_code and says in result.stderr, result.stderr
    assert (tmp_path / "codes").read_text() == ""                   # every run happened


@pytest.mark.parametrize("env,says", [
    ({"TLGEN_DISTRIBUTED": "auto"}, "TLGEN_DISTRIBUTED=auto, but JAX found no cluster here (coordinator_address "
                                    "should be defined); unset it to run one process, or set TLGEN_COORDINATOR, "
                                    "TLGEN_NUM_PROCESSES and TLGEN_PROCESS_ID."),
    ({"TLGEN_COORDINATOR": "127.0.0.1:1", "TLGEN_NUM_PROCESSES": "two", "TLGEN_PROCESS_ID": "0"},
     "TLGEN_NUM_PROCESSES='two' must be a whole number.")])
def test_a_job_environment_that_cannot_start_is_one_sentence(tmp_path, env, says):
    workdir = tmp_path / "w"
    done = subprocess.run([sys.executable, "-m", "tlgen", "train", "--config", "tests/engine_config.py:regression",
                           "--workdir", str(workdir)], cwd=ROOT, env=dict(os.environ, **env),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == f"tlgen train: error: {says}", done.stderr
    assert not workdir.exists()
