"""TFDS builder (ArrayRecord files, no TensorFlow) writing staged frames and pyramid levels.

One builder, two configs under the dataset folder:
  tlgen_frames/frames/1.0.0   splits "train", "validation": per-frame records
      image uint8 (H, W, 3), time float64 (seconds from the video's first frame),
      video_id int32, frame_index int32, [flow float16 (H, W, 2)], [mask uint8 (H, W)]
  tlgen_frames/pyramid/1.0.0  splits "<split>_level<l>" for l >= 1: image, time, video_id,
      frame_index (index on the level's time grid)
Records keep their order (time within each video, videos in source order).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator

import numpy as np
import tensorflow_datasets as tfds

from tlgen.data.layout import TFDS_NAME as NAME, TFDS_VERSION as VERSION  # noqa: F401  (names of the files)
_BYTES = tfds.features.Encoding.BYTES


@dataclasses.dataclass(eq=False)
class TlgenConfig(tfds.core.BuilderConfig):
    """Feature layout of one config; `splits` maps split name -> (count, example iterator)."""
    height: int = 0
    width: int = 0
    with_flow: bool = False
    with_masks: bool = False


class TlgenFrames(tfds.core.GeneratorBasedBuilder):
    """Frames and temporal-pyramid levels of a `tlgen prepare` dataset."""

    VERSION = tfds.core.Version(VERSION)
    BUILDER_CONFIGS = []

    def __init__(self, *, splits: dict[str, tuple[int, Callable[[], Iterator[dict]]]] | None = None,
                 **kwargs):
        self._splits = splits or {}
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        c = self.builder_config
        features = {
            "image": tfds.features.Tensor(shape=(c.height, c.width, 3), dtype=np.uint8,
                                          encoding=_BYTES),
            "time": tfds.features.Scalar(dtype=np.float64),
            "video_id": tfds.features.Scalar(dtype=np.int32),
            "frame_index": tfds.features.Scalar(dtype=np.int32),
        }
        if c.with_flow:
            features["flow"] = tfds.features.Tensor(shape=(c.height, c.width, 2),
                                                    dtype=np.float16, encoding=_BYTES)
        if c.with_masks:
            features["mask"] = tfds.features.Tensor(shape=(c.height, c.width), dtype=np.uint8,
                                                    encoding=_BYTES)
        info = self.dataset_info_from_configs(features=tfds.features.FeaturesDict(features),
                                              disable_shuffling=True)
        # A new dataset's info would be looked up in TFDS's public bucket, leaving an empty
        # temporary folder behind on every build; tlgen's datasets are never there.
        info.initialize_from_bucket = lambda: None
        return info

    # TFDS prints these two lines to stdout; tlgen shows its own progress bar instead.
    def _log_download_bytes(self) -> None:
        pass

    def _log_download_done(self) -> None:
        pass

    def _split_generators(self, dl_manager):
        return {name: self._generate_examples(count, make)
                for name, (count, make) in self._splits.items()}

    def _generate_examples(self, count: int, make: Callable[[], Iterator[dict]]):
        # Order-preserving keys spread over TFDS's 2**128 key space so its sort buckets
        # stay small (bounded memory) while the records keep their order.
        step = (1 << 128) // max(count, 1)
        for i, example in enumerate(make()):
            yield i * step, example


def write(data_dir: str, config: TlgenConfig,
          splits: dict[str, tuple[int, Callable[[], Iterator[dict]]]], download_dir: str) -> None:
    """Writes `splits` as ArrayRecord files of `config` under `data_dir`."""
    quiet = [logging.getLogger(n) for n in ("absl", "tensorflow_datasets")]
    levels = [q.level for q in quiet]
    for q in quiet:  # TFDS logs every custom config and "downloading" at INFO/WARNING
        q.setLevel(logging.ERROR)
    try:
        builder = TlgenFrames(data_dir=data_dir, config=config, file_format="array_record",
                              splits=splits)
        builder.download_and_prepare(download_dir=download_dir)
    finally:
        for q, level in zip(quiet, levels):
            q.setLevel(level)
