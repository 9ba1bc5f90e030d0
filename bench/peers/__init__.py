"""PyTorch peers of tlgen's models: same architectures and shapes, written for speed."""
