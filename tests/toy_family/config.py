"""The toy family's config: `--config tests/toy_family/config.py:tiny`."""

import ml_collections

from tlgen.configs import common


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
    config = common.base("tests.toy_family", arg)
    config.total_steps = 6
    config.data = ml_collections.ConfigDict(dict(dir="", batch_size=8, num_videos=32, frames=8))
    config.model = ml_collections.ConfigDict(dict(features=""))   # the frozen network's weights file
    config.optim = common.optimizer(1e-2)
    config.train.update(log_every=1, ckpt_every=3, eval_every=3, eval_batches=2, sample_every=0,
                        keep_checkpoints=1, keep_best="min:feature_distance")
    config.mesh.update(fsdp=2, fsdp_min_bytes=0)
    return config
