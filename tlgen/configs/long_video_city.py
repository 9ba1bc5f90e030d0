"""Long videos of dynamic scenes, low-resolution stage, on the built-in synthetic city (day and
night, weather, parked cars; or any prepared video dataset: set --config.data.dir and
prepare it at the variant's size).

  tlgen prepare synthetic:city --size 36x64 --out data/city36x64
  tlgen train --config configs/long_video_city.py:tiny --workdir runs/lv
  tlgen generate --workdir runs/lv --out week.mp4 --frames 504

Variants:
  tiny: 32-frame clips at 36x64, narrow networks (CPU minutes, tests);
  base: 128-frame clips at 36x64, the public low-resolution model (latent 1024 = 8 noise
        channels x 128 filters, cutoff periods 125..5000 frames, 5 temporal upsamplings,
        batch 64): generator 83,215,939 and discriminator 46,424,609 parameters, the public
        model's counts.
"""

import ml_collections

from tlgen.configs import common


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
    if arg not in ("tiny", "base"):
        raise ValueError(f"unknown variant {arg!r}; use tiny or base")
    tiny = arg == "tiny"
    batch = 2 if tiny else 64
    cfg = common.base("long_video", arg)
    cfg.total_steps = 2000 if tiny else 100_000
    cfg.data = ml_collections.ConfigDict(dict(
        dir="data/city36x64",
        num_frames=32 if tiny else 128,   # frames per training clip (the discriminator's length)
        stride=1,                         # records between a clip's frames
        batch_size=batch,
        augment=False,                    # random horizontal flips of whole clips
        worker_count=0 if tiny else 4,
    ))
    cfg.model = ml_collections.ConfigDict(dict(
        size=(36, 64),                    # (height, width) of the frames
        input_channels=64 if tiny else 512,
        temporal_channels=(64, 64, 64, 32) if tiny else (512, 512, 512, 512, 256, 256),
        temporal_time_up=(1, 1, 1, 0) if tiny else (1, 1, 1, 1, 1, 0),
        temporal_space_up=(0, 1, 0, 1) if tiny else (0, 1, 0, 1, 0, 0),
        spatial_channels=(32, 16) if tiny else (128, 128, 64, 64),
        spatial_space_up=(1, 1) if tiny else (1, 0, 1, 0),
        kernel_time=3,                    # temporal taps of the temporal blocks' convs
        latent_dim=64 if tiny else 1024,  # w(t) = noise_channels x filters
        filters=8 if tiny else 128,       # low-pass filters of the temporal latents
        min_period=8.0 if tiny else 125.0,     # their cutoff periods (frames), log-spaced
        max_period=512.0 if tiny else 5000.0,
        mapping_layers=2,
        padding=8,                        # margin frames per side added at every temporal level
        d_input_channels=16 if tiny else 32,
        d_channels=(32, 64, 64, 128) if tiny else (64, 128, 256, 512),
        d_kernel_time=5,
        d_head_channels=256 if tiny else 1024,
        d_head_convs=2 if tiny else 4,
    ))
    cfg.loss = ml_collections.ConfigDict(dict(
        r1_gamma=1.0,
        r1_every=16,                      # lazy R1
        augment="diffaugment",            # "diffaugment" or "none"
        time_rescale=True,                # D sees clips resampled in time by 2^U(-1, 1)
    ))
    # G EMA: a half-life of 4,620 steps (beta 0.99985; tiny: 100 steps), ramped up over the
    # first 25,000 steps.
    cfg.ema = ml_collections.ConfigDict(dict(kimg=batch * (0.1 if tiny else 4.6206), rampup=0.185))
    cfg.optim = ml_collections.ConfigDict(dict(
        g=common.optimizer(0.003, b1=0.0, b2=0.99),
        d=common.optimizer(0.002, b1=0.0, b2=0.99),
    ))
    cfg.train.update(dict(log_every=20 if tiny else 100, ckpt_every=500 if tiny else 5000,
                          eval_every=500 if tiny else 5000, sample_every=500 if tiny else 5000,
                          eval_batches=4 if tiny else 16))
    return cfg
