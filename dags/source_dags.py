"""Airflow sync DAGs generated from the source catalogue, one per source and entity.

The catalogue is dags/sources.yml, or the file $STI_SOURCE_CATALOGUE names."""

from airflow.sdk import get_parsing_context

from connectors.catalogue import load_catalogue
from dags.sync_dag_factory import build_sync_dag

# A task's process parses this file to find its own DAG: build only that one (seconds per
# task otherwise). The DAG processor (no DAG id in the context) builds them all.
_wanted = get_parsing_context().dag_id

# The catalogue is validated as a whole first: a bad file generates no DAG at all.
for _source in load_catalogue():
    for _entity in _source.entities:
        if _wanted is None or _wanted == f"{_source.id}__{_entity}":
            _dag = build_sync_dag(_source, _entity)
            globals()[_dag.dag_id] = _dag
