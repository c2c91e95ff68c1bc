"""The embedded service stack under supervisord: SeaweedFS (S3), PostgreSQL, Apache Kafka, the Flink session cluster, optionally a Spark standalone cluster."""
