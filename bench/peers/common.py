"""Shared parts of the PyTorch peers: device setup, synchronization, MS-SSIM, parameter counts."""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def pick_device(threads: int | None = None) -> torch.device:
    """CUDA when present, else the CPU with `threads` intra-op threads (default: all)."""
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        return torch.device("cuda")
    if threads:
        torch.set_num_threads(threads)
    return torch.device("cpu")


def autocast(device: torch.device, dtype: str):
    """bf16 autocast when the config's compute dtype is bfloat16, else nothing."""
    if dtype == "bfloat16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_parameters(*modules: torch.nn.Module) -> int:
    """Trainable parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for m in modules for p in m.parameters())


def load_tree(module: torch.nn.Module, params, torch_layout: bool = False) -> None:
    """Copies a tlgen parameter tree into a peer module by path ("a.b.kernel" -> parameter
    "a.b.kernel"). With `torch_layout`, kernels go to PyTorch's layers: "kernel" (kh, kw, in,
    out) becomes "weight" (out, in, kh, kw)."""
    def walk(tree, prefix):
        for name, value in tree.items():
            path = f"{prefix}.{name}" if prefix else name
            if isinstance(value, dict):
                walk(value, path)
                continue
            array = np.array(value)
            if torch_layout and name == "kernel":
                array = array.transpose((array.ndim - 1, array.ndim - 2) + tuple(range(array.ndim - 2)))
                path = path[:-len("kernel")] + "weight"
            module.get_parameter(path).data.copy_(torch.from_numpy(np.ascontiguousarray(array)))
    walk(params, "")


def to_nchw(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (..., H, W, C) numpy -> float (..., C, H, W) in [-1, 1], channels_last when 4-D."""
    x = torch.from_numpy(np.ascontiguousarray(array)).to(device)
    x = x.float().div_(127.5).sub_(1.0).movedim(-1, -3)
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x.contiguous()


def _gaussian_window(device, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return (g / g.sum()).float().to(device)


def _blur(x: torch.Tensor) -> torch.Tensor:
    """Separable 11-tap Gaussian over H, W of (N, C, H, W), 'valid' borders, per channel."""
    c = x.shape[1]
    g = _gaussian_window(x.device)
    x = F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)


def ms_ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """MS-SSIM of images (N, C, H, W) in [0, 1] -> (N,), the same definition as tlgen's
    (fewer scales with renormalized weights when the short side is under 161 px)."""
    size, scales = min(a.shape[-2:]), len(MS_SSIM_WEIGHTS)
    while scales > 1 and size <= 10 * 2 ** (scales - 1):
        scales -= 1
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], device=a.device)
    weights = weights / weights.sum()
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    a, b = a.float(), b.float()
    terms = []
    for s in range(scales):
        mu_a, mu_b = _blur(a), _blur(b)
        var_a = _blur(a * a) - mu_a ** 2
        var_b = _blur(b * b) - mu_b ** 2
        cov = _blur(a * b) - mu_a * mu_b
        cs = (2 * cov + c2) / (var_a + var_b + c2)
        if s == scales - 1:
            lum = (2 * mu_a * mu_b + c1) / (mu_a ** 2 + mu_b ** 2 + c1)
            terms.append((lum * cs).mean((2, 3)))
        else:
            terms.append(cs.mean((2, 3)))
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    terms = torch.stack(terms)                                   # (S, N, C)
    positive = terms > 0
    powered = torch.where(positive, torch.where(positive, terms, 1.0) ** weights[:, None, None], 0.0)
    return powered.prod(0).mean(-1)


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, alpha: float = 0.84
                        ) -> torch.Tensor:
    """alpha (1 - MS-SSIM) + (1 - alpha) L1 per image, inputs in [-1, 1] (N, C, H, W)."""
    p, t = (pred.float() + 1) * 0.5, (target.float() + 1) * 0.5
    l1 = (p - t).abs().mean((1, 2, 3))
    if alpha == 0:
        return l1
    return alpha * (1 - ms_ssim(p, t)) + (1 - alpha) * l1


class AdversarialPeer:
    """The GAN peers' training step, `tlgen.train.gan.adversarial_update`'s: a discriminator
    step (logistic loss), lazy R1 every `every` steps, the generator step through the same
    fake clips, G-EMA. Subclasses call `start`, set `gamma` and define critic(clips) and fake()."""

    def start(self, config, batch: dict, device, g: torch.nn.Module, d: torch.nn.Module, compile: bool):
        """The shared state: the batch's clips (B, T, C, H, W) in [-1, 1], the networks, G-EMA,
        Adam for each (the discriminator's rescaled for lazy R1), the EMA schedule."""
        import copy

        o = config.optim
        self.device, self.dtype = device, str(config.dtype)
        frames = torch.from_numpy(batch["frames"]).to(device)
        self.real = frames.float().div(127.5).sub(1.0).permute(0, 1, 4, 2, 3).contiguous()
        self.g, self.d = g.to(device), d.to(device)
        self.g_ema = copy.deepcopy(self.g).requires_grad_(False)
        self.g_fwd = torch.compile(self.g) if compile else self.g
        self.every = every = int(config.loss.r1_every)
        c = every / (every + 1) if every > 1 else 1.0
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=o.g.lr, betas=(o.g.b1, o.g.b2), eps=o.g.eps)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=o.d.lr * c, betas=(o.d.b1 ** c, o.d.b2 ** c),
                                      eps=o.d.eps)
        self.batch = self.real.shape[0]
        self.ema_nimg, self.rampup = float(config.ema.kimg) * 1000, float(config.ema.rampup)
        self.steps = 0
        self.parameters = {"g": count_parameters(self.g), "d": count_parameters(self.d)}

    def step(self):
        with autocast(self.device, self.dtype):
            fake = self.fake()
            d_loss = F.softplus(-self.critic(self.real)).mean() + F.softplus(self.critic(fake.detach())).mean()
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        if self.steps % self.every == 0:
            real = self.real.detach().requires_grad_(True)
            grads, = torch.autograd.grad(self.critic(real).sum(), real, create_graph=True)
            r1 = grads.square().flatten(1).sum(1).mean() * (self.gamma / 2) * self.every
            self.opt_d.zero_grad(set_to_none=True)
            r1.backward()
            self.opt_d.step()
        with autocast(self.device, self.dtype):
            g_loss = F.softplus(-self.critic(fake)).mean()
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        b = self.batch
        nimg = min(self.ema_nimg, self.steps * b * self.rampup) if self.rampup else self.ema_nimg
        beta = 0.5 ** (b / max(nimg, 1e-8))
        with torch.no_grad():
            for pe, p in zip(self.g_ema.parameters(), self.g.parameters()):
                pe.copy_(p.lerp(pe, beta))
        self.steps += 1
