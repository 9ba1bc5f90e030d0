"""Time Flies (a still image animated by a reference time-lapse, class by class) on a prepared
dataset with region masks.

Data: `tlgen prepare synthetic:city --size 64 --levels 1 --out data/city64` (the synthetic
street carries masks: 0 ground, 1 sky, 2 buildings, 3 road, 4 trees) or your footage with
`--masks DIR`. Weights: VGG-19's ImageNet weights from a file you supply (tlgen downloads
none): `tlgen convert-weights --kind vgg19 vgg19-dcbb9e9d.pth --out vgg19.safetensors`, or a
torchvision/timm safetensors file as it is, then `--config.model.vgg19=vgg19.safetensors`.
Variants:
  tiny: 64x64, batch 2 (CPU minutes, tests, Colab);
  base: the paper's 256x256, batch 1.
Ablations: `--config.model.noise=False` (classwise AdaIN at relu1_1 too, no noise),
`--config.model.classwise=False` (one region: the statistics of the whole frame).
"""

import ml_collections

from tlgen.configs import common


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
    if arg not in ("tiny", "base"):
        raise ValueError(f"unknown variant {arg!r}; use tiny or base")
    tiny = arg == "tiny"
    cfg = common.base("time_flies", arg)
    cfg.total_steps = 400 if tiny else 200_000
    cfg.data = ml_collections.ConfigDict(dict(
        dir="data/city64" if tiny else "data/webcam256",
        image_size=(64, 64) if tiny else (256, 256),   # (height, width); N for N x N
        stride=1,                 # consecutive reference frames
        batch_size=2 if tiny else 1,
        augment=False,
        worker_count=0 if tiny else 4,
    ))
    cfg.model = ml_collections.ConfigDict(dict(
        vgg19="",                 # the VGG-19 weights file (.safetensors / .npz), required
        num_classes=5,            # label maps' classes (synthetic:city has 5)
        classwise=True,           # statistics per class (False: one region, plain AdaIN)
        noise=True,               # classwise NoiseAdaIN at relu1_1 (False: classwise AdaIN)
        sigma_z=0.5,              # std of the N(1, sigma_z^2) noise (the paper's 0.5)
        noise_blur=1.0,           # std (pixels, frames) of the 3x3x3 Gaussian smoothing it
        d_width=32 if tiny else 64,
        d_max_width=128 if tiny else 512,
    ))
    cfg.loss = ml_collections.ConfigDict(dict(
        perceptual=0.1, content=0.05, style=10.0, flow=100.0, cycle=0.05,   # the paper's lambda_1..5
        alpha_decay=0.999 if tiny else 0.9999,   # content's alpha = alpha_decay ** step
    ))
    cfg.optim = ml_collections.ConfigDict(dict(
        g=common.optimizer(1e-4),                                            # decoder: Adam 1e-4
        # E_GV: the paper's SGD, its gradient clipped at global norm 1 (unclipped, the six losses'
        # gradients at VGG features' scale blew E_GV's weights up to 1e9 within 30 steps)
        e=common.optimizer(1e-4, name="sgd", momentum=0.9, weight_decay=1e-4, grad_clip=1.0),
        d=common.optimizer(1e-4),
    ))
    cfg.train.update(dict(log_every=20 if tiny else 100, ckpt_every=200 if tiny else 5000,
                          eval_every=200 if tiny else 5000, sample_every=200 if tiny else 5000,
                          eval_batches=2 if tiny else 8))
    return cfg
