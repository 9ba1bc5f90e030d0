"""DTVNet in PyTorch, layer for layer the same as `tlgen.models.dtvnet` (same parameters).

Generator (shared encoder, content stream of residual blocks, motion stream of residual +
AdaIN blocks styled by equalized-LR linear layers, decoder with a 3x3 stride-2 transposed
conv), flow encoder and video discriminator (3-D conv pyramids), and the training step of
`tlgen.families.dtvnet.training`: a critic step (LSGAN + WGAN-GP) then a generator +
flow-encoder step (LSGAN + 100 L1 on frames + 1 L1 on the half-resolution flows).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.peers.common import autocast, count_parameters


def normalize_motion(motion: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Standardizes each motion vector over its features (batch-independent)."""
    motion = motion.float()
    mean = motion.mean(-1, keepdim=True)
    var = (motion - mean).square().mean(-1, keepdim=True)
    return (motion - mean) * torch.rsqrt(var + eps)


class EqualizedLinear(nn.Module):
    """Linear layer with weights ~ N(0, 1) scaled by sqrt(2 / fan_in) at run time."""

    def __init__(self, fan_in: int, features: int, bias_value: torch.Tensor | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(features, fan_in))
        self.bias = nn.Parameter(torch.zeros(features) if bias_value is None else bias_value)
        self.gain = math.sqrt(2.0 / fan_in)

    def forward(self, x):
        return F.linear(x, self.weight * self.gain, self.bias)


def conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """x + [reflect-pad, 3x3 conv, BN, ReLU, reflect-pad, 3x3 conv, BN](x)."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3, bias=False), nn.BatchNorm2d(width))

    def forward(self, x):
        return x + self.body(x)


class Generator(nn.Module):
    """(image (B, 3, H, W) in [-1, 1], motion (B, D)) -> (video (B, T, 3, H, W), flows
    (B, T, 2, H/2, W/2))."""

    def __init__(self, num_frames=32, base_width=64, decoder_width=96, motion_dim=512,
                 content_blocks=9, motion_blocks=6, mapping_layers=3, style_layers=2):
        super().__init__()
        b, t, d = base_width, num_frames, motion_dim
        self.t = t
        self.encoder = nn.Sequential(
            nn.ReflectionPad2d(2), nn.Conv2d(3, b, 5, bias=False), nn.BatchNorm2d(b),
            nn.ReLU(inplace=True), conv_bn_relu(b, 2 * b, 2), conv_bn_relu(2 * b, 2 * b))
        self.content = nn.Sequential(*[ResidualBlock(2 * b) for _ in range(content_blocks)])
        self.mapping = nn.ModuleList(EqualizedLinear(d, d) for _ in range(mapping_layers))
        self.motion_in = conv_bn_relu(2 * b, b)
        self.motion_blocks = nn.ModuleList(ResidualBlock(b) for _ in range(motion_blocks))
        style_bias = torch.cat([torch.ones(b), torch.zeros(b)])
        self.adapt = nn.ModuleList(
            nn.ModuleList([EqualizedLinear(d, d) for _ in range(style_layers)]
                          + [EqualizedLinear(d, 2 * b, style_bias.clone())])
            for _ in range(motion_blocks))
        self.to_flows = nn.Conv2d(b, 2 * t, 3, 1, 1)
        self.decoder = nn.Sequential(
            conv_bn_relu(2 * b + 2 * t, decoder_width), conv_bn_relu(decoder_width, decoder_width),
            nn.ConvTranspose2d(decoder_width, decoder_width, 3, 2, 1, output_padding=1, bias=False),
            nn.BatchNorm2d(decoder_width), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(2), nn.Conv2d(decoder_width, 3 * t, 5))

    def forward(self, image, motion):
        shared = self.encoder(image)
        content = self.content(shared)
        latent = normalize_motion(motion).to(shared.dtype if shared.is_floating_point() else None)
        for layer in self.mapping:
            latent = F.leaky_relu(layer(latent), 0.2)
        m = self.motion_in(shared)
        for block, adapt in zip(self.motion_blocks, self.adapt):
            m = block(m)
            style = latent
            for layer in adapt[:-1]:
                style = F.leaky_relu(layer(style), 0.2)
            scale, shift = adapt[-1](style).chunk(2, dim=-1)
            m = F.instance_norm(m) * scale[:, :, None, None] + shift[:, :, None, None]
        flows = F.leaky_relu(self.to_flows(m), 0.1)
        y = torch.tanh(self.decoder(torch.cat([content, flows], 1)).float())
        n, _, h, w = y.shape
        return y.view(n, self.t, 3, h, w), flows.float().view(n, self.t, 2, h // 2, w // 2)


class Conv3dPyramid(nn.Module):
    """Strided 3-D convs (B, C, T, H, W) -> (B, out), the same schedule as tlgen's."""

    def __init__(self, cin, shape, base_width, max_width, out_features, norm, activate_first,
                 last_slope=0.2):
        super().__init__()
        t, h, w = shape
        layers = [nn.Conv3d(cin, base_width, (3, 4, 4), (1, 2, 2), 1, bias=False)]
        t, h, w = t, h // 2, w // 2
        if activate_first:
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        width = base_width
        while min(h, w) > 4:
            new = min(2 * width, max_width)
            tk, ts = (4, 2) if t >= 4 else (3, 1)
            layers.append(nn.Conv3d(width, new, (tk, 4, 4), (ts, 2, 2), 1, bias=False))
            layers.append(nn.BatchNorm3d(new) if norm == "batch" else nn.InstanceNorm3d(new))
            layers.append(nn.LeakyReLU(last_slope if min(h, w) // 2 <= 4 else 0.2, inplace=True))
            width, t, h, w = new, (t + 2 - tk) // ts + 1, h // 2, w // 2
        layers.append(nn.Conv3d(width, out_features, (t, h, w), bias=False))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x).flatten(1)


class FlowEncoder(nn.Module):
    """Flows (B, 2, T, H, W) -> normalized motion (B, D)."""

    def __init__(self, shape, base_width=32, max_width=512, motion_dim=512):
        super().__init__()
        self.pyramid = Conv3dPyramid(2, shape, base_width, max_width, max_width, "batch", False)
        self.fc = nn.Linear(max_width, motion_dim)

    def forward(self, flows):
        return normalize_motion(self.fc(self.pyramid(flows)))


class VideoDiscriminator(nn.Module):
    """Clip (B, 3, T, H, W) -> one logit per clip (B,)."""

    def __init__(self, shape, base_width=32, max_width=512):
        super().__init__()
        self.pyramid = Conv3dPyramid(3, shape, base_width, max_width, 1, "instance", True, 0.01)

    def forward(self, video):
        return self.pyramid(video)[:, 0].float()


class Peer:
    """DTVNet training step on a fixed batch: critic step, then generator + flow encoder."""

    def __init__(self, config, batch: dict, device: torch.device, *, compile: bool):
        m, o = config.model, config.optim
        frames = batch["frames"]                              # (B, T + 1, H, W, 3) uint8
        b, _, h, w, _ = frames.shape
        self.dtype, self.device = str(config.dtype), device
        t = int(config.data.num_frames)                      # clips hold T + 1 frames
        self.g = Generator(t, m.base_width, m.decoder_width, m.motion_dim, m.content_blocks,
                           m.motion_blocks, m.mapping_layers, m.style_layers
                           ).to(device, memory_format=torch.channels_last)
        flows = torch.from_numpy(batch["flow"][:, :t]).to(device)   # (B, T, H, W, 2) pixels
        self.e = FlowEncoder((t, h, w), m.encoder_width, m.encoder_max_width, m.motion_dim).to(device)
        self.d = VideoDiscriminator((t, h, w), m.disc_width, m.disc_max_width).to(device)
        fused = device.type == "cuda"
        self.opt_g = torch.optim.Adam(list(self.g.parameters()) + list(self.e.parameters()),
                                      lr=o.g.lr, betas=(o.g.b1, o.g.b2), eps=o.g.eps, fused=fused)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=o.d.lr, betas=(o.d.b1, o.d.b2),
                                      eps=o.d.eps, fused=fused)
        self.loss_cfg = config.loss
        video = torch.from_numpy(frames[:, :t]).to(device).float().div_(127.5).sub_(1.0)
        self.real = video.permute(0, 4, 1, 2, 3).contiguous()                 # (B, 3, T, H, W)
        self.image = video[:, 0].permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        self.flows = flows.permute(0, 4, 1, 2, 3).contiguous()               # (B, 2, T, H, W)
        # Flow targets on the half-resolution grid, in its pixels (antialiased bilinear).
        self.flow_target = F.interpolate(flows.permute(0, 1, 4, 2, 3).reshape(b, -1, h, w),
                                         size=(h // 2, w // 2), mode="bilinear", antialias=True
                                         ).view(b, t, 2, h // 2, w // 2) * 0.5
        self.g_fwd = torch.compile(self.g) if compile else self.g
        self.e_fwd = torch.compile(self.e) if compile else self.e
        # The critic stays eager: WGAN-GP differentiates it twice, which torch.compile does not support.
        self.parameters = {"g": count_parameters(self.g), "e": count_parameters(self.e),
                           "d": count_parameters(self.d)}
        self.frames_per_generate = b * t

    def step(self):
        lc = self.loss_cfg
        with autocast(self.device, self.dtype):
            motion = self.e_fwd(self.flows)
            fake, fake_flows = self.g_fwd(self.image, motion)
        fake_v = fake.permute(0, 2, 1, 3, 4)                  # (B, 3, T, H, W)
        # Critic: LSGAN on real and fake + WGAN-GP on interpolates.
        with autocast(self.device, self.dtype):
            d_real, d_fake = self.d(self.real), self.d(fake_v.detach())
        eps = torch.rand(self.real.shape[0], 1, 1, 1, 1, device=self.device)
        x_hat = (eps * self.real + (1 - eps) * fake_v.detach()).requires_grad_(True)
        with autocast(self.device, self.dtype):
            critic_hat = self.d(x_hat)
        grads, = torch.autograd.grad(critic_hat.sum(), x_hat, create_graph=True)
        gp = lc.gp_weight * ((grads.flatten(1).square().sum(1) + 1e-12).sqrt() - 1).square().mean()
        d_loss = 0.5 * ((d_real - 1).square().mean() + d_fake.square().mean()) + gp
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        # Generator + flow encoder: LSGAN + L1 on frames + L1 on the half-resolution flows.
        with autocast(self.device, self.dtype):
            g_adv = (self.d(fake_v) - 1).square().mean()
        frames_l1 = (fake_v - self.real).abs().mean()
        flow_l1 = (fake_flows - self.flow_target).abs().mean()
        g_loss = lc.adv_weight * g_adv + lc.frame_l1_weight * frames_l1 + lc.flow_l1_weight * flow_l1
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()

    @torch.no_grad()
    def generate(self):
        """Inference: the generator animates the batch's images with sampled motion."""
        with autocast(self.device, self.dtype):
            motion = torch.randn(self.image.shape[0], self.e.fc.out_features, device=self.device)
            return self.g_fwd(self.image, motion)[0]

