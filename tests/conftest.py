"""Test setup, before JAX starts: 8 fake CPU devices, and XLA:CPU without LLVM's backend
optimizations and with its older loop emitters for fusions: tests are compile-bound (a few
steps of each program), and unoptimized code halves their time while computing the same values
up to float rounding (the older emitters compile the unoptimized StyleGAN-V step in 6.0 s
instead of 8.6 s and run it faster too; with optimization on they are slower on both counts). One
persistent compilation cache per test run, shared by the workers and the `tlgen`
processes the tests start, so a program that several tests (or processes) run is compiled
once; it starts empty and is removed at the end, so every run measures a fresh machine."""

import atexit
import gc
import os
import shutil
import tempfile

os.environ["JAX_PLATFORMS"] = "cpu"
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8"
                           " --xla_backend_optimization_level=0"
                           " --xla_llvm_disable_expensive_passes=true"
                           " --xla_cpu_use_fusion_emitters=false").strip()
os.environ.setdefault("TLGEN_PROGRESS", "0")
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:  # the xdist workers inherit the controller's
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="tlgen-test-xla-cache-")
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.2"
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], True)

import subprocess  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def small_disk(tmp_path):
    """`small_disk(size)` mounts a tmpfs of `size` (e.g. "1m") and returns its path: a real
    disk that fills up (ENOSPC). Mounting needs root; elsewhere the test is skipped."""
    mounted = []

    def mount(size: str = "1m"):
        path = tmp_path / f"disk{len(mounted)}"
        path.mkdir()
        if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                                                str(path)], capture_output=True).returncode:
            pytest.skip("mounting a small tmpfs (a disk that fills up) needs root")
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def read_only_disk(tmp_path):
    """A read-only tmpfs mounted at tmp_path/"ro": a real file system that refuses writes
    (EROFS). Mounting needs root; elsewhere the test is skipped."""
    path = tmp_path / "ro"
    path.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)],
                                           capture_output=True).returncode:
        pytest.skip("mounting a read-only tmpfs needs root")
    yield path
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill_disk(path, leave_kib: int = 0) -> None:
    """Fills the filesystem of `path` with a file `path/filler`, leaving `leave_kib` KiB."""
    stats = os.statvfs(path)
    free_kib = stats.f_bavail * stats.f_frsize // 1024
    with open(os.path.join(path, "filler"), "wb") as f:
        f.write(b"\0" * max(free_kib - leave_kib, 0) * 1024)


# The slowest files first (longest-first packing): with `--dist loadfile --no-loadscope-reorder`
# xdist hands files to the workers in this order, so no long file starts when the rest is done.
# The demo runs the quickstart notebook's programs: placed well after it, it finds them compiled.
SLOWEST_FIRST = ("test_long_video_family.py", "test_bench_peers.py", "test_stylegan_v_family.py",
                 "test_parallel_gans.py", "test_dtvnet_family.py", "test_colab_quickstart.py",
                 "test_timescale_family.py", "test_metric_statistics.py", "test_demo.py",
                 "test_engine_trainer.py", "test_time_flies_family.py", "test_engine_multihost.py",
                 "test_colab_generate.py", "test_stylegan_v_model.py", "test_colab_animate.py",
                 "test_colab_fgla.py", "test_fgla_family.py", "test_losses_timescale.py",
                 "test_metric_networks.py", "test_ada_augment.py", "test_readme.py",
                 "test_long_video_sr_model.py", "test_long_video_model.py", "test_parallel_timescale.py",
                 "test_family_interface.py", "test_time_flies_model.py", "test_dtvnet_model.py")


def pytest_unconfigure(config):
    """At its end pytest collects garbage five times over to report exceptions raised in
    finalizers; over the heap of a process that ran hundreds of JAX tests that took ~8 s of
    holding the GIL (long enough for xdist to interrupt the worker, a KeyboardInterrupt that
    landed in JAX's gc callback). One collection here, then what is left alive is frozen out of
    the five, which then find nothing to traverse."""
    gc.collect()
    gc.freeze()


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
