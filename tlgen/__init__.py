"""tlgen: time-lapse video generation in JAX/Flax."""

__version__ = "0.1.0"
