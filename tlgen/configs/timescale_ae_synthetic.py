"""Timescale autoencoder on a prepared synthetic scene (`tlgen prepare synthetic:city`).

Variants: tiny (64², CPU minutes), base (128²), large (256²); any (height, width) that the
encoder can halve, e.g. --config.model.image_size="(96, 160)" for `prepare --size 96x160`.
  tlgen prepare synthetic:city --out data/city
  tlgen train --config configs/timescale_ae_synthetic.py:tiny --config.data.dir=data/city --workdir runs/tae
The paper's recipe, for comparison (PAPER_RECIPE; its six levels: `prepare --levels 6`):
  --config.model.background=False --config.loss.target=pyramid --config.loss.gap_band="(0.5, 1.0)"
  --config.loss.period=0 --config.loss.one_level_per_anchor=False
"""

import ml_collections

from tlgen.configs import common

VARIANTS = {
    #         image  widths                     blocks bins bin_ch batch steps  lr
    "tiny": (64, (16, 32, 64, 64), 1, 6, 8, 16, 1500, 2e-3),
    "base": (128, (32, 64, 128, 256, 256), 2, 6, 16, 64, 50_000, 5e-4),
    "large": (256, (32, 64, 128, 256, 256, 256), 2, 6, 32, 128, 200_000, 3e-4),
}

# The paper's decoder, targets and positives: every pixel from the bins, each level
# reconstructing its pyramid level, positives over the fast half of the band, no day period.
PAPER_RECIPE = ("model.background=False", "loss.target=pyramid", "loss.gap_band=(0.5, 1.0)",
                "loss.period=0", "loss.one_level_per_anchor=False")


def model(side, widths, blocks, num_bins, bin_channels) -> ml_collections.ConfigDict:
    """`config.model`: the architecture of tlgen.models.timescale_ae. `image_size`: (height,
    width) of the prepared frames (`--config.model.image_size=N` is N x N). `background`: the
    decoder relights the video's median image (False: the paper's decoder, every pixel
    from the bins). `additive`: each bin decoded alone and the contributions summed, so
    masking drops exactly a bin's share (M decoder passes per frame)."""
    return ml_collections.ConfigDict(dict(image_size=(side, side), widths=tuple(widths),
                                          blocks=blocks, num_bins=num_bins,
                                          bin_channels=bin_channels, background=True,
                                          additive=False))


def loss(period: float = 86400.0) -> ml_collections.ConfigDict:
    """`config.loss`: weights and settings of the two terms (see tlgen.families.timescale_ae.training).

    With a `period` (seconds; 0 = none) the slow levels whose cutoffs lie within it (hours,
    while a day cycle changes within hours) take positives one period apart (same time of
    day); the others take gaps at the fast end of their band (tlgen.families.timescale_ae.
    levels). The reconstruction target is the frame itself. On the city scene (H100, 4000
    steps, six levels) this beat the temporal pyramid's band fidelity at every cutoff, where
    the paper's recipe (pyramid targets, gaps of 0.5-1 cutoff) stayed below it.
    """
    return ml_collections.ConfigDict(dict(
        temperature=0.1,          # NT-Xent temperature tau
        alpha=0.84,               # MS-SSIM share of the reconstruction term
        contrastive_weight=1.0,
        recon_weight=1.0,
        level_weights=(),         # lambda_k for k = 1..M kept bins; () = proportional to k
        gap_band=(0.05, 0.2),     # positive gaps for level k, as fractions of its cutoff
        period=period,            # seconds of a cycle (a day): same-phase positives; 0 = none
        period_positive="apart",  # that positive: one period "apart", or the nearest "look"
        period_target=True,       # levels beyond the period reconstruct its robust mean
        gap_bands=(),             # explicit (lo, hi) seconds per level k = 1..M-1 ((0, 0): derived)
        target="frame",           # reconstruction target: "frame" or "pyramid" (paper)
        one_level_per_anchor=True,  # each anchor: one gap band + one level (cheaper step)
    ))


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
    if arg not in VARIANTS:
        raise ValueError(f"unknown variant {arg!r}; choose from {', '.join(VARIANTS)}")
    size, widths, blocks, bins, bin_ch, batch, steps, lr = VARIANTS[arg]
    config = common.base("timescale_ae", arg)
    config.total_steps = steps
    config.data = ml_collections.ConfigDict(dict(dir="", batch_size=batch, augment=False,
                                                 worker_count=0 if arg == "tiny" else 4))
    config.model = model(size, widths, blocks, bins, bin_ch)
    config.loss = loss()
    config.optim = common.optimizer(lr, schedule="cosine", warmup_steps=min(200, steps // 10),
                                    grad_clip=1.0)
    config.train.update(log_every=50, ckpt_every=500, eval_every=500, eval_batches=2,
                        sample_every=500)
    if arg != "tiny":
        config.loss.one_level_per_anchor = False
        config.dtype = "bfloat16"
        config.train.update(log_every=100, ckpt_every=5000, eval_every=5000, sample_every=5000)
    return config
