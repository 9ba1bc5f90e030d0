"""DTVNet on the built-in moving-clouds scene.

Data: `tlgen prepare synthetic:clouds --flow --size 32 --out data/clouds32` (tiny) or
`--size 128 --out data/clouds128` (base). Variants:
  tiny: 32x32, 8 frames, narrow widths (CPU, tests, colab).
  base: the paper's 128x128, 32 frames (generator 8.34 M parameters).
"""

import ml_collections

from tlgen.configs import common


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
    if arg not in ("tiny", "base"):
        raise ValueError(f"unknown variant {arg!r}; use tiny or base")
    tiny = arg == "tiny"
    cfg = common.base("dtvnet", arg)
    cfg.total_steps = 2000 if tiny else 200_000
    cfg.data = ml_collections.ConfigDict(dict(
        dir="data/clouds32" if tiny else "data/clouds128",
        image_size=(32, 32) if tiny else (128, 128),   # (height, width); N for N x N
        num_frames=8 if tiny else 32,     # generated frames; clips hold num_frames + 1
        stride=1,
        batch_size=8 if tiny else 8,
        augment=False,
        worker_count=0,
    ))
    cfg.model = ml_collections.ConfigDict(dict(
        base_width=16 if tiny else 64,          # encoder; content stream 2x, motion stream 1x
        decoder_width=24 if tiny else 96,
        motion_dim=64 if tiny else 512,
        content_blocks=2 if tiny else 9,
        motion_blocks=2 if tiny else 6,
        mapping_layers=1 if tiny else 3,
        style_layers=1 if tiny else 2,
        encoder_width=8 if tiny else 32,        # flow encoder (3-D convs)
        encoder_max_width=64 if tiny else 512,
        disc_width=8 if tiny else 32,           # video discriminator (3-D convs)
        disc_max_width=64 if tiny else 512,
    ))
    cfg.loss = ml_collections.ConfigDict(dict(
        frame_l1_weight=100.0, flow_l1_weight=1.0, adv_weight=1.0, gp_weight=10.0, critic_steps=1))
    cfg.optim = ml_collections.ConfigDict(dict(
        # the public schedule: constant for the first half, then linear decay to 0; eps 1e-7
        g=common.optimizer(3e-4, eps=1e-7, schedule="linear", hold=0.5),   # generator + flow encoder
        d=common.optimizer(3e-5, eps=1e-7, schedule="linear", hold=0.5),
    ))
    # Dataset-level metrics during training (logged as eval/fid, eval/fvd, eval/lpips; usable
    # by train.keep_best): the weights files of their networks (`tlgen convert-weights`).
    cfg.eval = ml_collections.ConfigDict(dict(inception="", i3d="", lpips=""))
    cfg.train.update(dict(log_every=10 if tiny else 100, ckpt_every=500 if tiny else 5000,
                          eval_every=500 if tiny else 5000, sample_every=500 if tiny else 5000,
                          eval_batches=2 if tiny else 8))
    return cfg
