"""Video decoding and encoding with the ffmpeg binary shipped by imageio-ffmpeg.

Decoding streams raw RGB frames from an ffmpeg subprocess (one frame in memory at a time),
optionally resized (keeping aspect) and center-cropped by ffmpeg itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import itertools
import logging
import os
import re
import subprocess
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from fractions import Fraction

import imageio_ffmpeg
import numpy as np

from tlgen.errors import UserError
from tlgen.files import not_a_file

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".gif", ".m4v")


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What ffmpeg reports about a video before decoding it."""
    path: str
    width: int
    height: int
    fps: float
    duration: float            # the container's: its longest stream's
    has_audio: bool = False

    @property
    def expected_frames(self) -> int:
        """Frame count implied by duration x fps (0 when either is unknown)."""
        return int(round(self.duration * self.fps)) if self.fps > 0 and self.duration > 0 else 0


def _ffmpeg_reason(text: str) -> str:
    lines = [re.sub(r"^(\[[^\]]*\]\s*)+", "", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("frame=")]   # not progress
    return lines[-1] if lines else "no video stream found"


class _SourceSize(logging.Filter):
    """Drops imageio-ffmpeg's warning that a rotated video's upright frames differ in size from
    its stored ones: that is what ffmpeg's autorotation gives, and `probe_video` reports."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is different from the source frame size" not in record.getMessage()


logging.getLogger("imageio_ffmpeg").addFilter(_SourceSize())


def probe_video(path: str) -> VideoInfo:
    """Reads a video's size, frame rate and duration; UserError if it is missing or ffmpeg
    cannot open it."""
    if not os.path.isfile(path):
        raise UserError(f"{path} {not_a_file(path)}; give the path of a video file.")
    if os.path.getsize(path) == 0:
        raise UserError(f"{path} is empty (0 bytes); give a complete video file.")
    reader = imageio_ffmpeg.read_frames(path)
    try:
        with _exec_follows_fork():
            meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as e:
        if " Audio: " in str(e) and " Video: " not in str(e):
            raise UserError(f"{path} has no video stream (audio only); give a video file.") from None
        raise UserError(f"{path} is not a readable video (ffmpeg: {_ffmpeg_reason(str(e))}); "
                        "check that the file is a complete video.") from None
    finally:
        reader.close()
    width, height = meta["size"]       # of the frames ffmpeg gives: upright, rotation applied
    return VideoInfo(path, int(width), int(height), float(meta.get("fps") or 0.0),
                     float(meta.get("duration") or 0.0), bool(meta.get("audio_codec")))


def _scale_filter(size: tuple[int, int]) -> str:
    """ffmpeg's resize-and-center-crop to size=(H, W), cropping where `images.resize_crop`
    does (the excess halved and rounded down, at any pixel: `exact`), so a video's frames
    and the label maps or stills fitted beside them line up to the pixel."""
    h, w = size
    return (f"scale=w={w}:h={h}:force_original_aspect_ratio=increase:flags=area,"
            f"crop={w}:{h}:trunc((iw-{w})/2):trunc((ih-{h})/2):exact=1")


def iter_video_frames(path: str, size: tuple[int, int] | None = None,
                      info: VideoInfo | None = None, times: list | None = None) -> Iterator[np.ndarray]:
    """Yields uint8 (H, W, 3) RGB frames of `path` one at a time.

    `size=(H, W)` resizes keeping aspect (area filter) and center-crops. `times`, a list, gets
    each frame's presentation time (seconds, as stored: variable frame rates and GIF delays
    kept) once the whole video is decoded. Raises UserError for unreadable or truncated files
    (decode errors, or frames ending well before the file's duration).
    """
    info = info or probe_video(path)
    h, w = size if size else (info.height, info.width)
    frame_bytes = h * w * 3
    count = 0
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r", suffix=".txt") as stamps:
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-i", path,
               "-an", "-sn", "-fps_mode", "passthrough"]
        if size:
            cmd += ["-vf", _scale_filter(size)]
        cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-enc_time_base", "demux",
                "-stats_enc_pre", stamps.name, "-stats_enc_pre_fmt", "{pts} {tb}", "-"]
        proc = _popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        try:
            while True:
                buf = proc.stdout.read(frame_bytes)
                if len(buf) < frame_bytes:
                    break
                count += 1
                yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
        finally:
            proc.stdout.close()
            if proc.poll() is None and count and len(buf) == frame_bytes:
                proc.kill()  # the consumer stopped early
            proc.wait()
        err.seek(0)
        errors = err.read().decode(errors="replace")
        pts = _presentation_times(stamps.read(), count)
    if proc.returncode not in (0, -9):
        raise UserError(f"{path} is not a readable video (ffmpeg: {_ffmpeg_reason(errors)}); "
                        "check that the file is a complete video.")
    interval = 1.0 / info.fps if info.fps > 0 else 0.0
    span = pts[-1] - pts[0] + interval if pts is not None else count * interval
    short = info.duration > 0 and interval and span < 0.9 * info.duration - interval
    # Frames ending early are a cut file, unless an audio track lasts longer and ffmpeg decoded
    # the frames there are without complaint.
    if count == 0 or (short and (not info.has_audio or errors.strip())) or (
            errors.strip() and not info.expected_frames):
        raise UserError(f"{path} is truncated or corrupt: decoded {count} of "
                        f"{info.expected_frames or 'some'} frames{_reason(errors)}; "
                        "re-export or re-download the video.")
    if short:
        log.warning("%s: its frames cover %.4g s of the %.4g s the file lasts (its audio may be "
                    "longer, or the video is cut short)", path, span, info.duration)
    if errors.strip():
        log.warning("%s: ffmpeg reported decode errors: %s", path, _ffmpeg_reason(errors))
    if times is not None:
        if pts is None:
            log.warning("%s: ffmpeg gave no increasing frame times; frames are taken 1/%g s apart",
                        path, info.fps)
            pts = np.arange(count) * interval
        times.extend((pts - pts[0]).tolist())


def _reason(errors: str) -> str:
    return f" ({_ffmpeg_reason(errors)})" if errors.strip() else ""


def _presentation_times(stats: str, count: int) -> np.ndarray | None:
    """Seconds (float64) from ffmpeg's per-frame "{pts} {tb}" lines: one per frame decoded,
    increasing; None when they are not."""
    try:
        rows = [line.split() for line in stats.splitlines() if line.strip()]
        pts = np.asarray([int(p) * Fraction(tb) for p, tb in rows[:count]], np.float64)
    except (ValueError, ZeroDivisionError):
        return None
    return pts if len(pts) == count and count and np.all(np.diff(pts) > 0) else None


def first_frames(path: str, size: tuple[int, int], count: int, info: VideoInfo | None = None
                 ) -> np.ndarray:
    """uint8 (N, H, W, 3): the first `count` frames of `path` (fewer if it is shorter), decoded
    at `size`; only those are read (`info`: its `probe_video`, when already read)."""
    return np.stack(list(itertools.islice(iter_video_frames(path, size, info), count)))


def read_video(path: str, size: tuple[int, int] | None = None) -> tuple[np.ndarray, float]:
    """Decodes a whole (short) video: uint8 (T, H, W, 3) frames and its frame rate."""
    info = probe_video(path)
    frames = np.stack(list(iter_video_frames(path, size, info)))
    return frames, info.fps


class VideoWriter:
    """Streams uint8 (H, W, 3) frames (or (H, W) grey) to an H.264 yuv420p mp4 through ffmpeg,
    one at a time; odd sizes are edge-padded. Used as a context manager: leaving it normally
    finishes the file and raises OSError (ENOSPC when the disk filled up) if ffmpeg could not
    write it all; leaving it by an exception stops ffmpeg."""

    def __init__(self, path: str, fps: float, quality_crf: int = 18):
        self.path, self.fps, self.crf = path, fps, quality_crf
        self._proc = self._pad = None
        self._err = tempfile.TemporaryFile()

    def write(self, frame: np.ndarray) -> None:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8:
            raise TypeError(f"{self.path}: frames of {frame.dtype}; give uint8 (0..255)")
        if frame.ndim == 2:
            frame = np.repeat(frame[..., None], 3, axis=-1)
        if self._proc is None:
            h, w = frame.shape[:2]
            self._pad = ((0, h % 2), (0, w % 2), (0, 0))
            if h % 2 or w % 2:
                log.warning("%s: its %dx%d frames are stored as %dx%d, the last row or column "
                            "repeated (H.264 in yuv420p takes even sizes)", self.path, h, w,
                            h + h % 2, w + w % 2)
            cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-y",
                   "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w + w % 2}x{h + h % 2}",
                   "-r", f"{float(self.fps):g}", "-i", "-", "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                   "-crf", str(self.crf), "-movflags", "+faststart", self.path]
            self._proc = _popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._err)
        frame = frame[..., :3]
        if self._pad[0][1] or self._pad[1][1]:
            frame = np.pad(frame, self._pad, mode="edge")
        try:                           # no copy of a contiguous frame: long videos keep a flat heap
            self._proc.stdin.write(memoryview(np.ascontiguousarray(frame)))
        except BrokenPipeError:
            pass                       # ffmpeg stopped; its exit status and message say why

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, kind, *_) -> None:
        with self._err:
            if self._proc is None:
                if kind is None:
                    raise ValueError(f"no frames to write to {self.path}")
                return
            if kind is not None:
                self._proc.kill()
                self._proc.wait()
                return
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.close()
            code = self._proc.wait()
            self._err.seek(0)
            errors = self._err.read().decode(errors="replace")
        if code != 0:
            full = "No space left on device" in errors
            raise OSError(errno.ENOSPC if full else errno.EIO,
                          "No space left on device" if full else f"ffmpeg failed ({_ffmpeg_reason(errors)})",
                          self.path)


def write_video(path: str, frames: Iterable[np.ndarray] | np.ndarray, fps: float,
                quality_crf: int = 18) -> None:
    """Writes uint8 (H, W, 3) frames to an mp4 (see `VideoWriter`), streaming them."""
    with VideoWriter(path, fps, quality_crf) as writer:
        for frame in frames:
            writer.write(frame)


def _popen(cmd, **kwargs) -> subprocess.Popen:
    """An ffmpeg subprocess (see `_exec_follows_fork`)."""
    with _exec_follows_fork():
        return subprocess.Popen(cmd, **kwargs)


@contextlib.contextmanager
def _exec_follows_fork():
    """ffmpeg runs in a subprocess whose fork is followed at once by exec: JAX's warning
    about forking a multithreaded process does not apply, and is silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="os.fork\\(\\) was called", category=RuntimeWarning)
        yield
