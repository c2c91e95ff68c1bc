#!/usr/bin/env bash
# Entrypoint of the Flink image: write the cluster's config.yaml from the lakehouse settings with
# the function the embedded cluster uses (lakehouse.services.flink.configuration: addresses, ports,
# memory, slots, restart behaviour, savepoint folder), then hand over to the official image's
# entrypoint: `jobmanager`, `taskmanager`, or any command, run as the flink user.
set -euo pipefail
if [ "$(id -u)" = 0 ]; then
  gosu flink python -m lakehouse.services.flink write-config "${FLINK_HOME}/conf"
else
  python -m lakehouse.services.flink write-config "${FLINK_HOME}/conf"
fi
exec /docker-entrypoint.sh "$@"
