"""Stand-in spreadsheet drops: a province's annual statistical reports (national forms 04/KHCN-NV,
06/KHCN-CG, 08/KHCN-SHTT) as the .xlsx/.csv files provinces send, dirt included.

- ``generate``: :func:`generate_drops` writes them, deterministically for a seed.
- ``__main__``: ``python -m local.drops --folder X --province 37 --year 2024``.
"""

from local.drops.generate import DEFAULT_ROWS, DEFAULT_SEED, PROVINCES, generate_drops

__all__ = ["DEFAULT_ROWS", "DEFAULT_SEED", "PROVINCES", "generate_drops"]
