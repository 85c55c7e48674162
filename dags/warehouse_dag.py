"""The Airflow warehouse DAG: dbt over the published batches of every catalogue entity.

Separate from the sync DAGs' file so that a problem with the dbt project stops only this DAG,
never the extraction."""

from connectors.catalogue import load_catalogue
from dags.warehouse_dag_factory import build_warehouse_dag

warehouse_dag = build_warehouse_dag(
    sorted({entity for source in load_catalogue() for entity in source.entities})
)
