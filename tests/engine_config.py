"""Configs of the engine test families: `tests/engine_config.py:regression` or `:gan`."""

import ml_collections

from tlgen.configs import common


def get_config(arg: str = "regression") -> ml_collections.ConfigDict:
    family = {"regression": "tests.engine_family", "gan": "tests.engine_gan_family"}[arg]
    config = common.base(family, arg)
    config.total_steps = 12
    config.data = ml_collections.ConfigDict(dict(
        dir="", batch_size=16, num_examples=96, delay=0.0, worker_count=0))
    config.model = ml_collections.ConfigDict(dict(width=16, nan_step=-1, critic_steps=2,
                                                  r1_every=2, r1_gamma=0.1))
    config.optim = common.optimizer(3e-3)
    config.train.update(log_every=1, ckpt_every=4, eval_every=6, eval_batches=2,
                        sample_every=0, keep_checkpoints=2)
    config.mesh.fsdp_min_bytes = 0   # shard even tiny parameters over fsdp
    return config
