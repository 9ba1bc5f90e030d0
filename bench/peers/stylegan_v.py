"""StyleGAN-V in PyTorch, layer for layer the same as `tlgen.models.stylegan_v`.

Parameters are held in tlgen's layouts and names (dense kernels (in, out), conv kernels
(kh, kw, in, out)), so tlgen's parameters copy in by path (`load`); activations are NCHW.
The training step is `tlgen.families.stylegan_v.training`'s: one generator forward, a
discriminator step (logistic loss, DiffAugment drawn per clip), lazy R1 every `r1_every`
steps, the generator step through the same forward, G-EMA.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.peers.common import AdversarialPeer, autocast, load_tree
from tlgen.models.stylegan_v import base_shape

SQRT2 = math.sqrt(2.0)
TIME_EMBED = 256          # learned embedding of a time difference (the public model's size)
FIR = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8.0


def lrelu(x):
    return F.leaky_relu(x, 0.2) * SQRT2


def fir_blur(x, pad, gain=1.0):
    """[1, 3, 3, 1] low-pass of (N, C, H, W) with zero padding `pad` = (before, after)."""
    c = x.shape[1]
    f = (FIR[:, None] * FIR[None, :] * gain).to(x)
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    return F.conv2d(x, f.expand(c, 1, 4, 4), groups=c)


def upsample2_fir(x, dims=(2, 3)):
    """Linear 2x upsampling with zero borders along `dims` (tlgen's upsample2_fir)."""
    for dim in dims:
        n = x.shape[dim]
        zero = torch.zeros_like(x.narrow(dim, 0, 1))
        lo, mid, hi = (torch.cat([zero, x, zero], dim).narrow(dim, k, n) for k in range(3))
        both = torch.stack([0.25 * lo + 0.75 * mid, 0.75 * mid + 0.25 * hi], dim=dim + 1)
        shape = list(x.shape)
        shape[dim] = 2 * n
        x = both.reshape(shape)
    return x


def downsample2(x):
    return fir_blur(x, (1, 1))[:, :, ::2, ::2]


class Dense(nn.Module):
    """tlgen's EqualizedDense: x @ (kernel * gain * lr / sqrt(in)) + bias * lr."""

    def __init__(self, fin, fout, gain=1.0, lr=1.0, bias=True, bias_init=0.0):
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(fin, fout) / lr)
        self.bias = nn.Parameter(torch.full((fout,), bias_init / lr)) if bias else None
        self.scale, self.lr = gain * lr / math.sqrt(fin), lr

    def forward(self, x):
        y = x @ (self.kernel * self.scale)
        return y if self.bias is None else y + self.bias * self.lr


class Conv(nn.Module):
    """tlgen's EqualizedConv (gain 1): SAME stride 1, or blur + stride 2 with `down`."""

    def __init__(self, cin, cout, k, bias=True, down=False):
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(k, k, cin, cout))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.k, self.down, self.scale = k, down, 1 / math.sqrt(k * k * cin)

    def forward(self, x):
        w = (self.kernel * self.scale).permute(3, 2, 0, 1)
        if not self.down:
            y = F.conv2d(x, w, padding=self.k // 2)
        elif self.k == 1:
            y = F.conv2d(downsample2(x), w)
        else:
            y = F.conv2d(fir_blur(x, (self.k // 2 + 1,) * 2), w, stride=2)
        return y if self.bias is None else y + self.bias[:, None, None]


def modulated_conv(x, kernel, styles, demodulate=True, up=False, fused=False):
    """tlgen.models.layers.modulated_conv in NCHW; kernel (k, k, Cin, Cout)."""
    b, cin = styles.shape
    k = kernel.shape[0]
    w = kernel.permute(3, 2, 0, 1)                                  # (Cout, Cin, k, k)
    d = None
    if demodulate:
        d = torch.rsqrt(styles.square() @ kernel.square().sum((0, 1)) + 1e-8)   # (B, Cout)
    if fused:
        ws = w[None] * styles[:, None, :, None, None]
        if d is not None:
            ws = ws * d[:, :, None, None, None]
        xg = x.reshape(1, b * cin, *x.shape[2:])
        if up:
            wt = ws.transpose(1, 2).flip(3, 4).reshape(b * cin, -1, k, k)
            y = F.conv_transpose2d(xg, wt, stride=2, groups=b)            # (2H + 1, 2W + 1)
        else:
            y = F.conv2d(xg, ws.reshape(-1, cin, k, k), padding=k // 2, groups=b)
        y = y.reshape(b, -1, *y.shape[2:])
    else:
        xs = x * styles[:, :, None, None]
        if up:
            y = F.conv_transpose2d(xs, w.transpose(0, 1).flip(2, 3), stride=2)
        else:
            y = F.conv2d(xs, w, padding=k // 2)
        if d is not None:
            y = y * d[:, :, None, None]
    return fir_blur(y, (1, 1), gain=4.0) if up else y


def minibatch_stddev(x, group_size):
    n, c, h, w = x.shape
    g = min(group_size, n)
    y = x.reshape(g, -1, 1, c, h, w)
    y = (y.var(0, unbiased=False) + 1e-8).sqrt().mean((2, 3, 4))          # (n/G, 1)
    y = y.repeat(g, 1)[:, :, None, None].expand(n, 1, h, w)
    return torch.cat([x, y], 1)


class Mapping(nn.Module):
    def __init__(self, fin, features, layers, embed=False):
        super().__init__()
        if embed:
            self.embed = Dense(fin, features)
        self.fcs = [f"fc{i}" for i in range(layers)]
        for i, name in enumerate(self.fcs):
            setattr(self, name, Dense(features if i or embed else fin, features, lr=0.01))

    def forward(self, x):
        if hasattr(self, "embed"):
            x = self.embed(x)
        x = x * torch.rsqrt(x.square().mean(-1, keepdim=True) + 1e-8)
        for name in self.fcs:
            x = lrelu(getattr(self, name)(x))
        return x


def linspaced_frequencies(num, min_period, max_period):
    periods = 2.0 ** np.linspace(np.log2(min_period), np.log2(max_period), num)
    return torch.from_numpy((2 * np.pi / periods)[::-1].astype(np.float32).copy())


class Motion(nn.Module):
    def __init__(self, z_dim, dim, kernel, min_period, max_period):
        super().__init__()
        for i in range(2):
            setattr(self, f"conv{i}_kernel", nn.Parameter(torch.randn(kernel, z_dim, z_dim) / 0.01))
            setattr(self, f"conv{i}_bias", nn.Parameter(torch.zeros(z_dim)))
        self.periods = Dense(z_dim, dim, bias=False)
        self.phases = Dense(z_dim, dim, bias=False)
        self.aligners = Dense(z_dim, 2 * dim, bias=False)
        self.register_buffer("freqs", linspaced_frequencies(dim, min_period, max_period))
        self.d, self.max_period, self.k = min_period, max_period, kernel

    def forward(self, codes, t, first=0):
        x = codes.transpose(1, 2)                                          # (B, C, L)
        for i in range(2):
            w = getattr(self, f"conv{i}_kernel")
            b = getattr(self, f"conv{i}_bias")
            x = F.leaky_relu(F.conv1d(x, w.permute(2, 1, 0) * (0.01 / math.sqrt(w.shape[1] * self.k)))
                             + b[:, None] * 0.01, 0.2)
        traj = x.transpose(1, 2)                                           # (B, L', C)
        left = torch.floor(t / self.d)
        idx = (left - first).long()
        gather = lambda i: torch.gather(traj, 1, i[..., None].expand(-1, -1, traj.shape[-1]))
        u_left, u_right = gather(idx), gather(idx + 1)
        t_left = left * self.d
        alpha = ((t - t_left) / self.d)[..., None]
        phase_scales = self.max_period / (2 * np.pi / self.freqs)
        periods = torch.tanh(self.periods(u_left)) + 1
        phases = self.phases(u_left) * phase_scales

        def embed(time):
            raw = self.freqs * periods * time[..., None] + phases
            return torch.cat([raw.sin(), raw.cos()], -1)
        remove = embed(t_left) * (1 - alpha) + embed(t_left + self.d) * alpha
        add = self.aligners(u_left) * (1 - alpha) + self.aligners(u_right) * alpha
        return embed(t) - remove + add


class SynthesisLayer(nn.Module):
    def __init__(self, w_dim, cin, cout, up=False, fused=False):
        super().__init__()
        self.affine = Dense(w_dim, cin, bias_init=1.0)
        self.kernel = nn.Parameter(torch.randn(3, 3, cin, cout))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.up, self.fused = up, fused

    def forward(self, x, w):
        y = modulated_conv(x, self.kernel, self.affine(w), up=self.up, fused=self.fused)
        return lrelu(y + self.bias[:, None, None])


class ToRGB(nn.Module):
    def __init__(self, w_dim, cin, fused=False):
        super().__init__()
        self.affine = Dense(w_dim, cin, bias_init=1.0)
        self.kernel = nn.Parameter(torch.randn(1, 1, cin, 3))
        self.bias = nn.Parameter(torch.zeros(3))
        self.fused = fused

    def forward(self, x, w):
        s = self.affine(w) / math.sqrt(self.kernel.shape[2])
        return modulated_conv(x, self.kernel, s, demodulate=False, fused=self.fused) + self.bias[:, None, None]


def channels(res, base, cap):
    return min(base // res, cap)


class Generator(nn.Module):
    """(z (B, z), codes (B, L, z), t (B, F)) -> frames (B, F, 3, H, W)."""

    def __init__(self, m):
        super().__init__()
        (res, _, self.base), zd, wd = base_shape(m.resolution), int(m.z_dim), int(m.w_dim)
        ch = lambda r: channels(r, int(m.channel_base), int(m.channel_max))
        fused = bool(m.fused_modconv)
        self.mapping = Mapping(zd, wd, int(m.mapping_layers))
        self.motion = Motion(zd, int(m.time_dim), int(m.motion_kernel), float(m.min_period), float(m.max_period))
        self.const = nn.Parameter(torch.randn(4, self.base, ch(4)))
        self.b4_conv1 = SynthesisLayer(wd, ch(4) + 2 * int(m.time_dim), ch(4), fused=fused)
        self.b4_torgb = ToRGB(wd, ch(4), fused)
        self.resolutions = []
        r = 8
        while r <= res:
            setattr(self, f"b{r}_conv0", SynthesisLayer(wd, ch(r // 2), ch(r), up=True, fused=fused))
            setattr(self, f"b{r}_conv1", SynthesisLayer(wd, ch(r), ch(r), fused=fused))
            setattr(self, f"b{r}_torgb", ToRGB(wd, ch(r), fused))
            self.resolutions.append(r)
            r *= 2

    def forward(self, z, codes, t, first=0):
        b, f = t.shape
        w = self.mapping(z).repeat_interleave(f, 0)
        v = self.motion(codes, t, first).reshape(b * f, -1)
        const = self.const.permute(2, 0, 1)[None].expand(b * f, -1, -1, -1)
        x = torch.cat([const, v[:, :, None, None].expand(-1, -1, 4, self.base)], 1)
        x = self.b4_conv1(x, w)
        img = self.b4_torgb(x, w)
        for r in self.resolutions:
            x = getattr(self, f"b{r}_conv0")(x, w)
            x = getattr(self, f"b{r}_conv1")(x, w)
            img = upsample2_fir(img) + getattr(self, f"b{r}_torgb")(x, w)
        return img.reshape(b, f, *img.shape[1:])


def log_spaced_coefficients(max_frames):
    res = 2 ** int(np.ceil(np.log2(max(max_frames, 2))))
    return torch.from_numpy((np.pi * 2.0 ** np.arange(int(np.log2(res))) / res).astype(np.float32))


class Discriminator(nn.Module):
    """(frames (B, F, 3, H, W), t (B, F)) -> logits (B,)."""

    def __init__(self, m, num_frames):
        super().__init__()
        res, _, base = base_shape(m.resolution)
        ch = lambda r: channels(r, int(m.d_channel_base), int(m.channel_max))
        self.concat_res, self.mbstd, self.max_frames = int(m.concat_res), int(m.mbstd_group), int(m.max_frames)
        self.time_conditioning = bool(m.time_conditioning)
        self.fromrgb = Conv(3, ch(res), 1)
        self.resolutions = []
        r, cin = res, ch(res)
        while r > 4:
            if r == self.concat_res:
                cin *= num_frames
            out = ch(r // 2) // (int(m.frames_div) if r // 2 == self.concat_res else 1)
            setattr(self, f"b{r}_skip", Conv(cin, out, 1, bias=False, down=True))
            setattr(self, f"b{r}_conv0", Conv(cin, ch(r), 3))
            setattr(self, f"b{r}_conv1", Conv(ch(r), out, 3, down=True))
            self.resolutions.append(r)
            r, cin = r // 2, out
        self.b4_conv = Conv(ch(4) + 1, ch(4), 3)
        self.b4_fc = Dense(ch(4) * 4 * base, ch(4))
        self.b4_out = Dense(ch(4), ch(4))
        n_fourier = len(log_spaced_coefficients(self.max_frames))
        self.time_embed = nn.Module()
        self.time_embed.embedding = nn.Parameter(torch.randn(self.max_frames, TIME_EMBED))
        self.time_mapping = Mapping((num_frames - 1) * (TIME_EMBED + 2 * n_fourier), ch(4), 2, embed=True)
        self.register_buffer("coefs", log_spaced_coefficients(self.max_frames))

    def forward(self, frames, t):
        b, f = frames.shape[:2]
        x = lrelu(self.fromrgb(frames.reshape(b * f, *frames.shape[2:])))
        for r in self.resolutions:
            if r == self.concat_res:
                x = x.reshape(b, -1, *x.shape[2:])
            skip = getattr(self, f"b{r}_skip")(x)
            x = lrelu(getattr(self, f"b{r}_conv0")(x))
            x = lrelu(getattr(self, f"b{r}_conv1")(x))
            x = (skip + x) * math.sqrt(0.5)
        x = lrelu(self.b4_conv(minibatch_stddev(x, self.mbstd)))
        x = lrelu(self.b4_fc(x.permute(0, 2, 3, 1).flatten(1)))
        diffs = t[:, 1:] - t[:, :-1]
        if not self.time_conditioning:
            diffs = diffs * 0
        learned = self.time_embed.embedding[diffs.round().clamp(0, self.max_frames - 1).long()]
        raw = diffs[..., None] * self.coefs
        feats = torch.cat([learned, raw.sin(), raw.cos()], -1)
        if not self.time_conditioning:
            feats = feats * 0
        cmap = self.time_mapping(feats.flatten(1))
        return (self.b4_out(x) * cmap).sum(-1) / math.sqrt(cmap.shape[-1])


def augment_clips(clips, shift=None):
    """DiffAugment (colour, translation up to `shift` (rows, columns), default 1/8 of each side,
    cutout 1/2), one draw per clip: (B, F, C, H, W)."""
    b, _, _, h, w = clips.shape
    dev = clips.device
    r = lambda: torch.rand(b, 1, 1, 1, 1, device=dev)
    x = clips + (r() - 0.5)
    mean = x.mean(2, keepdim=True)
    x = (x - mean) * (r() * 2) + mean
    mean = x.mean((1, 2, 3, 4), keepdim=True)
    x = (x - mean) * (r() + 0.5) + mean
    sy, sx = shift or (int(h * 0.125 + 0.5), int(w * 0.125 + 0.5))
    dy = torch.randint(0, 2 * sy + 1, (b,), device=dev)
    dx = torch.randint(0, 2 * sx + 1, (b,), device=dev)
    padded = F.pad(x, (sx, sx, sy, sy))
    rows = (dy[:, None] + torch.arange(h, device=dev))[:, None, None, :, None].expand(-1, x.shape[1], x.shape[2], -1, w + 2 * sx)
    x = torch.gather(padded, 3, rows)
    cols = (dx[:, None] + torch.arange(w, device=dev))[:, None, None, None, :].expand(-1, x.shape[1], x.shape[2], h, -1)
    x = torch.gather(x, 4, cols)
    ch, cw = h // 2, w // 2
    cy = torch.randint(0, h + (1 - ch % 2), (b, 1), device=dev) - ch // 2
    cx = torch.randint(0, w + (1 - cw % 2), (b, 1), device=dev) - cw // 2
    ar_h, ar_w = torch.arange(h, device=dev)[None], torch.arange(w, device=dev)[None]
    inside = (((ar_h >= cy) & (ar_h < cy + ch))[:, :, None] & ((ar_w >= cx) & (ar_w < cx + cw))[:, None, :])
    return x * (~inside)[:, None, None].to(x)


def load(module: nn.Module, params) -> None:
    """Copies a tlgen parameter tree into a peer module by path."""
    load_tree(module, params)


class Peer(AdversarialPeer):
    """StyleGAN-V training step on a fixed batch of sparse clips."""

    def __init__(self, config, batch: dict, device: torch.device, *, compile: bool):
        m, lc = config.model, config.loss
        self.start(config, batch, device, Generator(m), Discriminator(m, batch["frames"].shape[1]), compile)
        self.t = torch.from_numpy(batch["time"]).to(device).float()
        b = self.batch
        h, w, _ = base_shape(m.resolution)
        gamma = float(lc.r1_gamma) if float(lc.r1_gamma) >= 0 else 0.0002 * h * w / b
        self.gamma = gamma / batch["frames"].shape[1]       # R1 averaged over a clip's frames
        self.max_frames, self.z_dim = float(m.max_frames), int(m.z_dim)
        self.n_codes = int(math.floor(self.max_frames / float(m.min_period))) + 2 + 2 * (int(m.motion_kernel) - 1)
        if lc.augment != "none" and lc.get("augment_ops", "diffaugment") != "diffaugment":
            raise ValueError("the StyleGAN-V peer augments with DiffAugment only; "
                             "benchmark with --config.loss.augment_ops=diffaugment")
        self.augment = lc.augment != "none"
        self.frames_per_generate = 16

    def critic(self, clips):
        return self.d(augment_clips(clips) if self.augment else clips, self.t)

    def fake(self):
        b = self.batch
        rel = self.t - self.t[:, :1]
        t_fake = rel + torch.rand(b, 1, device=self.device) * (self.max_frames - 1 - rel[:, -1:]).clamp(min=0)
        z = torch.randn(b, self.z_dim, device=self.device)
        codes = torch.randn(b, self.n_codes, self.z_dim, device=self.device)
        return self.g_fwd(z, codes, t_fake)

    @torch.no_grad()
    def generate(self):
        """Inference: 16 frames of one video from the EMA generator."""
        t = torch.arange(16, device=self.device, dtype=torch.float32)[None]
        z = torch.randn(1, self.z_dim, device=self.device)
        codes = torch.randn(1, self.n_codes, self.z_dim, device=self.device)
        with autocast(self.device, self.dtype):
            return self.g_ema(z, codes, t)
