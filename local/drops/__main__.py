"""Write stand-in spreadsheet drops of a province and report year.

``python -m local.drops --folder X --province 37 --year 2024`` writes 04, 06 and 08 (one .csv,
two .xlsx, or the other way round in odd years) and prints their paths.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from local.drops.generate import DEFAULT_ROWS, DEFAULT_SEED, PROVINCES, generate_drops


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.drops", description=__doc__)
    parser.add_argument("--folder", type=Path, required=True, help="where to write the files")
    parser.add_argument("--province", default="37", help="2-digit province code (37: Ninh Bình)")
    parser.add_argument("--year", type=int, required=True, help="report year")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    for entity, rows in DEFAULT_ROWS.items():
        form = entity.removeprefix("stat_form_")
        parser.add_argument(
            f"--rows-{form}", type=int, default=rows, help=f"data rows of form {form} (0: no file)"
        )
    args = parser.parse_args(argv)
    if args.province not in PROVINCES:
        parser.error(f"--province must be one of {', '.join(PROVINCES)}")
    if not 1990 <= args.year <= 2100:
        parser.error("--year must be within 1990..2100")
    return args


def main(argv: list[str] | None = None) -> list[Path]:
    args = parse_args(argv)
    rows = {
        entity: n
        for entity in DEFAULT_ROWS
        if (n := getattr(args, f"rows_{entity.removeprefix('stat_form_')}")) > 0
    }
    paths = generate_drops(
        args.folder, province=args.province, year=args.year, rows=rows, seed=args.seed
    )
    for path in paths:
        print(path)
    return paths


if __name__ == "__main__":
    main()
