"""tlgen's configs, one file per family and dataset, each with `get_config(variant)`.

A package of tlgen (the checkout's top-level `configs/` links here), so it is installed with
it: `--config configs/<file>.py:<variant>` finds these from any folder, and a copy of one
edited elsewhere still imports `tlgen.configs.common`.
"""
