"""The options tlgen compiles its programs with, per platform (training steps, evaluation,
inference and the metric networks alike)."""

from __future__ import annotations

import os

# XLA:CPU hands convolutions, dots and reductions to YNNPACK by default; its convolutions
# ran the timescale_ae and dtvnet steps 10-20 % slower than XLA's own (Eigen) ones and the
# FID Inception 2x slower, while its reductions are the fast path for the group norms
# (bench/NOTES.md). Keep reductions only, unless XLA_FLAGS chooses.
CPU_COMPILER_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_REDUCE"}
# GPU kernels whose results may vary from run to run (atomics in scatters and reductions,
# autotuned cuDNN/cuBLAS algorithms) are replaced by deterministic ones.
DETERMINISTIC_GPU_COMPILER_OPTIONS = {"xla_gpu_deterministic_ops": True}


def compiler_options(platform: str, deterministic: bool = False) -> dict | None:
    """Compiler options for programs on `platform` ("cpu", "gpu", "tpu", ...).

    CPU programs are deterministic as they are; on GPU `deterministic` (config
    `train.deterministic`) asks XLA for deterministic kernels, the condition for bitwise
    exact resume there.
    """
    if platform == "cpu":
        if "ynn_fusion_type" in os.environ.get("XLA_FLAGS", ""):
            return None
        return dict(CPU_COMPILER_OPTIONS)
    if platform in ("gpu", "cuda", "rocm") and deterministic:
        return dict(DETERMINISTIC_GPU_COMPILER_OPTIONS)
    return None
