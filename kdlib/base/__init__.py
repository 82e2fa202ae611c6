"""The floor of kdlib, torch-free: paths, atomic writes, grid.yaml as plain YAML, command-line helpers."""
