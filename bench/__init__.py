"""Benchmarks: each script sets up what it measures, runs it, and prints one JSON line (see README.md)."""
