"""Config parts shared by every family: trainer, mesh and optimizer sections."""

import ml_collections


def trainer(**overrides) -> ml_collections.ConfigDict:
    """Loop, logging, checkpointing and numerics settings (`config.train`).

    Frequencies count steps (0 = never); the last step always logs and saves, and evaluates
    and samples when those are on. keep_best: also keep the best checkpoint by an eval metric ("loss" = lowest,
    "max:psnr" = highest; every evaluation is saved as a candidate: a checkpoint per evaluation). nonfinite: "skip" drops a
    step whose loss or gradients are not finite (counted as `skipped`, left out of the logged
    means), "stop" ends training with an error (exit code 3).
    deterministic: on GPU, deterministic kernels (needed there for a bitwise-exact resume;
    CPU and TPU programs are deterministic anyway). reshard_data: let a run resume on another
    number of processes (a smaller or larger slice): the state is restored exactly, the data
    are read from the start of the new processes' order.
    """
    cfg = ml_collections.ConfigDict(dict(
        log_every=10,
        ckpt_every=500,
        keep_checkpoints=3,
        keep_best="",
        eval_every=500,
        eval_batches=4,
        sample_every=1000,
        grad_accum=1,
        nonfinite="skip",
        ema_decay=0.0,
        eval_split="validation",
        deterministic=False,
        reshard_data=False,
    ))
    cfg.update(overrides)
    return cfg


def mesh(**overrides) -> ml_collections.ConfigDict:
    """Device mesh (`config.mesh`): sizes of the data/fsdp/model axes, -1 = the rest.

    axis_types: "auto" (the compiler propagates shardings; any model code) or "explicit".
    fsdp_min_bytes: parameters at least this large are split over the fsdp axis.
    """
    cfg = ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1, axis_types="auto",
                                         fsdp_min_bytes=2 ** 20))
    cfg.update(overrides)
    return cfg


def optimizer(lr: float, **overrides) -> ml_collections.ConfigDict:
    """Adam-family optimizer with a schedule (`config.optim` or one of its entries)."""
    cfg = ml_collections.ConfigDict(dict(
        name="adam", lr=lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0,
        schedule="constant", warmup_steps=0, hold=0.0, grad_clip=0.0))
    cfg.update(overrides)
    return cfg


def base(family: str, variant: str) -> ml_collections.ConfigDict:
    """The top-level fields every family's config has; the family fills data/model/optim."""
    cfg = ml_collections.ConfigDict()
    cfg.family = family
    cfg.variant = variant
    cfg.seed = 0
    cfg.total_steps = 1000
    cfg.dtype = "float32"
    cfg.train = trainer()
    cfg.mesh = mesh()
    return cfg
