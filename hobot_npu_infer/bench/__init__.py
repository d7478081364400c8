"""The benchmarks: batch sizes, node against raw, heads, overload soak, Ultralytics peer."""
