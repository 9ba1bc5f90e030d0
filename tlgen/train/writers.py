"""Where training results go: metrics.jsonl, TensorBoard events and sample grids/videos."""

from __future__ import annotations

import json
import math
import os

import numpy as np

from tlgen.errors import StorageError
from tlgen.files import STORAGE_ERRNOS, storage_sentence, write_atomic, write_text

SAMPLE_FPS = 8


class MetricWriter:
    """Appends {"step", "split", ...} lines to `metrics.jsonl` and scalars to TensorBoard (`tb/`).

    `resume_step` drops lines of steps after it (written by a run that died before its next
    checkpoint), so the file always tells one consistent history. Disabled writers (processes
    other than 0) do nothing.
    """

    def __init__(self, workdir: str, *, enabled: bool = True, resume_step: int = 0):
        self.enabled = enabled
        self.path = os.path.join(workdir, "metrics.jsonl")
        self._tb = None
        if not enabled:
            return
        _truncate_after(self.path, resume_step)
        # TensorBoard drops the events a died run wrote after `resume_step`, as the file above
        self._tb = _summary_writer()(os.path.join(workdir, "tb"), purge_step=resume_step + 1)

    def write(self, step: int, split: str, metrics: dict) -> None:
        if not self.enabled:
            return
        row = {"step": int(step), "split": split, **{k: _plain(v) for k, v in metrics.items()}}
        try:
            with open(self.path, "a") as f:
                f.write(json.dumps(row) + "\n")
        except OSError as e:
            if e.errno not in STORAGE_ERRNOS:
                raise
            raise StorageError(storage_sentence(e, self.path)) from None
        for key, value in row.items():
            if key not in ("step", "split") and isinstance(value, (int, float)):
                self._tb.add_scalar(f"{split}/{key}", value, int(step))
        self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _summary_writer():
    """tensorboardX's SummaryWriter, imported without PyTorch: tensorboardX imports torch when
    it is installed, only to accept torch tensors, which added 3.5 s to every run's start."""
    import sys
    if "tensorboardX" in sys.modules or "torch" in sys.modules:
        from tensorboardX import SummaryWriter
        return SummaryWriter
    sys.modules["torch"] = None          # `import torch` raises ImportError, which it handles
    try:
        from tensorboardX import SummaryWriter
    finally:
        del sys.modules["torch"]
    return SummaryWriter


def _plain(value):
    value = np.asarray(value)
    return value.item() if value.ndim == 0 else value.tolist()


def read_metrics(path: str) -> list[dict]:
    """The rows of a metrics.jsonl file."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _truncate_after(path: str, step: int) -> None:
    if not os.path.exists(path):
        return
    rows = read_metrics(path)
    kept = [r for r in rows if r["step"] <= step]
    if len(kept) == len(rows):
        return
    write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def image_grid(images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) -> one (rows·H, cols·W, C) image, about square, unused cells black."""
    n, h, w, c = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * h, cols * w, c), images.dtype)
    for i, image in enumerate(images):
        r, q = divmod(i, cols)
        grid[r * h:(r + 1) * h, q * w:(q + 1) * w] = image
    return grid


def write_samples(directory: str, step: int, samples: dict[str, np.ndarray]) -> list[str]:
    """Writes each uint8 sample as `<name>_<step>.png` (images N,H,W,3: one grid) or `.mp4`
    (videos N,T,H,W,3: a grid per frame). Returns the paths."""
    from PIL import Image

    from tlgen.data.video_io import write_video

    os.makedirs(directory, exist_ok=True)
    paths = []
    for name, array in samples.items():
        array = np.asarray(array)
        if array.dtype != np.uint8 or array.ndim not in (4, 5) or array.shape[-1] != 3:
            raise ValueError(f"sample {name!r} must be uint8 (N,H,W,3) or (N,T,H,W,3), "
                             f"got {array.dtype} {array.shape}")
        stem = os.path.join(directory, f"{name}_{step:07d}")
        if array.ndim == 4:
            path = stem + ".png"
            write_atomic(path, lambda p: Image.fromarray(image_grid(array)).save(p))
        else:
            path = stem + ".mp4"
            write_atomic(path, lambda p: write_video(
                p, (image_grid(array[:, t]) for t in range(array.shape[1])), SAMPLE_FPS))
        paths.append(path)
    return paths
