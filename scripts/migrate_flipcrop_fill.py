"""One-off (2026-11-27): flip+crop gained ``fill`` (black, as torchvision; or mean). The committed records
were trained with the mean fill, which their configs left implicit; this writes it into them.

    python scripts/migrate_flipcrop_fill.py [--dry-run]
"""
import argparse
from pathlib import Path

from kdlib.runs.export import flipcrop_fill, migrate_records

WHY = ("flip+crop gained the parameter fill (black by default, as torchvision); these runs padded with the "
       "dataset mean, which their config left implicit")

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--results", default=str(Path(__file__).resolve().parents[1] / "results"))
    args = p.parse_args()
    for profile in ("paper", "paper-long"):
        ids = migrate_records(args.results, profile, flipcrop_fill("mean"), WHY, dry_run=args.dry_run)
        print(f"{profile}: {len(ids)} records {'would move' if args.dry_run else 'moved'}")
        for old, new in ids.items():
            print(f"  {old} -> {new}")
