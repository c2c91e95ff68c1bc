"""The embedded service stack: SeaweedFS (S3), Tansu (Kafka protocol) and PostgreSQL under supervisord."""
