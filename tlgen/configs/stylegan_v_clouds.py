"""StyleGAN-V on the built-in moving-clouds scene (or any prepared video dataset: set
--config.data.dir and prepare it at the variant's resolution).

  tlgen prepare synthetic:clouds --size 32 --out data/clouds32          # tiny
  tlgen train --config configs/stylegan_v_clouds.py:tiny --workdir runs/sgv
  tlgen generate --workdir runs/sgv --out long.mp4 --frames 1000

Variants:
  tiny: 32x32, narrow networks (CPU minutes, tests, colab);
  base: 256x256, the public StyleGAN-V model (configs auto at 256², fmaps 0.5, 2 mapping
        layers, motion codes 16 frames apart, periods 16..1024, batch 64): generator
        32,105,941 and discriminator 25,333,568 parameters, the public model's counts.
Frames of another aspect: a power-of-two height and a width that is a multiple of a quarter
of it, e.g. 128x224 (about 16:9; a 4x7 constant input):
  tlgen prepare cam.mp4 --size 128x224 --out data/cam128x224
  tlgen train --config configs/stylegan_v_clouds.py:base --config.model.resolution="(128, 224)" ...
"""

import ml_collections

from tlgen.configs import common


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
    if arg not in ("tiny", "base"):
        raise ValueError(f"unknown variant {arg!r}; use tiny or base")
    tiny = arg == "tiny"
    res = 32 if tiny else 256
    batch = 8 if tiny else 64
    cfg = common.base("stylegan_v", arg)
    cfg.total_steps = 600 if tiny else 400_000        # base: 25,000 kimg at batch 64
    cfg.data = ml_collections.ConfigDict(dict(
        dir="data/clouds32" if tiny else "data/clouds256",
        num_frames=3,                    # frames per sparse training clip
        spans=(2, 4, 8, 16, 32),         # first-to-last distances (frames) to draw from
        batch_size=batch,
        augment=False,                   # random horizontal flips of whole clips
        worker_count=0 if tiny else 4,
    ))
    cfg.model = ml_collections.ConfigDict(dict(
        resolution=(res, res),           # (height, width): a power-of-two height, the width a
                                         # multiple of a quarter of it (N for N x N)
        z_dim=64 if tiny else 512,       # content code z, motion codes and w
        w_dim=64 if tiny else 512,
        mapping_layers=2,
        channel_base=2048 if tiny else 16384,       # generator feature maps: min(base / res, max)
        d_channel_base=2048 if tiny else 16384,
        channel_max=128 if tiny else 512,
        time_dim=32 if tiny else 256,    # frequencies of the positional embedding (2x as features)
        motion_kernel=11,                # conv1d kernel over motion codes
        min_period=8.0 if tiny else 16.0,     # frames between motion codes = shortest period
        max_period=256.0 if tiny else 1024.0,
        max_frames=256 if tiny else 1024,     # fake clips start in [0, max_frames); D's time table
        fused_modconv=False,             # per-sample weights (grouped conv) or scaled activations
        concat_res=8 if tiny else 16,    # D: frames' features concatenated at this resolution
        frames_div=2,
        mbstd_group=4,
        time_conditioning=True,          # False: D blind to time gaps (the paper's ablation)
    ))
    cfg.loss = ml_collections.ConfigDict(dict(
        r1_gamma=-1.0,                   # < 0: 0.0002 * height * width / batch
        r1_every=16,                     # lazy R1
        augment="diffaugment",           # "diffaugment" (p = 1), "ada" (adaptive p) or "none"
        augment_ops="diffaugment",       # DiffAugment's, or "bgc": ADA's (the public default)
        ada_target=0.6,
        ada_kimg=100.0,                  # ADA: thousands of images for p to move by 1 (the public launcher's
                                         # for runs not resumed)
    ))
    cfg.ema = ml_collections.ConfigDict(dict(kimg=batch * 10 / 32, rampup=0.05))
    cfg.optim = ml_collections.ConfigDict(dict(
        # G as the public code runs it: lr and beta2 rescaled for its lazy G regularization
        # every 4 steps (kept with path length off): 0.0025 * 4/5, 0.99 ** (4/5)
        g=common.optimizer(0.002, b1=0.0, b2=0.99 ** 0.8),
        d=common.optimizer(0.0025, b1=0.0, b2=0.99),
    ))
    cfg.train.update(dict(log_every=20 if tiny else 100, ckpt_every=200 if tiny else 5000,
                          eval_every=200 if tiny else 5000, sample_every=200 if tiny else 5000,
                          eval_batches=4 if tiny else 16))
    return cfg
