"""Long videos of dynamic scenes, super-resolution stage, on the built-in synthetic city (or any
prepared video dataset: set --config.data.dir and prepare it at the variant's size). It
trains on the high-resolution frames alone: the low-resolution frames it is conditioned on
are those frames reduced `scale` times by area averaging (what `tlgen prepare --size` does
when it shrinks frames), so the two stages need not share a dataset.

  tlgen prepare synthetic:city --size 144x256 --out data/city144x256
  tlgen train --config configs/long_video_sr_city.py:tiny --workdir runs/lv_sr
  tlgen generate --workdir runs/lv --superres runs/lv_sr --out week.mp4 --frames 504

Variants (both 36x64 -> 144x256, paired with configs/long_video_city.py):
  tiny: narrow networks, 6 layers (CPU minutes, tests);
  base: the public super-resolution model (StyleGAN3-T, 14 layers + ToRGB, +-4 context
        frames, batch 32): generator 27,169,940 and discriminator 23,997,825 parameters,
        the public model's counts.
"""

import ml_collections

from tlgen.configs import common


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
    if arg not in ("tiny", "base"):
        raise ValueError(f"unknown variant {arg!r}; use tiny or base")
    tiny = arg == "tiny"
    batch = 2 if tiny else 32
    cfg = common.base("long_video_sr", arg)
    cfg.total_steps = 2000 if tiny else 275_000
    cfg.data = ml_collections.ConfigDict(dict(
        dir="data/city144x256",
        num_frames=4,                     # high-resolution frames per training sample
        stride=1,
        batch_size=batch,
        augment=False,                    # random horizontal flips of whole clips
        worker_count=0 if tiny else 4,
    ))
    cfg.model = ml_collections.ConfigDict(dict(
        size=(144, 256),                  # (height, width) of the high-resolution frames
        scale=4,                          # low-resolution frames are size / scale
        context=4,                        # low-resolution frames on each side of a frame's own
        z_dim=64 if tiny else 512,
        w_dim=64 if tiny else 512,
        mapping_layers=2,
        channel_base=1024 if tiny else 32768,   # layer features min(channel_base / 2 / cutoff, max)
        channel_max=32 if tiny else 512,
        num_layers=6 if tiny else 14,     # synthesis layers before ToRGB
        margin=10,                        # pixels per side beyond the frame in the early layers
        d_channel_base=1024 if tiny else 16384,
    ))
    cfg.loss = ml_collections.ConfigDict(dict(
        r1_gamma=1.0,
        r1_every=16,
        augment="ada",                    # "ada" (adaptive p), "diffaugment" (p = 1) or "none"
        # ADA's "bgc" operations as the public trainer (tiny: DiffAugment's; bgc doubles its CPU step)
        augment_ops="diffaugment" if tiny else "bgc",
        ada_target=0.6,
        ada_kimg=256.0,                   # ADA: thousands of images for p to move by 1
        ada_max_p=0.5,                    # p's cap, as the public super-resolution trainer's
        lowres_prob=0.1,                  # share of samples whose low-res frames the D sees
    ))
    # G EMA: a half-life of 4,620 steps (beta 0.99985; tiny: 100 steps), ramped up over the
    # first 25,000 steps.
    cfg.ema = ml_collections.ConfigDict(dict(kimg=batch * (0.1 if tiny else 4.6206), rampup=0.185))
    cfg.optim = ml_collections.ConfigDict(dict(
        g=common.optimizer(0.003, b1=0.0, b2=0.99),
        d=common.optimizer(0.003, b1=0.0, b2=0.99),
    ))
    cfg.train.update(dict(log_every=20 if tiny else 100, ckpt_every=500 if tiny else 5000,
                          eval_every=500 if tiny else 5000, sample_every=500 if tiny else 5000,
                          eval_batches=4 if tiny else 16))
    return cfg
