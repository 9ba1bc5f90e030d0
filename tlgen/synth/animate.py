"""Animate a still image with a trained DTVNet: motion from a seed or a reference video.

The generator makes `num_frames` frames per pass, frame 0 being the input image itself.
Longer clips chain passes: each continues from the previous pass's last frame with the same
motion vector. Motion comes from N(0, I) (`motion_from_seed`: same seed, same motion) or from
a reference video's optical flows (`motion_from_reference`: flows estimated with the same
OpenCV estimator as `tlgen prepare --flow`, encoded by the flow encoder).

No file I/O here: callers pass decoded uint8 arrays.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tlgen.data.images import resize_crop
from tlgen.errors import UserError
from tlgen.metrics.flow import video_flows
from tlgen.models import dtvnet


_generate = jax.jit(dtvnet.generate, static_argnames="dtype")
_encode = jax.jit(dtvnet.encode_motion, static_argnames="dtype")


def fit_image(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """Resizes (keeping aspect) and center-crops a uint8 image to `size` = (H, W).

    Returns the fitted image and a note saying what was done.
    """
    return resize_crop(image, tuple(size)), f"input {fit_note(image.shape[:2], size)}"


def fit_note(native: tuple[int, int], size: tuple[int, int]) -> str:
    """What fitting (H, W) `native` pictures to `size` does, in words."""
    (h, w), (sh, sw) = native, size
    return f"{h}x{w} used as is" if (h, w) == (sh, sw) else f"{h}x{w} resized and center-cropped to {sh}x{sw}"


def reference_frames(path: str, size: tuple[int, int], count: int, info=None) -> tuple[np.ndarray, str]:
    """The first `count` frames of the video `path` fitted to `size` (H, W) as `fit_image` fits
    an image (ffmpeg decodes only those), and " (what fitting did)" when its frames are of
    another size ("" when of this one). `info`: its `probe_video`, when already read."""
    from tlgen.data.video_io import first_frames, probe_video

    info = info or probe_video(path)
    native = (info.height, info.width)
    frames = first_frames(path, size, count, info)
    return frames, "" if native == tuple(size) else f" ({fit_note(native, size)})"


def segments_needed(num_frames: int, frames_per_pass: int) -> int:
    """Generator passes needed for `num_frames` frames (each pass after the first adds T-1)."""
    if num_frames < 1:
        raise UserError(f"--frames must be at least 1, got {num_frames}.")
    if num_frames <= frames_per_pass or frames_per_pass < 2:
        return 1
    return 1 + -(-(num_frames - frames_per_pass) // (frames_per_pass - 1))


@dataclasses.dataclass
class Animator:
    """A trained generator (+ flow encoder) ready to animate images of `image_size`.

    generator / flow_encoder: flax variables {"params", "batch_stats"} of the networks.
    """
    generator: Any
    flow_encoder: Any
    image_size: tuple[int, int]
    flow_method: str = "dis"
    dtype: Any = jnp.float32

    def __post_init__(self):
        self._model = dtvnet.generator_from_variables(self.generator, self.dtype)

    @property
    def frames_per_pass(self) -> int:
        return self._model.num_frames

    @property
    def motion_dim(self) -> int:
        return self._model.motion_dim

    def motion_from_seed(self, seed: int) -> jax.Array:
        """One motion vector (1, D) drawn from N(0, I) with `seed`."""
        return dtvnet.sample_motion(jax.random.key(seed), 1, self.motion_dim)

    def motion_from_reference(self, frames: np.ndarray, name: str = "the reference video") -> jax.Array:
        """One motion vector (1, D) encoded from the flows of a reference clip.

        frames: uint8 (N, H, W, 3), any size (fitted like the image); the first T+1 frames
        give the T flows the encoder reads. With exactly T frames the last flow is repeated.
        `name` says which video in errors.
        """
        t = self.frames_per_pass
        if len(frames) < t:
            raise UserError(f"{name} has {len(frames)} frame{'s' * (len(frames) != 1)}; the model needs at "
                            f"least {t} (one clip of its {t} frames); use a longer video.")
        fitted = np.stack([fit_image(f, self.image_size)[0] for f in frames[:t + 1]])
        flows = video_flows(fitted, self.flow_method)
        if len(flows) < t:
            flows = np.concatenate([flows, flows[-1:]], axis=0)
        return self.motion_from_flows(flows[None])

    def motion_from_flows(self, flows: np.ndarray) -> jax.Array:
        """Motion vectors (B, D) encoded from T optical flows (B, T, H, W, 2) in pixels."""
        return _encode(self.flow_encoder, jnp.asarray(flows, jnp.float32), dtype=self.dtype)

    def animate(self, image: np.ndarray, motion: jax.Array, num_frames: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Animates a uint8 image (H, W, 3) of `image_size` with motion (1, D).

        Returns uint8 frames (num_frames, H, W, 3) (frame 0 = the generator's rendering of the
        input) and the generator's low-resolution flow into each (num_frames, H/2, W/2, 2) in
        pixels.
        """
        if image.shape[:2] != tuple(self.image_size):
            raise ValueError(f"image is {image.shape[:2]}, expected {self.image_size}; use fit_image")
        t = self.frames_per_pass
        num_frames = t if num_frames is None else num_frames
        frames, flows, start = [], [], jnp.asarray(image[None])
        for k in range(segments_needed(num_frames, t)):     # passes chained on the device
            video, low = _generate(self.generator, dtvnet.to_model_range(start), motion, dtype=self.dtype)
            video = dtvnet.to_uint8(video[0])
            frames.append(video if k == 0 else video[1:])        # a pass starts at the last frame
            flows.append(low[0] if k == 0 else low[0, 1:])
            start = video[-1:]
        return (np.concatenate([np.asarray(f) for f in frames])[:num_frames],
                np.concatenate([np.asarray(f) for f in flows])[:num_frames])
