"""The benchmarks: batch sizes, node against raw backend, heads at their rates, overload soak."""
