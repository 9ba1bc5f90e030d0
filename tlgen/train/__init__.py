"""The engine: one generic trainer, the train state and the metric writers (families live in
tlgen.families)."""
