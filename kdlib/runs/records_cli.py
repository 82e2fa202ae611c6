"""The command lines of the records: ``python -m kdlib import`` and ``export``."""
from __future__ import annotations

import sys

from .admit import import_records
from .compact import RecordError
from .export import export_store

__all__ = ["main_import", "main_export"]


# --------------------------------------------------------------------------- command line
def _print_report(report: list[dict]):
    for line in report:
        print(f"{line['status']:8s} {line['profile']}/{line['kind']}/{line['id']}  {line['message']}")
    counts = {s: sum(r["status"] == s for r in report) for s in ("added", "present", "refused")}
    print(", ".join(f"{n} {s}" for s, n in counts.items()))


def main_import(argv: list[str] | None = None) -> int:
    from ..base.cli import ArgumentParser

    p = ArgumentParser(prog="kdlib import",
                                description="Add finished runs (a folder or an archive from a GPU machine) to results/.")
    p.add_argument("source", help="a run store folder, a folder of records, or a .tar.gz from `kdlib export --archive`")
    p.add_argument("--to", default=None, help="the results folder (None: $KDLIB_RESULTS or the repository's results/)")
    p.add_argument("--profile", default=None, help="import only this profile's runs (None: every profile)")
    p.add_argument("--dry-run", action="store_true", help="check everything, write nothing")
    args = p.parse_args(argv)
    try:
        report = import_records(args.source, args.to, args.profile, args.dry_run, strict=False)
    except RecordError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    _print_report(report)
    return 1 if any(r["status"] == "refused" for r in report) else 0


def main_export(argv: list[str] | None = None) -> int:
    from ..base.cli import ArgumentParser

    p = ArgumentParser(prog="kdlib export",
                                description="Write compact records of a run store's finished runs into results/.")
    p.add_argument("--profile", required=True, help="the grid profile whose finished runs are exported")
    p.add_argument("--runs", default=None, help="the run store (None: $KDLIB_RUNS or ./runs)")
    p.add_argument("--to", default=None, help="the results folder (None: $KDLIB_RESULTS or the repository's results/)")
    p.add_argument("--archive", default=None, help="also pack the records into this .tar.gz (None: no archive)")
    p.add_argument("--all", action="store_true", help="also runs the current grid does not plan")
    p.add_argument("--grid", default=None, help="grid YAML (None: grid.yaml at the repository root)")
    args = p.parse_args(argv)
    try:
        report = export_store(args.profile, args.runs, args.to if args.to or not args.archive else None,
                              plan_only=not args.all, grid_path=args.grid, archive=args.archive)
    except RecordError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    _print_report(report)
    return 1 if any(r["status"] == "refused" for r in report) else 0
