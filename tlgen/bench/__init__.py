"""Benchmarks: step time, FLOPs, MFU, memory, input-pipeline and inference throughput."""
