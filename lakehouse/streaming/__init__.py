"""Building blocks of the Kafka -> bronze stream, free of Flink so they are unit-tested directly.

They run inside the Flink job (the `.venv-flink` environment: PyIceberg 0.8.1, pyarrow 16)
and in the batch recovery path alike.
"""
