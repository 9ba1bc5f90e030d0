"""ADA's `bgc` augmentation of clips: the geometric stage against ADA's own steps written in
PyTorch (reflect padding by the margin, sym6 upsampling, `affine_grid` + `grid_sample`,
downsampling), exact blits, one transform for every frame of a clip, the probabilities of the
draws, sharding over clips, and the configuration that selects it."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tlgen.losses import ada_augment as ada, diffaugment
from tlgen.train.gan import clip_augmentation

torch = __import__("torch") if os.environ.get("TLGEN_REQUIRE_TORCH") else pytest.importorskip("torch")
F = torch.nn.functional
apply_transforms, augment_clips = jax.jit(ada.apply_transforms), jax.jit(ada.augment_clips)
bgc_transforms = jax.jit(ada.bgc_transforms, static_argnums=(1, 3))


def _upfirdn_torch(x, f, up, down, pads, flip):
    """StyleGAN2's `upfirdn2d` with a separable filter (zero-stuff, pad or crop, filter, keep
    every down-th sample); `flip`: correlate with f instead of convolving."""
    n, c, h, w = x.shape
    if up > 1:
        stuffed = torch.zeros(n, c, h, up, w, up, dtype=x.dtype)
        stuffed[:, :, :, 0, :, 0] = x
        x = stuffed.reshape(n, c, h * up, w * up)
    p0, p1 = pads
    x = F.pad(x, [max(p0, 0), max(p1, 0)] * 2)
    x = x[:, :, max(-p0, 0):x.shape[2] - max(-p1, 0), max(-p0, 0):x.shape[3] - max(-p1, 0)]
    f = torch.as_tensor(f, dtype=x.dtype)
    f = f if flip else f.flip(0)
    x = F.conv2d(x, f[None, None, None, :].repeat(c, 1, 1, 1), groups=c)
    x = F.conv2d(x, f[None, None, :, None].repeat(c, 1, 1, 1), groups=c)
    return x[:, :, ::down, ::down]


def _ada_geometry_torch(image: np.ndarray, g_inv: np.ndarray) -> np.ndarray:
    """ADA's geometric execution step by step on one image (C, H, W), float64."""
    x = torch.as_tensor(image[None], dtype=torch.float64)
    _, c, h, w = x.shape
    f, hz = ada.SYM6, len(ada.SYM6) // 4
    mat = lambda rows: torch.tensor(rows, dtype=torch.float64)
    translate = lambda tx, ty: mat([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
    scale = lambda sx, sy: mat([[sx, 0, 0], [0, sy, 0], [0, 0, 1]])
    g = torch.as_tensor(g_inv, dtype=torch.float64)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    corners = g @ mat([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]]).t()
    margin = torch.cat([-corners[:2], corners[:2]]).max(dim=1).values + mat([hz * 2 - cx, hz * 2 - cy] * 2)
    margin = margin.clamp(min=0).minimum(mat([w - 1, h - 1] * 2)).ceil()
    mx0, my0, mx1, my1 = (int(m) for m in margin)
    x = F.pad(x, [mx0, mx1, my0, my1], mode="reflect")
    g = translate((mx0 - mx1) / 2, (my0 - my1) / 2) @ g
    x = _upfirdn_torch(x, f, 2, 1, ((len(f) + 1) // 2, (len(f) - 2) // 2), False) * 4
    g = translate(-0.5, -0.5) @ scale(2, 2) @ g @ scale(0.5, 0.5) @ translate(0.5, 0.5)
    shape = [1, c, (h + hz * 2) * 2, (w + hz * 2) * 2]
    g = scale(2 / x.shape[3], 2 / x.shape[2]) @ g @ scale(shape[3] / 2, shape[2] / 2)
    grid = F.affine_grid(g[None, :2, :], shape, align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    x = _upfirdn_torch(x, f, 1, 2, (-hz * 2 + (len(f) - 1) // 2, -hz * 2 + (len(f) - 2) // 2), True)
    return x[0].numpy()


@pytest.mark.parametrize("size", [(16, 24), (20, 12)])
def test_geometry_equals_adas_steps_per_clip(size):
    """Every clip equals ADA's pipeline run on that clip alone (its own margin), to float32
    rounding, for transforms drawn at p = 1 and p = 0.5 (identity among them)."""
    h, w = size
    clips = np.asarray(jax.random.uniform(jax.random.key(0), (6, 2, h, w, 3), minval=-1, maxval=1),
                       np.float64)
    for p, seed in ((1.0, 1), (0.5, 2)):
        g_inv, _ = bgc_transforms(jax.random.key(seed), 6, p, size)
        out = np.asarray(apply_transforms(jnp.asarray(clips, jnp.float32), g_inv, None))
        for b in range(6):
            stacked = clips[b].transpose(0, 3, 1, 2).reshape(6, h, w)
            ref = _ada_geometry_torch(stacked, np.asarray(g_inv[b], np.float64))
            np.testing.assert_allclose(out[b], ref.reshape(2, 3, h, w).transpose(0, 2, 3, 1), atol=2e-5)


def test_identity_and_integer_translation_are_exact():
    """The sym6 round trip is a perfect reconstruction: p = 0 returns the clip, and an integer
    translation returns the reflect-padded clip shifted (NumPy)."""
    clips = jax.random.uniform(jax.random.key(3), (2, 3, 12, 20, 3), minval=-1, maxval=1)
    g_inv, colour = bgc_transforms(jax.random.key(4), 2, 0.0, (12, 20))
    np.testing.assert_array_equal(np.asarray(g_inv), np.broadcast_to(np.eye(3), (2, 3, 3)))
    np.testing.assert_array_equal(np.asarray(colour), np.broadcast_to(np.eye(4), (2, 4, 4)))
    np.testing.assert_allclose(np.asarray(augment_clips(jax.random.key(4), clips, 0.0)),
                               np.asarray(clips), atol=2e-6)
    tx, ty = 5, -3                                          # output pixel (x, y) shows input (x - 5, y + 3)
    shift = jnp.broadcast_to(jnp.array([[1.0, 0, -tx], [0, 1, -ty], [0, 0, 1]]), (2, 3, 3))
    padded = np.pad(np.asarray(clips), ((0, 0), (0, 0), (3, 3), (5, 5), (0, 0)), mode="reflect")
    expected = padded[:, :, 3 - ty:3 - ty + 12, 5 - tx:5 - tx + 20]
    np.testing.assert_allclose(np.asarray(apply_transforms(clips, shift, None)), expected, atol=2e-6)


def test_one_transform_for_every_frame_of_a_clip():
    """A frame alone gets what it gets inside its clip, colour included: the draws depend on
    the clip, not on its frames."""
    clips = jax.random.uniform(jax.random.key(5), (4, 3, 16, 16, 3), minval=-1, maxval=1)
    key = jax.random.key(6)
    out = np.asarray(augment_clips(key, clips, 1.0))
    for f in range(3):
        np.testing.assert_allclose(np.asarray(augment_clips(key, clips[:, f:f + 1], 1.0))[:, 0], out[:, f],
                                   atol=2e-6)
    colour = np.asarray(bgc_transforms(key, 4, 1.0, (16, 16))[1])
    rgb = np.asarray(clips, np.float64)
    expected = np.einsum("bij,bfhwj->bfhwi", colour[:, :3, :3], rgb) + colour[:, None, None, None, :3, 3]
    np.testing.assert_allclose(np.asarray(apply_transforms(clips, None, colour)), expected, atol=2e-6)


def test_sharded_over_clips_equals_one_device():
    """On 8 devices with the clips sharded, a step's augmentation (value and the gradient a
    generator gets through it) is the one device's: each clip is warped on its own."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    clips = jax.random.uniform(jax.random.key(8), (8, 2, 12, 12, 3), minval=-1, maxval=1)
    key = jax.random.key(9)
    value_and_grad = jax.jit(jax.value_and_grad(lambda x: jnp.sum(jnp.sin(ada.augment_clips(key, x, 1.0)))))
    one = value_and_grad(clips)
    mesh = Mesh(np.array(jax.devices()[:8]), ("data",))
    sharded = value_and_grad(jax.device_put(clips, NamedSharding(mesh, P("data"))))
    assert len(sharded[1].sharding.device_set) == 8
    np.testing.assert_allclose(float(sharded[0]), float(one[0]), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(sharded[1]), np.asarray(one[1]), rtol=1e-5, atol=1e-5)   # float sums


def test_draw_probabilities():
    """Mirrors come from the x-flip alone (probability p / 2) and the luma flip alone (p / 2);
    hue and saturation keep the grey axis; every draw is off at p = 0."""
    n = 20000
    for p in (1.0, 0.4):
        drawn = bgc_transforms(jax.random.key(7), n, p, (32, 32))
        g_inv, colour = (np.asarray(a, np.float64) for a in drawn)
        mirrored = np.mean(np.linalg.det(g_inv[:, :2, :2]) < 0)
        luma_flipped = np.mean(np.linalg.det(colour[:, :3, :3]) < 0)
        tol = 4 * np.sqrt(0.25 / n)
        assert abs(mirrored - p / 2) < tol and abs(luma_flipped - p / 2) < tol, (p, mirrored, luma_flipped)
        grey = colour[:, :3, :3] @ np.ones(3)               # (1, 1, 1) maps onto the grey axis
        np.testing.assert_allclose(grey - grey.mean(axis=1, keepdims=True), 0, atol=1e-5)


def test_config_selects_the_operations():
    """(An unknown name is one sentence and exit 2: tests/test_stylegan_v_family.py.)"""
    from ml_collections import ConfigDict
    assert clip_augmentation(ConfigDict(dict(augment="ada", augment_ops="bgc"))) is ada.augment_clips
    assert clip_augmentation(ConfigDict(dict(augment="none", augment_ops="bgc"))) is None
    assert clip_augmentation(ConfigDict(dict(augment="ada"))) is diffaugment.augment_clips   # older configs
