"""The executables in child processes on loopback DDS, and a listener: demo, benchmarks, tests."""
