"""Timescale autoencoder on your own footage (a dataset from `tlgen prepare VIDEO|FOLDER`).

Variants: tiny (64², CPU), base (128²), large (256²); prepare the data at that size:
  tlgen prepare cam.mp4 --size 128 --out data/cam
  tlgen train --config configs/timescale_ae_video.py:base --config.data.dir=data/cam --workdir runs/cam
or keep the camera's aspect, at a size the encoder halves (multiples of 8 at tiny, 16 at base,
32 at large), e.g. 16:9 at base:
  tlgen prepare cam.mp4 --size 144x256 --out data/cam169
  tlgen train --config configs/timescale_ae_video.py:base --config.data.dir=data/cam169 \
      --config.model.image_size="(144, 256)" --workdir runs/cam169
Captures spanning several days can add day-periodic positives for the slowest levels:
  --config.loss.gap_bands="((84600, 88200), (84600, 88200), (0, 0), (0, 0), (0, 0))"
"""

import ml_collections

from tlgen.configs import timescale_ae_synthetic as synthetic


def get_config(arg: str = "base") -> ml_collections.ConfigDict:
    config = synthetic.get_config(arg)
    config.loss = synthetic.loss(period=0.0)
    config.data.augment = arg != "tiny"
    return config
