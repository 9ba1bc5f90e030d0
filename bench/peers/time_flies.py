"""Time Flies in PyTorch, layer for layer and loss for loss the same as tlgen's
(`tlgen.models.time_flies`, `tlgen.losses.style`, `tlgen.families.time_flies.training`).

Modules carry tlgen's names (VGG "conv1_1" ..., the generator's "video_encoder.conv1_1",
"decoder.dec4_1" ...), so tlgen's parameters copy in by path (`load`, kernels transposed to
(out, in, kh, kw)); activations are NCHW. The training step: the three output frames of each
5-frame clip, a discriminator step (logistic), then the generator step with the six losses;
E_GV trained by SGD, the decoder and D by Adam, VGG-19 frozen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.peers.common import autocast, count_parameters, load_tree
from bench.peers.dtvnet import Conv3dPyramid
from tlgen.models.pixels import frame_shape

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
VGG = (("conv1_1", 3, 64), ("conv1_2", 64, 64), ("conv2_1", 64, 128), ("conv2_2", 128, 128),
       ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv3_4", 256, 256),
       ("conv4_1", 256, 512))
TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
DECODER = (("dec4_1", 512, 256), ("dec3_4", 256, 256), ("dec3_3", 256, 256), ("dec3_2", 256, 256),
           ("dec3_1", 256, 128), ("dec2_2", 128, 128), ("dec2_1", 128, 64), ("dec1_2", 64, 64),
           ("dec1_1", 64, 3))
EPS = 1e-5


def conv(layer: nn.Conv2d, x, padding: str):
    x = F.pad(x, (1, 1, 1, 1), mode="reflect") if padding == "reflect" else F.pad(x, (1, 1, 1, 1))
    return layer(x)


def haar_pool(x):
    p00, p01, p10, p11 = x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]
    return ((p00 + p01 + p10 + p11) / 2,
            ((-p00 + p01 - p10 + p11) / 2, (-p00 - p01 + p10 + p11) / 2, (p00 - p01 - p10 + p11) / 2))


def haar_unpool(ll, high):
    lh, hl, hh = high
    q = torch.stack([(ll - lh - hl + hh) / 2, (ll + lh - hl - hh) / 2,
                     (ll - lh + hl - hh) / 2, (ll + lh + hl + hh) / 2], dim=-1)
    n, c, h, w, _ = q.shape
    return q.view(n, c, h, w, 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(n, c, 2 * h, 2 * w)


class VGG19(nn.Module):
    """VGG-19 to relu4_1: `forward(images in [0, 1], pool, padding)` -> (taps, highs)."""

    def __init__(self):
        super().__init__()
        for name, cin, cout in VGG:
            self.add_module(name, nn.Conv2d(cin, cout, 3))

    def forward(self, images, pool="max", padding="zero"):
        x = (images - MEAN.to(images)) / STD.to(images)
        taps, highs = {}, []
        for name, _, _ in VGG:
            if name.endswith("_1") and name != "conv1_1":
                if pool == "haar":
                    x, high = haar_pool(x)
                    highs.append(high)
                else:
                    x = F.max_pool2d(x, 2)
            x = F.relu(conv(getattr(self, name), x, padding))
            if name.replace("conv", "relu") in TAPS:
                taps[name.replace("conv", "relu")] = x
        return taps, highs


def class_weights(masks, classes: int, size):
    one_hot = F.one_hot(masks.long(), classes).permute(0, 3, 1, 2).float()
    return F.avg_pool2d(one_hot, masks.shape[1] // size[0]) if masks.shape[1] != size[0] else one_hot


def class_stats(x, w):
    count = w.sum((2, 3))
    safe = count.clamp(min=1e-6)[..., None]
    mean = torch.einsum("bshw,bchw->bsc", w, x) / safe
    var = torch.einsum("bshw,bchw->bsc", w, x * x) / safe - mean * mean
    return mean, var.clamp(min=0.0), count


def classwise_adain(x, y, wx, wy, noise=None):
    mx, vx, _ = class_stats(x, wx)
    my, vy, cy = class_stats(y, wy)
    mall, vall, _ = class_stats(y, torch.ones_like(y[:, :1]))
    present = (cy >= 1.0)[..., None]
    my, vy = torch.where(present, my, mall), torch.where(present, vy, vall)
    scale = (vy + EPS).sqrt() * (vx + EPS).rsqrt()
    mix = lambda v: torch.einsum("bshw,bsc->bchw", wx, v)
    return mix(scale) * x - mix(scale * mx) + mix(my) * (1.0 if noise is None else noise)


class VideoEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1_1, self.conv1_2, self.conv2_1 = nn.Conv2d(9, 64, 3), nn.Conv2d(64, 64, 3), nn.Conv2d(64, 128, 3)

    def forward(self, clip):                                  # (B, 3, 3, H, W)
        b, f, c, h, w = clip.shape
        x = ((clip - MEAN[:, None].to(clip)) / STD[:, None].to(clip)).reshape(b, f * c, h, w)
        relu1_1 = F.relu(conv(self.conv1_1, x, "zero"))
        x = F.max_pool2d(F.relu(conv(self.conv1_2, relu1_1, "zero")), 2)
        return relu1_1, F.relu(conv(self.conv2_1, x, "zero"))


class Decoder(nn.Module):
    def __init__(self, classes: int):
        super().__init__()
        self.classes = classes
        for name, cin, cout in DECODER:
            self.add_module(name, nn.Conv2d(cin, cout, 3))

    def forward(self, content, highs, relu1_1, relu2_1, image_masks, clip_masks, noise=None):
        c = lambda x, name: F.relu(conv(getattr(self, name), x, "reflect"))
        w = lambda masks, f: class_weights(masks, self.classes, f.shape[2:])
        x = haar_unpool(c(content, "dec4_1"), highs[2])
        for name in ("dec3_4", "dec3_3", "dec3_2"):
            x = c(x, name)
        x = c(haar_unpool(c(x, "dec3_1"), highs[1]), "dec2_2")
        x = classwise_adain(x, relu2_1, w(image_masks, x), w(clip_masks, relu2_1))
        x = c(haar_unpool(c(x, "dec2_1"), highs[0]), "dec1_2")
        x = classwise_adain(x, relu1_1, w(image_masks, x), w(clip_masks, relu1_1), noise)
        return conv(self.dec1_1, x, "reflect")


class Generator(nn.Module):
    def __init__(self, classes: int):
        super().__init__()
        self.video_encoder, self.decoder = VideoEncoder(), Decoder(classes)

    def forward(self, encoded, clip, image_masks, clip_masks, noise=None):
        taps, highs = encoded
        relu1_1, relu2_1 = self.video_encoder(clip)
        return self.decoder(taps["relu4_1"], highs, relu1_1, relu2_1, image_masks, clip_masks, noise)


class Discriminator(nn.Module):
    """(reference clip, clip), each (B, 3, 3, H, W) in [0, 1] -> one logit per pair."""

    def __init__(self, size: tuple[int, int], width: int, max_width: int):
        super().__init__()
        self.pyramid = Conv3dPyramid(6, (3, *size), width, max_width, 1, "instance", True)

    def forward(self, reference, clip):
        x = torch.cat([reference, clip], dim=2).permute(0, 2, 1, 3, 4) * 2 - 1   # (B, 6, T, H, W)
        return self.pyramid(x)[:, 0].float()


# ----------------------------------------------------------------------------- losses

def whiten(images, eps=1e-3):
    b, c = images.shape[:2]
    x = images.reshape(b, c, -1)
    x = x - x.mean(-1, keepdim=True)
    cov = x @ x.transpose(1, 2) / x.shape[-1] + eps * torch.eye(c, device=images.device)
    return torch.linalg.solve_triangular(torch.linalg.cholesky(cov), x, upper=False).reshape(images.shape)


def _norm(x):
    return (x.square().sum(-1) + 1e-12).sqrt()


def _classwise(per_class, wa, wb):
    both = ((wa.sum((2, 3)) >= 1.0) & (wb.sum((2, 3)) >= 1.0)).float()
    return ((per_class * both).sum(1) / both.sum(1).clamp(min=1.0)).mean()


def losses(phi_out, phi_target, enc_image, enc_out, image, out, alpha, out_masks, target_masks,
           flow_real, flow_fake, real_masks, fake_masks, gram_out, gram_ref, cycle_masks, classes):
    """tlgen's perceptual, content, style, flow and cycle terms."""
    w = lambda masks, f: class_weights(masks, classes, f.shape[2:])
    mse = lambda a, b: (a - b).square().mean()
    terms = {"perceptual": sum(mse(phi_out[k], phi_target[k]) for k in phi_out)}
    features = mse(enc_image[0]["relu4_1"], enc_out[0]["relu4_1"]) + sum(
        mse(torch.stack(ha), torch.stack(hb)) for ha, hb in zip(enc_image[1], enc_out[1]))
    terms["content"] = alpha * features + (1 - alpha) * mse(whiten(image), whiten(out))
    style = 0.0
    for k in phi_out:
        wa, wb = w(out_masks, phi_out[k]), w(target_masks, phi_target[k])
        ma, va, _ = class_stats(phi_out[k], wa)
        mb, vb, _ = class_stats(phi_target[k], wb)
        gap = _norm(ma - mb) + _norm((va + 1e-8).sqrt() - (vb + 1e-8).sqrt())
        style = style + _classwise(gap, wa, wb)
    terms["style"] = style
    flow = 0.0
    for (r0, r1), (g0, g1) in zip(flow_real, flow_fake):
        for k in r0:
            wr, wg = w(real_masks, r0[k]), w(fake_masks, g0[k])
            fr, fg = class_stats(r1[k] - r0[k], wr)[0], class_stats(g1[k] - g0[k], wg)[0]
            flow = flow + _classwise((fr - fg).abs().mean(-1), wr, wg)
    terms["flow"] = flow

    def gram(f, wt):
        count = wt.sum((2, 3)).clamp(min=1e-6)
        return torch.einsum("bshw,bchw,bdhw->bscd", wt, f, f) / (count[..., None, None] * f.shape[1])
    wa, wb = w(cycle_masks[0], gram_out), w(cycle_masks[1], gram_ref)
    diff = gram(gram_out, wa) - gram(gram_ref, wb)
    terms["cycle"] = _classwise(_norm(diff.flatten(2)), wa, wb)
    return terms


# ----------------------------------------------------------------------------- the step

def load(module: nn.Module, params) -> None:
    """Copies a tlgen parameter tree into a peer module by path (conv kernels transposed)."""
    load_tree(module, params, torch_layout=True)


class Peer:
    """Time Flies training step on a fixed batch (random VGG-19 weights: the speed is the same)."""

    def __init__(self, config, batch: dict, device: torch.device, *, compile: bool):
        m, o, lc = config.model, config.optim, config.loss
        self.device, self.dtype, self.lc = device, str(config.dtype), lc
        self.classes, self.size = int(m.num_classes), frame_shape(config.data.image_size)
        self.frames = torch.from_numpy(batch["frames"]).to(device).float().div(255).permute(0, 1, 4, 2, 3)
        self.masks = torch.from_numpy(batch["masks"]).to(device).long()
        self.image = torch.from_numpy(batch["mean"]).to(device).float().div(255).permute(0, 3, 1, 2).flip(-1)
        self.vgg = VGG19().to(device).requires_grad_(False)
        self.g = Generator(self.classes).to(device)
        self.d = Discriminator(self.size, int(m.d_width), int(m.d_max_width)).to(device)
        self.opt_e = torch.optim.SGD(self.g.video_encoder.parameters(), lr=o.e.lr, momentum=o.e.momentum,
                                     weight_decay=o.e.weight_decay)
        self.opt_g = torch.optim.Adam(self.g.decoder.parameters(), lr=o.g.lr, betas=(o.g.b1, o.g.b2), eps=o.g.eps)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=o.d.lr, betas=(o.d.b1, o.d.b2), eps=o.d.eps)
        self.noise, self.sigma_z, self.blur = bool(m.noise), float(m.sigma_z), float(m.noise_blur)
        self.g_fwd = torch.compile(self.g) if compile else self.g
        self.steps = 0
        self.parameters = {"g": count_parameters(self.g), "d": count_parameters(self.d)}
        self.frames_per_generate = 8

    def smoothed_noise(self, batch: int, count: int):
        """(batch·count, 64, H, W): N(1, σ_z²) noise smoothed by the 3x3x3 Gaussian."""
        g = torch.exp(-0.5 * torch.arange(-1.0, 2.0, device=self.device) ** 2 / self.blur ** 2)
        g = g / g.sum()
        k = (g[:, None, None] * g[None, :, None] * g[None, None, :])[None, None]
        h, w = self.size
        white = torch.randn(batch * 64, 1, count + 2, h + 2, w + 2, device=self.device)
        z = F.conv3d(white, k).view(batch, 64, count, h, w)
        return 1 + self.sigma_z * z.permute(2, 0, 1, 3, 4).reshape(count * batch, 64, h, w)

    def outputs(self, noise):
        b = self.frames.shape[0]
        encoded = self.vgg(self.image, "haar", "reflect")
        encoded = ({k: v.repeat(3, 1, 1, 1) for k, v in encoded[0].items()},
                   [tuple(x.repeat(3, 1, 1, 1) for x in h) for h in encoded[1]])
        clips = torch.cat([self.frames[:, t:t + 3] for t in range(3)])
        clip_masks = torch.cat([self.masks[:, t] for t in range(3)])
        image_masks = self.masks[:, 0].flip(-1)
        out = self.g_fwd(encoded, clips, image_masks.repeat(3, 1, 1), clip_masks, noise)
        return out, torch.stack([out[t * b:(t + 1) * b] for t in range(3)], dim=1), image_masks

    def generator_losses(self, out, clip, image_masks, alpha):
        b = self.frames.shape[0]
        targets = torch.cat([self.frames[:, t].flip(-1) for t in range(3)])
        target_masks = torch.cat([self.masks[:, t].flip(-1) for t in range(3)])
        phi_out, phi_target = self.vgg(out)[0], self.vgg(targets)[0]
        part = lambda f, t: {k: v[t * b:(t + 1) * b] for k, v in f.items()}
        enc_image = self.vgg(self.image, "haar", "reflect")
        enc_image = ({k: v.repeat(3, 1, 1, 1) for k, v in enc_image[0].items()},
                     [tuple(x.repeat(3, 1, 1, 1) for x in h) for h in enc_image[1]])
        terms = losses(phi_out, phi_target, enc_image, self.vgg(out, "haar", "reflect"),
                       self.image.repeat(3, 1, 1, 1), out, alpha, image_masks.repeat(3, 1, 1), target_masks,
                       [(part(phi_target, 0), part(phi_target, t)) for t in (1, 2)],
                       [(part(phi_out, 0), part(phi_out, t)) for t in (1, 2)],
                       self.masks[:, 0].flip(-1), image_masks,
                       self.g.video_encoder(clip)[1], self.g.video_encoder(self.frames[:, :3])[1],
                       (image_masks, self.masks[:, 0]), self.classes)
        terms["adv"] = F.softplus(-self.d(self.frames[:, :3], clip)).mean()
        return terms

    def step(self):
        b = self.frames.shape[0]
        noise = self.smoothed_noise(b, 3) if self.noise else None
        real = self.frames[:, :3]
        with autocast(self.device, self.dtype):
            with torch.no_grad():
                _, fake, _ = self.outputs(noise)
            d_loss = (F.softplus(-self.d(real, real.flip(-1))).mean() + F.softplus(self.d(real, fake)).mean())
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        alpha = float(self.lc.alpha_decay) ** self.steps
        with autocast(self.device, self.dtype):
            out, clip, image_masks = self.outputs(noise)
            terms = self.generator_losses(out, clip, image_masks, alpha)
            total = terms["adv"] + sum(float(self.lc[k]) * terms[k]
                                       for k in ("perceptual", "content", "style", "flow", "cycle"))
        self.opt_e.zero_grad(set_to_none=True)
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        self.opt_e.step()
        self.opt_g.step()
        self.steps += 1

    @torch.no_grad()
    def generate(self):
        """Inference: 8 frames of one animation (8 windows of 3 reference frames)."""
        image = self.image[:1]
        encoded = self.vgg(image, "haar", "reflect")
        encoded = ({k: v.repeat(8, 1, 1, 1) for k, v in encoded[0].items()},
                   [tuple(x.repeat(8, 1, 1, 1) for x in h) for h in encoded[1]])
        clips = self.frames[:1, :3].repeat(8, 1, 1, 1, 1)
        masks = self.masks[:1, 0].repeat(8, 1, 1)
        with autocast(self.device, self.dtype):
            return self.g_fwd(encoded, clips, masks, masks, self.smoothed_noise(1, 8) if self.noise else None)
