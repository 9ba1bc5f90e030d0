"""Evaluation metrics: image quality and temporal consistency."""
