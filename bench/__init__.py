"""Benchmarks and their data generators: `make bench` runs `python -m bench.import_bench`."""
