"""Animation functions with a randomly initialized tiny DTVNet (no training needed)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tlgen.errors import UserError
from tlgen.metrics.flow import video_flows
from tlgen.models import dtvnet
from tlgen.synth.animate import Animator, fit_image, segments_needed


@pytest.fixture(scope="module")
def animator():
    gen = dtvnet.Generator(num_frames=4, base_width=4, decoder_width=6, motion_dim=8, content_blocks=1,
                           motion_blocks=1, mapping_layers=1, style_layers=1)
    enc = dtvnet.FlowEncoder(base_width=4, max_width=8, motion_dim=8)
    key = jax.random.key(0, impl="rbg")
    gv = jax.jit(gen.init)(key, jnp.zeros((1, 16, 16, 3)), jnp.zeros((1, 8)))
    ev = jax.jit(enc.init)(key, jnp.zeros((1, 4, 16, 16, 2)))
    return Animator(gv, ev, (16, 16))


def _image(h=16, w=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_same_seed_same_video_different_seed_different_video(animator):
    image = _image()
    a, flows = animator.animate(image, animator.motion_from_seed(1))
    b, _ = animator.animate(image, animator.motion_from_seed(1))
    c, _ = animator.animate(image, animator.motion_from_seed(2))
    assert a.shape == (4, 16, 16, 3) and a.dtype == np.uint8 and flows.shape == (4, 8, 8, 2)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).max() > 0


def test_longer_clips_chain_passes_from_the_last_frame(animator):
    image = _image()
    motion = animator.motion_from_seed(3)
    first, _ = animator.animate(image, motion)
    long, flows = animator.animate(image, motion, num_frames=9)   # 4 + 3 + 3 (trimmed to 9)
    assert long.shape[0] == 9 and flows.shape[0] == 9                # one flow into each frame
    np.testing.assert_array_equal(long[:4], first)
    second, second_flows = animator.animate(first[-1], motion)
    np.testing.assert_array_equal(long[4:7], second[1:])
    np.testing.assert_array_equal(flows[4:7], second_flows[1:])
    assert segments_needed(4, 4) == 1 and segments_needed(5, 4) == 2 and segments_needed(10, 4) == 3


def test_motion_from_reference_video(animator):
    frames = np.stack([np.roll(_image(24, 32), k, axis=1) for k in range(6)])   # scrolling right
    motion = animator.motion_from_reference(frames)
    assert motion.shape == (1, 8)
    np.testing.assert_allclose(motion.std(), 1.0, atol=1e-3)   # normalized per sample
    exactly_t = animator.motion_from_reference(frames[:4])     # T frames: last flow repeated
    left = animator.motion_from_reference(frames[::-1])          # the opposite motion
    assert exactly_t.shape == (1, 8) and float(jnp.abs(left - motion).max()) > 1e-3
    flows = video_flows(np.stack([fit_image(f, animator.image_size)[0] for f in frames[:4]]), animator.flow_method)
    np.testing.assert_array_equal(exactly_t, animator.motion_from_flows(np.concatenate([flows, flows[-1:]])[None]))
    with pytest.raises(UserError, match="has 3 frames; the model needs at least 4"):
        animator.motion_from_reference(frames[:3])


def test_fit_image_resizes_and_center_crops():
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, 10:30] = 255                        # the centre half is white
    fitted, note = fit_image(wide, (16, 16))
    assert fitted.shape == (16, 16, 3) and fitted.min() == 255
    assert note == "input 20x40 resized and center-cropped to 16x16"
    same, note = fit_image(fitted, (16, 16))
    assert same is fitted and note == "input 16x16 used as is"
