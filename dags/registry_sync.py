"""Airflow sync DAGs for every source in the catalogue (dags/sources.yml), one per entity."""

from pathlib import Path

from connectors.catalogue import load_catalogue
from dags.sync_dag_factory import build_sync_dag

for _source in load_catalogue(Path(__file__).with_name("sources.yml")):
    for _entity in _source.entities:
        _dag = build_sync_dag(_source, _entity)
        globals()[_dag.dag_id] = _dag
