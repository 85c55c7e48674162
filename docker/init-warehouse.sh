#!/usr/bin/env bash
# Runs once, when the warehouse volume is first initialised (mounted into
# /docker-entrypoint-initdb.d of the postgres image). The image itself creates the warehouse
# database "$POSTGRES_DB" owned by "$POSTGRES_USER"; this adds Airflow's metadata database with
# its own role. psql reads the password from the environment (\getenv) and quotes it (:'...'),
# so it never appears on a command line or unescaped in SQL.
set -eo pipefail

: "${AIRFLOW_DB_PASSWORD:?set AIRFLOW_DB_PASSWORD for the warehouse service}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'EOSQL'
\getenv airflow_password AIRFLOW_DB_PASSWORD
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
REVOKE ALL ON DATABASE airflow FROM PUBLIC;
EOSQL
