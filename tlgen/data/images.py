"""Image folders: listing, timestamps (file names or EXIF), loading to uint8 RGB, resizing."""

from __future__ import annotations

import calendar
import datetime as dt
import io
import os
import re

import cv2
import numpy as np

from tlgen.errors import UserError
from tlgen.files import not_a_file

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")

# 2021-06-01T12-00-00, 2021-06-01T12:00:00.5Z, 2021-06-01 12_00_00, with a UTC offset:
# 2021-06-01T12-00-00+02-00 (also +02:00, +0200)
_ISO = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})[T _](\d{2})[-:_](\d{2})[-:_](\d{2})"
                  r"(?:[.,](\d+))?(?:([+-])(\d{2})[-:_]?(\d{2})(?!\d))?")
# 20210601_120000, 20210601-120000, IMG_20210601_120000
_COMPACT = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})[_-](\d{2})(\d{2})(\d{2})(?!\d)")
# Unix seconds (10 digits, 2001-09-09 to 2286, optional fraction): 1622548800.png,
# cam_1622548800.25.jpg; shorter or zero-padded numbers are frame counters (frame_0000000001.png)
_UNIX = re.compile(r"(?<![\d.])([1-9]\d{9})(?:\.(\d+))?(?![\d])")

_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 36867
_SUBSEC_ORIGINAL = 37521


def name_order(name: str) -> tuple:
    """Sort key of file names with numbers by value: img2 before img10 (and img02 before img10)."""
    return tuple(int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", name))), name


def list_images(folder: str) -> list[str]:
    """Image files of `folder` (by extension, not recursive), in name order (`name_order`)."""
    names = [n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)
             and not n.startswith(".") and not os.path.isdir(os.path.join(folder, n))]
    names.sort(key=name_order)
    return [os.path.join(folder, n) for n in names]


def _utc_seconds(y, mo, d, h, mi, s, frac=None) -> float | None:
    try:
        stamp = dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s))
    except ValueError:
        return None
    return calendar.timegm(stamp.timetuple()) + (float("0." + frac) if frac else 0.0)


def time_from_name(name: str) -> float | None:
    """Unix seconds parsed from a file name, or None.

    Accepts ISO-8601 (`2021-06-01T12-00-00[.fff][+02-00]`, `:`/`_` separators too),
    `YYYYMMDD_HHMMSS` and Unix seconds (10 digits, optional fraction). Dates without a UTC
    offset are taken as UTC.
    """
    stem = os.path.splitext(os.path.basename(name))[0]
    m = _ISO.search(stem)
    if m:
        seconds = _utc_seconds(*m.groups()[:7])
        sign, hours, minutes = m.groups()[7:]
        if seconds is None or not sign:
            return seconds
        return seconds - (1 if sign == "+" else -1) * (int(hours) * 3600 + int(minutes) * 60)
    m = _COMPACT.search(stem)
    if m:
        return _utc_seconds(*m.groups())
    m = _UNIX.search(stem)
    if m:
        return float(m.group(1)) + (float("0." + m.group(2)) if m.group(2) else 0.0)
    return None


def time_from_exif(path: str) -> float | None:
    """Unix seconds from EXIF DateTimeOriginal (+ SubSecTimeOriginal), or None."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            ifd = im.getexif().get_ifd(_EXIF_IFD)
    except (OSError, ValueError):
        return None
    value = ifd.get(_DATETIME_ORIGINAL)
    m = re.match(r"(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})", str(value or ""))
    if not m:
        return None
    sub = str(ifd.get(_SUBSEC_ORIGINAL) or "").strip()
    return _utc_seconds(*m.groups(), sub if sub.isdigit() else None)


def _name_list(paths: list[str], limit: int = 3) -> str:
    names = [os.path.basename(p) for p in paths]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def folder_times(folder: str, paths: list[str], interval: float | None) -> np.ndarray:
    """Capture times (Unix seconds, float64) of `paths`, in the given order.

    With an `interval`, frames are that many seconds apart in the given (name) order, as a
    video's frames are with --interval. Else per file: the file name, else EXIF
    DateTimeOriginal; none at all, partly missing or duplicate times are a UserError naming
    the files.
    """
    if interval is not None:
        return np.arange(len(paths), dtype=np.float64) * float(interval)
    times = [time_from_name(p) for p in paths]
    times = [t if t is not None else time_from_exif(p) for p, t in zip(paths, times)]
    missing = [p for p, t in zip(paths, times) if t is None]
    if len(missing) == len(paths):
        raise UserError(
            f"{folder}: cannot tell when the images were taken ({_name_list(paths)} have no "
            "time in their names and no EXIF DateTimeOriginal); name them like "
            "2021-06-01T12-00-00.png or pass --interval SECONDS.")
    if missing:
        unreadable = [p for p in missing if _decode(p) is None]
        if unreadable:
            them = "it" if len(unreadable) == 1 else "them"
            raise UserError(f"{folder}: {_name_list(unreadable)} cannot be read as "
                            f"{'an image' if them == 'it' else 'images'}; re-export {them} as PNG "
                            f"or JPEG or remove {them}.")
        raise UserError(
            f"{folder}: unparseable timestamps in {_name_list(missing)} (other files have times "
            "in their names or EXIF); rename them like 2021-06-01T12-00-00.png, remove them, or "
            "pass --interval SECONDS to space the frames evenly in name order.")
    times = np.asarray(times, np.float64)
    order = np.argsort(times, kind="stable")
    dup = np.flatnonzero(np.diff(times[order]) == 0)
    if dup.size:
        i = order[dup[0]]
        same = [p for p, t in zip(paths, times) if t == times[i]]
        stamp = dt.datetime.fromtimestamp(times[i], dt.timezone.utc)
        raise UserError(f"{folder}: duplicate timestamps: {_name_list(same)} all have time "
                        f"{stamp:%Y-%m-%dT%H:%M:%S}; remove the duplicates, or pass --interval "
                        "SECONDS to space the frames evenly in name order.")
    return times


# EXIF orientation -> how the stored pixels turn upright (PIL's exif_transpose).
_ORIENTATIONS = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
                 5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1),
                 7: lambda a: np.rot90(a, 2).swapaxes(0, 1), 8: lambda a: np.rot90(a, 1)}
_ORIENTATION = 0x0112


def _exif_orientation(data: np.ndarray) -> int:
    """The EXIF orientation (1..8) of an image file's bytes; 1 when it has none."""
    from PIL import Image
    try:
        with Image.open(io.BytesIO(data)) as im:
            return int(im.getexif().get(_ORIENTATION, 1))
    except (OSError, ValueError, TypeError):
        return 1


def _check_file(path: str) -> None:
    if not os.path.isfile(path):
        raise UserError(f"{path} {not_a_file(path)}; give the path of an image file.")


def _decode(path: str) -> np.ndarray | None:
    """The image file at `path` decoded as stored (any depth and channels), turned upright by
    its EXIF orientation; None if it is empty or not an image; UserError if there is no such
    file."""
    _check_file(path)
    data = np.fromfile(path, np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    turn = _ORIENTATIONS.get(_exif_orientation(data)) if image is not None else None
    return np.ascontiguousarray(turn(image)) if turn else image


def read_image(path: str) -> np.ndarray:
    """Loads an image as uint8 RGB (H, W, 3): 8/16-bit, gray/RGB/RGBA (alpha dropped)."""
    image = _decode(path)
    if image is None:
        raise UserError(f"{path} is not a readable image; re-export it as PNG or JPEG.")
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif image.dtype != np.uint8:
        scale = 255.0 if np.issubdtype(image.dtype, np.floating) else 1.0
        image = np.clip(image.astype(np.float64) * scale, 0, 255).round().astype(np.uint8)
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=-1)
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=-1)
    return cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)


# A set of masks holding only these values (black and white) is read as classes 0 and 1.
BLACK_AND_WHITE = {0, 255}


def read_mask(path: str, covers: tuple[int, int] | None = None, of: str = "", flag: str = ""
              ) -> np.ndarray:
    """Loads a class-index mask as uint8 (H, W): a grayscale PNG's values or a palette PNG's
    indices (a colour image whose channels are equal is read as grayscale). With `covers`
    (H, W), the size of `of`: UserError (naming `flag`) unless the mask has that size or its
    aspect (callers resize it as they do `of`)."""
    from PIL import Image, ImageOps

    _check_file(path)
    try:
        with Image.open(path) as im:
            mask = np.asarray(ImageOps.exif_transpose(im))
            mode = im.mode
    except (OSError, ValueError):
        raise UserError(f"{path} is not a readable mask image; masks are class-index PNGs.") from None
    if mask.ndim == 3:
        mask = mask[..., :1 if mode in ("LA", "PA") else 3]       # alpha is no class
        if np.any(mask != mask[..., :1]):
            raise UserError(f"{path} is a colour image; masks hold one class index per pixel: "
                            "save it as an 8-bit grayscale or palette PNG.")
        mask = mask[..., 0]
    if mask.max(initial=0) > 255:
        raise UserError(f"{path} has class indices above 255; masks must be 8-bit class indices.")
    if covers is not None and mask.shape != tuple(covers):
        (h, w), (ch, cw) = mask.shape, covers
        if abs(h * cw - w * ch) > max(ch, cw):          # off by more than a pixel's rounding
            raise UserError(f"{flag + ' ' if flag else ''}{path} is {h}x{w} but {of} is {ch}x{cw} "
                            "(HxW); give a mask of that size (or of its aspect).")
    return mask.astype(np.uint8)


def read_labels(paths: list[str], flag: str, shape: tuple[int, int], of: str, classes,
                size: tuple[int, int]) -> np.ndarray:
    """(N, H, W) labels of the class-index PNGs `paths` given by `flag` (`read_mask`: of the
    size or aspect of `of`, `shape` (H, W)), fitted to `size` as `of` is, black and white read
    as classes 0 and 1 (BLACK_AND_WHITE, decided for the set), checked to hold classes below
    `classes` (a count, or the run's class names)."""
    masks = np.stack([resize_crop(read_mask(p, shape, of, flag), size, nearest=True) for p in paths])
    if set(np.unique(masks).tolist()) == BLACK_AND_WHITE:
        masks = (masks == 255).astype(np.uint8)
    count = classes if isinstance(classes, int) else len(classes)
    if int(masks.max()) >= count:
        bad = int(np.argmax(masks.reshape(len(masks), -1).max(axis=1) >= count))
        known = (f"{count} classes (0 ... {count - 1})" if isinstance(classes, int) else
                 f"{count} regions ({', '.join(classes)})")
        raise UserError(f"{flag} {paths[bad]} has class {int(masks[bad].max())}, but the run knows {known}.")
    return masks


def resize_crop(image: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Resizes keeping aspect so the image covers `size=(H, W)`, then center-crops to it."""
    h, w = image.shape[:2]
    th, tw = size
    if (h, w) == (th, tw):
        return image
    scale = max(th / h, tw / w)
    rh, rw = max(th, round(h * scale)), max(tw, round(w * scale))
    interp = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    resized = cv2.resize(image, (rw, rh), interpolation=interp)
    top, left = (rh - th) // 2, (rw - tw) // 2
    return resized[top:top + th, left:left + tw]
