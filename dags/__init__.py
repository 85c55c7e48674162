"""Airflow DAG files and the factory that generates them from the source catalogue."""
