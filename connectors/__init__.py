"""Plain-Python connectors: extract from STI sources and land into the warehouse's raw zone.

Nothing in this package imports Airflow, so every piece runs and tests on its own.
"""
