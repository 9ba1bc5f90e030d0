"""Where a prepared dataset keeps its parts: names shared by the writer (`prepare`) and the
readers, with no heavy imports (readers and Grain workers import only this)."""

import os

FORMAT = "tlgen-dataset"
FORMAT_VERSION = 1
METADATA_FILE = "tlgen.json"
INDEX_FILE = "index.npz"
TFDS_NAME = "tlgen_frames"
TFDS_VERSION = "1.0.0"


def is_dataset(path: str) -> bool:
    """Whether the folder `path` holds a prepared dataset (its METADATA_FILE)."""
    return os.path.isfile(os.path.join(path, METADATA_FILE))


def builder_dir(data_dir: str, config_name: str) -> str:
    """The TFDS folder of one builder config ("frames" or "pyramid") of a dataset."""
    return f"{data_dir}/{TFDS_NAME}/{config_name}/{TFDS_VERSION}"
