"""mlplab's benchmark suite: `python -m benchmarks` (add --quick for a fast correctness run)."""
