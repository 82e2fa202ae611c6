"""Runs: the run store, the grid's plan and execution, the pipeline of one run, records, device slices,
benchmarks."""
