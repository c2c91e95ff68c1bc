"""Spark 3.5, Flink 2.0 and Kafka 4 run on Java 17; the machine's default `java` may be newer."""

from __future__ import annotations

import glob
import os


def java17_home() -> str | None:
    homes = sorted(glob.glob("/usr/lib/jvm/java-17-openjdk-*"))
    return homes[0] if homes else None


def ensure_java_home() -> None:
    """Point JAVA_HOME at a Java 17 unless the user has chosen one."""
    if "JAVA_HOME" not in os.environ and java17_home():
        os.environ["JAVA_HOME"] = java17_home()


def java_bin() -> str:
    """The `java` the JVM services run with: Java 17 when installed, else the one on PATH."""
    home = os.environ.get("JAVA_HOME") or java17_home()
    return f"{home}/bin/java" if home else "java"
