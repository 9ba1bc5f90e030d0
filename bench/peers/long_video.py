"""The low-resolution long-video model in PyTorch, layer for layer the same as
`tlgen.models.long_video`, written as the public code runs it: the filter bank as a direct
grouped `conv1d` over the noise (tlgen filters by FFT), 3-D convolutions as `conv3d`.

Parameters are held in tlgen's layouts and names (dense kernels (in, out), conv kernels
(kt, kh, kw, in, out)), so tlgen's parameters copy in by path (`load`); activations are
(B, C, T, H, W). The filter coefficients (no parameters) come from tlgen's numpy design
functions. The training step is `tlgen.families.long_video.training`'s: one generator forward
(a random window of the clip length), a discriminator step (logistic loss, DiffAugment and a
random temporal rescale drawn per clip), lazy R1 every `r1_every` steps, the generator step
through the same forward, G-EMA.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.peers.common import AdversarialPeer, autocast, load_tree
from bench.peers.stylegan_v import Dense, augment_clips, lrelu, upsample2_fir
from tlgen.models.long_video import filter_bank, kaiser_taps

CLAMP = 256.0
FIR = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8.0


def downsample2(x, dims):
    """[1, 3, 3, 1] low-pass with one zero each side, every other sample, along `dims`."""
    for dim in dims:
        xp = torch.cat([torch.zeros_like(x.narrow(dim, 0, 1)), x, torch.zeros_like(x.narrow(dim, 0, 1))], dim)
        n = xp.shape[dim] - 3
        x = sum(float(FIR[k]) * xp.narrow(dim, k, n) for k in range(4))
        x = x.index_select(dim, torch.arange(0, n, 2, device=x.device))
    return x


def crop(x, size, dim):
    start = (x.shape[dim] - size) // 2
    return x.narrow(dim, start, size)


def conv3d(x, kernel, padding):
    """x (B, C, T, H, W), kernel (kt, kh, kw, Cin, Cout), zero padding per axis."""
    return F.conv3d(x, kernel.permute(4, 3, 0, 1, 2), padding=padding)


def modulated_conv3d(x, kernel, styles, demodulate=True):
    """Styles (B, T, Cin) per frame, demodulated per output frame."""
    kt, kh, kw, cin, _ = kernel.shape
    kernel = kernel / math.sqrt(kt * kh * kw * cin)
    s = styles.permute(0, 2, 1)[..., None, None]                         # (B, Cin, T, 1, 1)
    y = conv3d(x * s, kernel, (kt // 2, kh // 2, kw // 2))
    if demodulate:
        d = torch.rsqrt(styles.square() @ kernel.square().sum((0, 1, 2)) + 1e-8)   # (B, T, Cout)
        y = y * d.permute(0, 2, 1)[..., None, None]
    return y


def style(cin, w_dim):
    return Dense(w_dim, cin, gain=1.0, bias_init=1.0)


class ResBlock3d(nn.Module):
    def __init__(self, cin, cout, kt, w_dim, time_up, space_up, out_time, out_size):
        super().__init__()
        self.affine0, self.affine1 = style(cin, w_dim), style(cin, w_dim)
        self.conv0 = nn.Parameter(torch.randn(kt, 3, 3, cin, cin))
        self.conv1 = nn.Parameter(torch.randn(kt, 3, 3, cin, cout))
        self.skip = nn.Parameter(torch.randn(cin, cout))
        self.bias0, self.bias1 = nn.Parameter(torch.zeros(cin)), nn.Parameter(torch.zeros(cout))
        self.time_up, self.space_up, self.out_time, self.out_size = time_up, space_up, out_time, out_size

    def forward(self, x, w):
        cin = x.shape[1]
        h = modulated_conv3d(x, self.conv0, self.affine0(w))
        h = lrelu(h + self.bias0[:, None, None, None]).clamp(-CLAMP, CLAMP)
        h = modulated_conv3d(h, self.conv1, self.affine1(w))
        skip = torch.einsum("bcthw,cd->bdthw", x, self.skip / math.sqrt(cin))
        h = (h + skip) * math.sqrt(0.5)
        if self.time_up:
            h = upsample2_fir(h, (2,))
        h = crop(h, self.out_time, 2)
        if self.space_up:
            h = upsample2_fir(h, (3, 4))
        h = crop(crop(h, self.out_size[0], 3), self.out_size[1], 4)
        return lrelu(h + self.bias1[:, None, None, None]).clamp(-CLAMP, CLAMP)


class ToRGB(nn.Module):
    def __init__(self, cin, w_dim):
        super().__init__()
        self.affine = style(cin, w_dim)
        self.kernel = nn.Parameter(torch.randn(1, 1, 1, cin, 3))
        self.bias = nn.Parameter(torch.zeros(3))

    def forward(self, x, w):
        y = modulated_conv3d(x, self.kernel, self.affine(w), demodulate=False)
        return (y + self.bias[:, None, None, None]).clamp(-CLAMP, CLAMP) * 0.25


class Mapping(nn.Module):
    def __init__(self, dim, layers):
        super().__init__()
        for i in range(layers):
            setattr(self, f"fc{i}", Dense(dim, dim, gain=1.0, lr=0.01))
        self.layers = layers

    def forward(self, x):
        x = x * torch.rsqrt(x.square().mean(-1, keepdim=True) + 1e-8)
        for i in range(self.layers):
            x = lrelu(getattr(self, f"fc{i}")(x))
        return x


class Generator(nn.Module):
    """noise (B, noise_length, noise_channels) -> (B, 3, frames, H, W), with the shapes and
    bookkeeping (margins, rates, sizes) of `gen`, the tlgen generator of the same config."""

    def __init__(self, gen):
        super().__init__()
        self.gen = gen
        bank = filter_bank(gen.filters, gen.min_period, gen.max_period)
        self.register_buffer("bank", torch.tensor(bank, dtype=torch.float32)[:, None])   # (count, 1, taps)
        self.register_buffer("kaiser", torch.tensor(kaiser_taps(), dtype=torch.float32)[None, None])
        d = gen.latent_dim
        self.mapping = Mapping(d, gen.mapping_layers)
        self.temporal_input = Dense(d, gen.input_channels, gain=1.0)
        sizes = gen.sizes()
        self.spatial_input = nn.Parameter(torch.randn(*sizes[0], gen.input_channels))
        cin = gen.input_channels
        self.blocks = []
        for i, (c, tu, su) in enumerate(zip(gen.temporal_channels, gen.temporal_time_up, gen.temporal_space_up)):
            setattr(self, f"temporal{i}", ResBlock3d(cin, c, gen.kernel_time, d, bool(tu), bool(su), 0, None))
            cin = c
        for i, (c, su) in enumerate(zip(gen.spatial_channels, gen.spatial_space_up)):
            setattr(self, f"spatial{i}", ResBlock3d(cin, c, 1, d, False, bool(su), 0, None))
            cin = c
        self.to_rgb = ToRGB(cin, d)

    def latent(self, noise):
        b, n, c = noise.shape
        x = noise.permute(0, 2, 1).reshape(b * c, 1, n)
        y = F.conv1d(x, self.bank)                                      # (B*C, count, L)
        y = y.reshape(b, c * self.bank.shape[0], -1).permute(0, 2, 1)
        return self.mapping(y)

    def downsample(self, w):
        b, t, d = w.shape
        x = F.pad(w.permute(0, 2, 1).reshape(b * d, 1, t), (5, 5))
        return F.conv1d(x, self.kaiser, stride=2)[..., :t // 2].reshape(b, d, -1).permute(0, 2, 1)

    def forward(self, noise, frames):
        g = self.gen
        w = self.latent(noise)
        margins, rates, sizes = g.margins(), g.rates(), g.sizes()
        latents, rate, coarse = [], 1, w
        for r, m in zip(reversed(rates), reversed(margins)):
            while rate < r:
                coarse, rate = self.downsample(coarse), rate * 2
            latents.append(crop(coarse, frames // r + 2 * m, 1))
        latents = latents[::-1]
        first = self.temporal_input(latents[0])                         # (B, T, C)
        x = (first[:, :, None, None, :] + self.spatial_input) * math.sqrt(0.5)
        x = x.permute(0, 4, 1, 2, 3)
        level, last = 0, len(g.temporal_channels) - 1
        for i, (tu, su) in enumerate(zip(g.temporal_time_up, g.temporal_space_up)):
            level += bool(su)
            block = getattr(self, f"temporal{i}")
            block.out_time = frames if i == last else frames // (rates[i] // (2 if tu else 1)) + 2 * margins[i + 1]
            block.out_size = sizes[level]
            x = block(x, latents[i])
        w_frames = crop(w, frames, 1)
        for i, su in enumerate(g.spatial_space_up):
            level += bool(su)
            block = getattr(self, f"spatial{i}")
            block.out_time, block.out_size = frames, sizes[level]
            x = block(x, w_frames)
        return self.to_rgb(x, w_frames)


class DBlock3d(nn.Module):
    def __init__(self, cin, cout, kt, time_down):
        super().__init__()
        self.conv0_kernel = nn.Parameter(torch.randn(kt, 3, 3, cin, cin))
        self.conv0_bias = nn.Parameter(torch.zeros(cin))
        self.conv1_kernel = nn.Parameter(torch.randn(kt, 3, 3, cin, cout))
        self.conv1_bias = nn.Parameter(torch.zeros(cout))
        self.skip = nn.Parameter(torch.randn(cin, cout))
        self.dims = (2, 3, 4) if time_down else (3, 4)
        self.kt, self.cin = kt, cin

    def forward(self, x):
        k, pad = self.kt, (self.kt // 2, 1, 1)
        scale = 1 / math.sqrt(k * 9 * self.cin)
        h = lrelu(conv3d(x, self.conv0_kernel * scale, pad) + self.conv0_bias[:, None, None, None]).clamp(-CLAMP, CLAMP)
        h = downsample2(conv3d(h, self.conv1_kernel * scale, pad), self.dims)
        h = lrelu(h + self.conv1_bias[:, None, None, None]).clamp(-CLAMP, CLAMP)
        s = torch.einsum("bcthw,cd->bdthw", downsample2(x, self.dims), self.skip / math.sqrt(self.cin))
        return (h + s.clamp(-CLAMP, CLAMP)) * math.sqrt(0.5)


class Discriminator(nn.Module):
    """(B, T, 3, H, W) in [-1, 1] -> (B,), the tlgen discriminator `disc`'s layers."""

    def __init__(self, disc):
        super().__init__()
        self.disc = disc
        self.from_rgb = Dense(3, disc.input_channels, gain=1.0)
        cin = disc.input_channels
        for i, c in enumerate(disc.channels):
            setattr(self, f"block{i}", DBlock3d(cin, c, 1 if i == 0 else disc.kernel_time, i > 0))
            cin = c
        frames = disc.frames // 2 ** (len(disc.channels) - 1)
        edge = disc.max_edge // 2 ** len(disc.channels)
        fin = cin * edge * edge
        for i in range(disc.head_convs):
            k = 1 if i == 0 else 3
            self.register_parameter(f"head{i}_kernel", nn.Parameter(torch.randn(k, 1, 1, fin, disc.head_channels)))
            self.register_parameter(f"head{i}_bias", nn.Parameter(torch.zeros(disc.head_channels)))
            fin = disc.head_channels
        self.fc = Dense(frames * disc.head_channels, disc.head_channels, gain=1.0)
        self.out = Dense(disc.head_channels, 1, gain=1.0)

    def forward(self, video):
        b, t, _, h, w = video.shape
        e = self.disc.max_edge
        x = F.pad(video, ((e - w) // 2, e - w - (e - w) // 2, (e - h) // 2, e - h - (e - h) // 2))
        x = lrelu(self.from_rgb(x.permute(0, 1, 3, 4, 2))).clamp(-CLAMP, CLAMP).permute(0, 4, 1, 2, 3)
        for i in range(len(self.disc.channels)):
            x = getattr(self, f"block{i}")(x)
        x = x.permute(0, 2, 3, 4, 1).reshape(b, x.shape[2], -1)          # (B, T', H'W'C) as tlgen
        for i in range(self.disc.head_convs):
            kernel = getattr(self, f"head{i}_kernel")[:, 0, 0]              # (k, in, out)
            k = kernel.shape[0]
            y = F.conv1d(x.permute(0, 2, 1), kernel.permute(2, 1, 0) / math.sqrt(k * x.shape[-1]), padding=k // 2)
            x = lrelu(y.permute(0, 2, 1) + getattr(self, f"head{i}_bias"))
        return self.out(lrelu(self.fc(x.reshape(b, -1))))[:, 0]


def rescale_time(clips):
    """tlgen's `rescale_time` on (B, T, C, H, W): per clip a speed 2^U(-1, 1), linear resampling,
    zero padding (sped up) or a random window (slowed down)."""
    b, t = clips.shape[:2]
    dev = clips.device
    scale = 2.0 ** (torch.rand(b, device=dev) * 2 - 1)
    length = torch.floor(t * scale)
    offset = torch.floor(torch.rand(b, device=dev) * ((length - t).abs() + 1))
    offset = torch.where(length >= t, offset, -offset)
    m = torch.arange(t, device=dev, dtype=torch.float32)[None] + offset[:, None]
    src = ((m + 0.5) / scale[:, None] - 0.5).clamp(0, t - 1)
    lo = src.floor().long()
    hi = (lo + 1).clamp(max=t - 1)
    a = (src - lo)[..., None, None, None]
    pick = lambda idx: torch.gather(clips, 1, idx[..., None, None, None].expand(-1, -1, *clips.shape[2:]))
    out = pick(lo) * (1 - a) + pick(hi) * a
    return out * ((m >= 0) & (m < length[:, None]))[..., None, None, None]


def load(module: nn.Module, params) -> None:
    """Copies a tlgen parameter tree into a peer module by path."""
    load_tree(module, params)


class Peer(AdversarialPeer):
    """The low-resolution stage's training step on a fixed batch of clips."""

    def __init__(self, config, batch: dict, device: torch.device, *, compile: bool):
        from tlgen.families.long_video import training
        gen, disc = training.networks(config)
        lc = config.loss
        self.start(config, batch, device, Generator(gen), Discriminator(disc), compile)
        self.gamma = float(lc.r1_gamma)
        self.clip = self.real.shape[1]
        self.made = training.generated_frames(gen, self.clip)
        self.room = gen.time_scale
        self.noise_shape = (gen.noise_length(self.made), gen.noise_channels)
        self.augment, self.rescale = lc.augment != "none", bool(lc.time_rescale)
        shift = round(max(int(v) for v in config.model.size) / 4)
        self.shift = (shift, shift)
        self.frames_per_generate = self.made

    def critic(self, clips):
        clips = augment_clips(clips, self.shift) if self.augment else clips
        return self.d(rescale_time(clips) if self.rescale else clips)

    def fake(self):
        b = self.batch
        video = self.g_fwd(torch.randn(b, *self.noise_shape, device=self.device), self.made)   # (B, 3, F, H, W)
        starts = torch.randint(0, self.room, (b,), device=self.device)
        idx = (starts[:, None] + torch.arange(self.clip, device=self.device))[:, None, :, None, None]
        return torch.gather(video, 2, idx.expand(-1, 3, -1, *video.shape[3:])).permute(0, 2, 1, 3, 4)

    @torch.no_grad()
    def generate(self):
        """Inference: one pass of the training length from the EMA generator."""
        with autocast(self.device, self.dtype):
            return self.g_ema(torch.randn(1, *self.noise_shape, device=self.device), self.made)
