#!/usr/bin/env bash
# Runs once, on the first start with an empty volume (the official image's /docker-entrypoint-initdb.d):
# the databases the embedded stack creates, named by the same settings (postgres.catalog_database,
# airflow.database). catalog-init and airflow-init create them too if missing.
set -euo pipefail
for database in "${LAKEHOUSE_POSTGRES__CATALOG_DATABASE}" "${LAKEHOUSE_AIRFLOW__DATABASE}"; do
  psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname postgres --set db="${database}" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
SQL
done
