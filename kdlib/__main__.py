"""``python -m kdlib <command>``: ``grid`` (run a profile's grid), ``notebook`` (execute
one task's notebook with papermill), ``bench`` (benchmarks), ``export`` and ``import``
(compact run records in ``results/``)."""
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"bench": "kdlib.runs.bench_cli", "grid": "kdlib.runs.execute", "notebook": "kdlib.book.notebooks",
                "export": "kdlib.runs.records_cli:main_export", "import": "kdlib.runs.records_cli:main_import",
                "device-run": "kdlib.runs.device_run"}
    about = {"grid": "run every task of a profile in one process (or --plan: list them)",
             "notebook": "execute one task's run report or one chapter with papermill",
             "bench": "benchmarks: loader, training step, distillation (ratios in one run)",
             "export": "write compact records of a run store into results/",
             "import": "add records (a folder or an archive from a GPU machine) to results/, checked",
             "device-run": "whole seeds within a GPU slice's budget, packed as importable records"}
    if argv and argv[0] in ("--version", "-V"):
        from . import __version__

        print(f"kdlib {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help", "help"):
        lines = ["usage: kdlib <command> [options]   (or python -m kdlib ...)", "", "commands:"]
        lines += [f"  {name:<11} {about[name]}" for name in commands]
        lines += ["", "kdlib <command> --help shows a command's options."]
        print("\n".join(lines))
        return 0 if argv else 2
    if argv[0] not in commands:
        from .base.hints import did_you_mean

        print(f"error: unknown command {argv[0]!r}" + did_you_mean(argv[0], commands)
              + f" Commands: {', '.join(commands)}", file=sys.stderr)
        return 2
    import importlib

    module, _, func = commands[argv[0]].partition(":")
    rc = getattr(importlib.import_module(module), func or "main")(argv[1:])
    return rc or 0


if __name__ == "__main__":
    sys.exit(main())
