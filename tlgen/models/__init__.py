"""Model families: Flax linen modules and plain functions (pure JAX, no I/O)."""
