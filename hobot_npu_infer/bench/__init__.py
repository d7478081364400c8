"""Benchmarks, and the harness that runs the package's executables for them (and for the demo)."""
