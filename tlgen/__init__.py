"""tlgen: time-lapse video generation in JAX/Flax.

The command line is `tlgen` (`tlgen --help`). From Python:
  * `tlgen.trained.load(workdir)`: a trained run's config and inference parameters;
  * `tlgen.models`: the networks, pure functions of parameter pytrees; `tlgen.losses`,
    `tlgen.metrics`: losses and measures (PSNR, SSIM, FID/KID/FVD, LPIPS, SWD);
  * `tlgen.families`: each model family's training and inference sides (`tlgen.family`:
    the interface a new family implements);
  * `tlgen.data`: prepared datasets and their Grain pipelines; `tlgen.configs`: the configs.
"""

__version__ = "0.1.0"
