"""Synthesis from trained models: timelapses, animation, long videos (pure, jitted)."""
