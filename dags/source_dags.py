"""Airflow sync DAGs generated from the source catalogue, one per source and entity.

The catalogue is dags/sources.yml, or the file $STI_SOURCE_CATALOGUE names."""

from connectors.catalogue import load_catalogue
from dags.sync_dag_factory import build_sync_dag

# The catalogue is validated as a whole first: a bad file generates no DAG at all.
for _source in load_catalogue():
    for _entity in _source.entities:
        _dag = build_sync_dag(_source, _entity)
        globals()[_dag.dag_id] = _dag
