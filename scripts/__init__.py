"""Project scripts (the benchmarks live in scripts.bench)."""
