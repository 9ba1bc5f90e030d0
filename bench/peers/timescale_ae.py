"""The timescale autoencoder in PyTorch, layer for layer `tlgen.models.timescale_ae`.

Encoder: 3x3 stem, per resolution `blocks` pre-norm residual blocks (GroupNorm, SiLU,
3x3 conv, twice), a 3x3 stride-2 conv between resolutions (padded as Flax's 'SAME'),
GroupNorm + SiLU + 1x1 conv to M bins x c channels. Decoder: 3x3 conv in, per resolution residual blocks with a
nearest-neighbour 2x upsample + 3x3 conv between them, GroupNorm + SiLU + 3x3 conv to
RGB, tanh. GroupNorm epsilon 1e-6 (Flax's default).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.peers.common import autocast, count_parameters, reconstruction_loss, to_nchw


def groups(channels: int) -> int:
    for g in (8, 4, 2):
        if channels % g == 0:
            return g
    return 1


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups(channels), channels, eps=1e-6)


class ResBlock(nn.Module):
    """Pre-norm residual block: (GroupNorm, SiLU, 3x3 conv) x 2 + skip."""

    def __init__(self, cin: int, features: int):
        super().__init__()
        self.norm0, self.conv0 = group_norm(cin), nn.Conv2d(cin, features, 3, padding=1)
        self.norm1, self.conv1 = group_norm(features), nn.Conv2d(features, features, 3, padding=1)
        self.skip = nn.Conv2d(cin, features, 1) if cin != features else nn.Identity()

    def forward(self, x):
        h = self.conv0(F.silu(self.norm0(x)))
        h = self.conv1(F.silu(self.norm1(h)))
        return self.skip(x) + h


class TimescaleAE(nn.Module):
    """frames (B, 3, H, W) in [-1, 1] -> w (B, M, c, h, w) -> frames; with `background` the
    decoder relights the video's background image (B, 3, H, W) in [-1, 1]."""

    def __init__(self, widths, blocks: int, num_bins: int, bin_channels: int,
                 background: bool = False):
        super().__init__()
        widths = tuple(widths)
        self.num_bins, self.bin_channels, self.background = num_bins, bin_channels, background
        self.enc_stem = nn.Conv2d(3, widths[0], 3, padding=1)
        self.encoder = nn.ModuleList()
        for i, wd in enumerate(widths):
            # Flax's 'SAME' for a stride-2 3x3 conv on an even size pads 0 before, 1 after.
            level = [nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(widths[i - 1], wd, 3, stride=2)] if i else []
            level += [ResBlock(wd, wd) for _ in range(blocks)]
            self.encoder.append(nn.Sequential(*level))
        self.enc_head = nn.Sequential(group_norm(widths[-1]), nn.SiLU(),
                                      nn.Conv2d(widths[-1], num_bins * bin_channels, 1))
        rev = widths[::-1]
        self.dec_in = nn.Conv2d(num_bins * bin_channels, rev[0], 3, padding=1)
        self.decoder = nn.ModuleList()
        for i, wd in enumerate(rev):
            level = ([nn.Upsample(scale_factor=2, mode="nearest"),
                      nn.Conv2d(rev[i - 1], wd, 3, padding=1)] if i else [])
            level += [ResBlock(wd, wd) for _ in range(blocks)]
            self.decoder.append(nn.Sequential(*level))
        if background:
            self.dec_background = nn.ModuleList(nn.Conv2d(3, wd, 3, padding=1) for wd in rev)
        self.dec_head = nn.Sequential(group_norm(widths[0]), nn.SiLU(),
                                      nn.Conv2d(widths[0], 4 if background else 3, 3, padding=1))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = self.enc_stem(x)
        for level in self.encoder:
            x = level(x)
        x = self.enc_head(x)
        b, _, h, w = x.shape
        return x.float().view(b, self.num_bins, self.bin_channels, h, w)

    def decode(self, w: torch.Tensor, background: torch.Tensor | None = None) -> torch.Tensor:
        b, m, c, h, wd = w.shape
        x = self.dec_in(w.reshape(b, m * c, h, wd).contiguous(memory_format=torch.channels_last))
        for i, level in enumerate(self.decoder):
            layers = list(level)
            if i:                                   # upsample, conv
                x, layers = layers[1](layers[0](x)), layers[2:]
            if self.background:
                f = 2 ** (len(self.decoder) - 1 - i)
                x = x + self.dec_background[i](F.avg_pool2d(background, f) if f > 1 else background)
            for block in layers:
                x = block(x)
        out = self.dec_head(x).float()
        if not self.background:
            return torch.tanh(out)
        gain, offset = out[:, :1], out[:, 1:]
        return 2 * ((background.float() + 1) / 2 * (1 + gain) + offset) - 1


def mask(w: torch.Tensor, k: torch.Tensor | int) -> torch.Tensor:
    """Keeps bins 0..k-1 of w (B, M, ...); `k` an int or one per example (B,)."""
    m = w.shape[1]
    k = torch.as_tensor(k, device=w.device).reshape(-1, 1)
    keep = torch.arange(m, device=w.device)[None, :] < k
    return w * keep.view(keep.shape + (1,) * (w.dim() - 2)).to(w.dtype)


def masked_similarities(rows: torch.Tensor, cols: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Cosine similarities of masked codes for each level: (L, R, C), from per-bin Grams."""
    r, c = rows.flatten(2).float(), cols.flatten(2).float()
    dots = torch.einsum("rmd,cmd->mrc", r, c).cumsum(0)[levels - 1]
    row_sq = r.square().sum(-1).cumsum(1)[:, levels - 1].T
    col_sq = c.square().sum(-1).cumsum(1)[:, levels - 1].T
    return dots / (row_sq[:, :, None] * col_sq[:, None, :]).clamp_min(1e-12).sqrt()


class Peer:
    """The timescale autoencoder's training step, as
    `tlgen.families.timescale_ae.training.losses` does it: NT-Xent on masked cosine
    similarities + level-weighted alpha (1 - MS-SSIM) + (1 - alpha) L1; Adam with
    global-norm clipping.

    With `loss.one_level_per_anchor` anchor i is paired with its positive of band
    i mod (M-1) and reconstructs level k = i mod M + 1; without it every positive is
    encoded and every anchor decoded at every level (level-major)."""

    def __init__(self, config, batch: dict, device: torch.device, *, compile: bool):
        m, lc, o = config.model, config.loss, config.optim
        self.device, self.dtype = device, str(config.dtype)
        self.net = TimescaleAE(m.widths, m.blocks, m.num_bins, m.bin_channels,
                               bool(m.get("background", False))).to(
            device, memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=o.lr, betas=(o.b1, o.b2), eps=o.eps,
                                    fused=device.type == "cuda")
        self.clip = float(o.grad_clip)
        b, bins = batch["anchor"].shape[0], int(m.num_bins)
        bands = bins - 1
        idx = torch.arange(b)
        if lc.one_level_per_anchor:
            pos_anchor, pos_band = idx, idx % bands
            dec_anchor, kept = idx, idx % bins + 1
        else:
            pos_anchor, pos_band = idx.repeat_interleave(bands), torch.arange(bands).repeat(b)
            dec_anchor, kept = idx.repeat(bins), torch.arange(1, bins + 1).repeat_interleave(b)
        positives = batch["positive"][pos_anchor, pos_band]
        self.frames = to_nchw(np.concatenate([batch["anchor"], positives]), device)
        target = (batch["target"][dec_anchor, kept - 1] if lc.target == "pyramid"
                  else batch["anchor"][dec_anchor])
        self.target = to_nchw(target, device)
        self.background = (to_nchw(batch["background"][dec_anchor], device)
                           if self.net.background else None)
        self.valid = torch.from_numpy(np.asarray(batch["pos_valid"])[pos_anchor, pos_band]).to(device)
        self.pos_anchor, self.pos_band = pos_anchor.to(device), pos_band.to(device)
        self.dec_anchor, self.kept = dec_anchor.to(device), kept.to(device)
        self.levels = torch.arange(1, bins, device=device)
        weights = [float(x) for x in lc.level_weights] or [float(k) for k in range(1, bins + 1)]
        self.level_weights = torch.tensor(weights, device=device) / sum(weights)
        self.cfg = lc
        self.loss_fn = torch.compile(self._loss) if compile else self._loss
        self.parameters = {"ae": count_parameters(self.net)}

    def _contrastive(self, w_anchor, w_pos):
        b, p = w_anchor.shape[0], w_pos.shape[0]
        cols = torch.cat([w_anchor, w_pos])
        col_valid = torch.cat([torch.ones(b, dtype=torch.bool, device=self.device), self.valid])
        logits = masked_similarities(w_anchor, cols, self.levels)[self.pos_band, self.pos_anchor]
        logits = logits / self.cfg.temperature                                     # (P, N)
        col = torch.arange(b + p, device=self.device)[None, :]
        col_anchor = torch.cat([torch.arange(b, device=self.device), self.pos_anchor])[None, :]
        is_pos = col == (b + torch.arange(p, device=self.device))[:, None]
        allowed = (col_valid[None, :] & (col_anchor != self.pos_anchor[:, None])) | is_pos
        per_pair = (torch.logsumexp(logits.masked_fill(~allowed, float("-inf")), -1)
                    - (logits * is_pos).sum(-1))
        in_band = (self.pos_band[None, :] == torch.arange(len(self.levels), device=self.device)[:, None]
                   ) & self.valid[None, :]
        count = in_band.sum(1).float()
        per_band = (in_band * per_pair[None, :]).sum(1) / count.clamp_min(1.0)
        weights = (count > 0).float()
        return (weights * per_band).sum() / weights.sum().clamp_min(1e-12)

    def _loss(self, frames, target):
        b = frames.shape[0] - self.pos_anchor.shape[0]
        with autocast(self.device, self.dtype):
            codes = self.net.encode(frames)
            recon = self.net.decode(mask(codes[:b][self.dec_anchor], self.kept), self.background)
        c_loss = self._contrastive(codes[:b], codes[b:])
        rec = reconstruction_loss(recon, target, float(self.cfg.alpha))
        level_of = F.one_hot(self.kept - 1, len(self.level_weights)).float().T       # (M, R)
        per_level = level_of @ rec / level_of.sum(1).clamp_min(1.0)
        r_loss = (self.level_weights * per_level).sum()
        return self.cfg.contrastive_weight * c_loss + self.cfg.recon_weight * r_loss

    def step(self):
        loss = self.loss_fn(self.frames, self.target)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.clip, foreach=True)
        self.opt.step()
        return loss

