"""``python -m kdlib <command>``: ``grid`` (run a profile's grid), ``notebook`` (execute
one task's notebook with papermill), ``bench`` (benchmarks)."""
import sys


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"bench": "kdlib.bench", "grid": "kdlib.grid", "notebook": "kdlib.notebooks"}
    if not argv or argv[0] not in commands:
        print(f"usage: python -m kdlib {{{','.join(commands)}}} [options]", file=sys.stderr)
        return 2
    import importlib

    importlib.import_module(commands[argv[0]]).main(argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
