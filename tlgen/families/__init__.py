"""The built-in model families, one package each.

Every package's `FAMILY` is a `tlgen.family.Family`: the training side (init, step, pipeline,
eval step, samples), the inference side and the user commands it supports. `config.family`
names a package here ("timescale_ae", "dtvnet") or any importable module with a `FAMILY`.
"""
