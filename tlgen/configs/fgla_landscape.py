"""FGLA (fine-grained landscape animation) on a prepared dataset with flow and region masks.

Data: `tlgen prepare synthetic:water synthetic:clouds --flow --size 32 --levels 1 --out
data/water32` (tiny; the synthetic scenes carry true flow and masks: 0 ground, 1 sky,
2 water) or your footage with `--flow --masks DIR` (or `--masks auto`).
Variants:
  tiny: 32x32, narrow encoder and U-Net (CPU minutes, tests, Colab).
  base: the paper's 256x256 and 6 region groups (the paper encodes the flow at 128x128;
        tlgen's encoder reads it at the frames' size, its first stride-2 layer halving it).
The "AL" variant of the paper's ablation (one global latent, no per-region encoding):
  --config.model.per_region=False
"""

import ml_collections

from tlgen.configs import common

# The synthetic scenes' classes (0 ground, 1 sky, 2 water); the paper's 6 groups for base.
SYNTHETIC_REGIONS = ("ground", "sky", "water")
PAPER_REGIONS = ("other", "sky", "tree", "grass", "water", "waterfall")


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
    if arg not in ("tiny", "base"):
        raise ValueError(f"unknown variant {arg!r}; use tiny or base")
    tiny = arg == "tiny"
    cfg = common.base("fgla", arg)
    cfg.total_steps = 1500 if tiny else 300_000
    cfg.data = ml_collections.ConfigDict(dict(
        dir="data/water32" if tiny else "data/landscape256",
        image_size=(32, 32) if tiny else (256, 256),   # (height, width); N for N x N
        stride=4,                 # pairs of frames 4 apart (the paper samples one in four)
        batch_size=16 if tiny else 16,
        augment=False,
        worker_count=0 if tiny else 4,
    ))
    cfg.model = ml_collections.ConfigDict(dict(
        regions=SYNTHETIC_REGIONS if tiny else PAPER_REGIONS,   # class k of the masks is regions[k]
        latent_dim=2,             # per region (the paper's 6 x 2 latent matrix)
        per_region=True,          # False: one global latent (the AL / "w/o LM" variant)
        encoder_widths=(16, 32, 32) if tiny else (32, 64, 128, 256),
        generator_widths=(16, 32, 64) if tiny else (32, 64, 128, 256, 512),
        flow_scale=4.0,           # encoder input: flow in pixels / flow_scale
        flow_divisor=2.0 if tiny else 32.0,   # generator output: at most 1/divisor half-images per step
        unmasked_region="sky",    # the region of an input image given without --mask
    ))
    cfg.loss = ml_collections.ConfigDict(dict(
        frame_weight=1.0, flow_weight=0.5, tv_weight=5.0, tv_sigma=0.1))   # paper: alpha, beta, sigma
    cfg.optim = common.optimizer(1e-3 if tiny else 1e-4)   # paper: Adam 1e-4
    cfg.train.update(dict(log_every=20 if tiny else 100, ckpt_every=500 if tiny else 5000,
                          eval_every=500 if tiny else 5000, sample_every=500 if tiny else 5000,
                          eval_batches=2 if tiny else 8))
    return cfg
