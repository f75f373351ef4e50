"""asyncorm's benchmark suite (issue 7): ``python -m benchmarks.run``."""
