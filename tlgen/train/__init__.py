"""Training: one generic trainer, the train state and the family registry."""
