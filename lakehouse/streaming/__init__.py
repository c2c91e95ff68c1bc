"""The Kafka -> bronze stream's own vocabulary: its names (names.py) and where its checkpoints and
savepoints live (checkpoints.py). The job is flink_jobs/bronze_ingest.py; its keeper and
`lakehouse stream` are process control, in lakehouse.services."""
