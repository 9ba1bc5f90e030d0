"""tlgen's configs, one file per family and dataset, each with `get_config(variant)`.

Installed with tlgen as the package `tlgen.configs` (so `--config configs/<file>.py:<variant>`
finds them from any folder, and a copy of one elsewhere still imports `tlgen.configs.common`).
"""
