"""``python -m kdlib <command>``: ``grid`` (run a profile's grid), ``notebook`` (execute
one task's notebook with papermill), ``bench`` (benchmarks), ``export`` and ``import``
(compact run records in ``results/``)."""
import sys


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"bench": "kdlib.bench", "grid": "kdlib.grid", "notebook": "kdlib.notebooks",
                "export": "kdlib.records:main_export", "import": "kdlib.records:main_import",
                "device-run": "kdlib.device_run"}
    if not argv or argv[0] not in commands:
        print(f"usage: python -m kdlib {{{','.join(commands)}}} [options]", file=sys.stderr)
        return 2
    import importlib

    module, _, func = commands[argv[0]].partition(":")
    rc = getattr(importlib.import_module(module), func or "main")(argv[1:])
    return rc or 0


if __name__ == "__main__":
    sys.exit(main())
