"""Factories for the engines that share the catalog: PyIceberg and Spark (Flink reuses the PyIceberg one)."""
