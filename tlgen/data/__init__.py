"""Data layer: ingest, TFDS/ArrayRecord datasets, temporal pyramid, flow, Grain pipelines."""

from tlgen.data.dataset import Dataset, open_dataset

__all__ = ["Dataset", "open_dataset"]
