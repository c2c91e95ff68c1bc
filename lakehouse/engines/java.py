"""Spark 3.5 and Flink 2.3 need Java 17; the machine's default `java` may be newer."""

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
