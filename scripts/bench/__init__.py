"""Benchmarks, kept outside the engine proper."""
