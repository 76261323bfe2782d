"""Benchmarks: scripts that measure and report; never assertions in the test suite."""
