"""FGLA in PyTorch, layer for layer the same as `tlgen.models.fgla` (same parameters).

Partial-convolution motion encoder run once per region (or one global latent), latent map,
U-Net motion generator (instance norm + LeakyReLU 0.1, nearest upsampling, skips), backward
bilinear warping with clamped coordinates, and the training step of
`tlgen.families.fgla.training`: L1 frame + L1 flow + edge-aware TV, Adam.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.peers.common import autocast, count_parameters


def masked_instance_norm(x: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 1e-5):
    """(N, C, H, W) normalized per sample and channel over the positions of `mask` (N, 1, H, W)."""
    if mask is None:
        mask = torch.ones_like(x[:, :1])
    count = mask.sum((2, 3), keepdim=True).clamp(min=1.0)
    mean = (x * mask).sum((2, 3), keepdim=True) / count
    var = ((x - mean).square() * mask).sum((2, 3), keepdim=True) / count
    return (x - mean) * torch.rsqrt(var + eps)


class PartialConv(nn.Module):
    """3x3 partial convolution: W^T (X ⊙ M) * 9 / sum(M) + b where the window holds any of M."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1)
        self.register_buffer("ones", torch.ones(1, 1, 3, 3))

    def forward(self, x, mask):
        stride = self.conv.stride
        out = F.conv2d(x * mask, self.conv.weight, None, stride, 1)
        covered = F.conv2d(mask, self.ones, None, stride, 1)
        valid = (covered > 0).to(x.dtype)
        out = out * (9.0 / covered.clamp(min=1.0)) + self.conv.bias.view(1, -1, 1, 1)
        return out * valid, valid


class MotionEncoder(nn.Module):
    def __init__(self, widths, latent_dim: int, per_region: bool, flow_scale: float):
        super().__init__()
        chans = (2,) + tuple(widths)
        self.convs = nn.ModuleList(PartialConv(a, b, 2) for a, b in zip(chans[:-1], chans[1:]))
        self.to_latent = nn.Linear(chans[-1], latent_dim)
        self.per_region, self.flow_scale = per_region, flow_scale

    def forward(self, flow, masks):
        """flow (B, 2, H, W) pixels, masks (B, R, H, W) -> latents (B, R, D)."""
        b, r = masks.shape[:2]
        if not self.per_region:
            masks, r = torch.ones_like(masks[:, :1]), 1
        x = (flow / self.flow_scale).repeat_interleave(r, 0)
        m = masks.reshape(b * r, 1, *masks.shape[2:])
        for conv in self.convs:
            x, m = conv(x, m)
            x = F.leaky_relu(masked_instance_norm(x, m), 0.1) * m
        count = m.sum((2, 3))
        pooled = (x * m).sum((2, 3)) / count.clamp(min=1.0)
        z = torch.where(count > 0, self.to_latent(pooled), torch.zeros((), device=x.device))
        return z.view(b, r, -1)


def latent_map(latents, masks):
    """latents (B, R, D), masks (B, R, H, W) -> (B, D, H, W)."""
    if latents.shape[1] == 1:
        return latents[:, 0, :, None, None].expand(-1, -1, *masks.shape[2:])
    return torch.einsum("brhw,brd->bdhw", masks, latents)


class MotionGenerator(nn.Module):
    def __init__(self, widths, latent_dim: int, flow_divisor: float):
        super().__init__()
        conv = lambda a, b, s=1: nn.Conv2d(a, b, 3, s, 1)
        self.inp = conv(3 + latent_dim, widths[0])
        self.down = nn.ModuleList(conv(a, b, 2) for a, b in zip(widths[:-1], widths[1:]))
        self.down_conv = nn.ModuleList(conv(b, b) for b in widths[1:])
        self.up = nn.ModuleList(conv(b, a) for a, b in zip(widths[:-1], widths[1:]))
        self.up_conv = nn.ModuleList(conv(2 * a, a) for a in widths[:-1])
        self.to_flow = conv(widths[0], 2)
        self.flow_divisor = flow_divisor

    def forward(self, image, lmap):
        act = lambda x: F.leaky_relu(masked_instance_norm(x), 0.1)
        x = act(self.inp(torch.cat([image, lmap], 1)))
        skips = []
        for down, down_conv in zip(self.down, self.down_conv):
            skips.append(x)
            x = act(down_conv(act(down(x))))
        for i in reversed(range(len(skips))):
            x = act(self.up[i](F.interpolate(x, scale_factor=2, mode="nearest")))
            x = act(self.up_conv[i](torch.cat([x, skips[i]], 1)))
        h, w = image.shape[2:]
        unit = torch.tensor([w / 2.0, h / 2.0], device=x.device).view(1, 2, 1, 1)
        return torch.tanh(self.to_flow(x).float()) / self.flow_divisor * unit


def warp(image, flow):
    """Backward bilinear warp of (B, C, H, W) by flow (B, 2, H, W) pixels, clamped coordinates."""
    _, _, h, w = image.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=flow.device, dtype=flow.dtype),
                            torch.arange(w, device=flow.device, dtype=flow.dtype), indexing="ij")
    gx = (xs + flow[:, 0]) / max(w - 1, 1) * 2 - 1
    gy = (ys + flow[:, 1]) / max(h - 1, 1) * 2 - 1
    return F.grid_sample(image, torch.stack([gx, gy], -1), mode="bilinear", padding_mode="border",
                         align_corners=True)


def edge_aware_tv(flow, image, sigma: float):
    image = image.detach()
    total = 0.0
    for dim in (3, 2):
        n = flow.shape[dim]
        df = (flow.narrow(dim, 0, n - 1) - flow.narrow(dim, 1, n - 1)).abs().sum(1)
        di = (image.narrow(dim, 0, n - 1) - image.narrow(dim, 1, n - 1)).abs().sum(1)
        total = total + (torch.exp(-di / sigma) * df).mean()
    return total


class Peer:
    """FGLA's training step on a fixed batch of frame pairs with flow and region masks."""

    def __init__(self, config, batch: dict, device: torch.device, *, compile: bool):
        m, o, lc = config.model, config.optim, config.loss
        self.device, self.dtype, self.loss_cfg = device, str(config.dtype), lc
        self.encoder = MotionEncoder(tuple(m.encoder_widths), int(m.latent_dim), bool(m.per_region),
                                     float(m.flow_scale)).to(device)
        self.generator = MotionGenerator(tuple(m.generator_widths), int(m.latent_dim),
                                         float(m.flow_divisor)).to(device)
        self.opt = torch.optim.Adam(list(self.encoder.parameters()) + list(self.generator.parameters()),
                                    lr=o.lr, betas=(o.b1, o.b2), eps=o.eps, fused=device.type == "cuda")
        frames = torch.from_numpy(batch["frames"]).to(device).float().div_(127.5).sub_(1.0)
        self.image = frames[:, 0].permute(0, 3, 1, 2).contiguous()
        self.next = frames[:, 1].permute(0, 3, 1, 2).contiguous()
        self.target = -torch.from_numpy(batch["flow"][:, 0]).to(device).permute(0, 3, 1, 2).contiguous()
        classes = torch.from_numpy(batch["masks"][:, 0]).to(device).long()
        self.masks = (classes[:, None] == torch.arange(len(m.regions), device=device)[None, :, None, None]).float()
        self.enc_fwd = torch.compile(self.encoder) if compile else self.encoder
        self.gen_fwd = torch.compile(self.generator) if compile else self.generator
        self.parameters = {"fgla": count_parameters(self.encoder, self.generator)}
        self.frames_per_generate = self.image.shape[0] * 8

    def losses(self):
        lc = self.loss_cfg
        with autocast(self.device, self.dtype):
            latents = self.enc_fwd(self.target.flip(3), self.masks.flip(3))
            pred = self.gen_fwd(self.image, latent_map(latents, self.masks)).float()
        warped = warp(self.image, pred)
        h, w = self.image.shape[2:]
        unit = torch.tensor([w / 2.0, h / 2.0], device=self.device).view(1, 2, 1, 1)
        frame_l1 = (warped - self.next).abs().mean()
        flow_l1 = (pred / unit - self.target / unit).abs().mean()
        tv = edge_aware_tv(pred / unit, warped, lc.tv_sigma)
        return lc.frame_weight * frame_l1 + lc.flow_weight * flow_l1 + lc.tv_weight * tv

    def step(self):
        loss = self.losses()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    @torch.no_grad()
    def generate(self):
        """Inference: the batch's first frames animated for 8 steps with their own motion."""
        with autocast(self.device, self.dtype):
            lmap = latent_map(self.encoder(self.target, self.masks), self.masks)
            total = torch.zeros_like(self.target)
            frame = self.image
            for _ in range(8):
                total = total + self.gen_fwd(frame, lmap).float()
                frame = warp(self.image, total)
        return frame
