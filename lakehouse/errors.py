"""Errors the CLI reports as one clear line instead of a traceback."""


class LakehouseError(RuntimeError):
    """Base class: the message says what is wrong and how to fix it."""


class ConfigError(LakehouseError):
    """The configuration is missing a value or holds an invalid one."""


class ServiceError(LakehouseError):
    """An embedded or external service cannot be started, reached or used."""


class TopicMissing(ServiceError):
    """The topic does not exist on the broker."""


class CatalogError(LakehouseError):
    """A table definition is invalid or cannot be applied to the catalog."""


class QualityGateFailed(LakehouseError):
    """A `fail` expectation of the quality gate failed: the batch stays on its audit branch and
    `main` is unchanged. The jobs exit with `exit_code`, so Airflow fails the task without
    retrying it (the same batch would fail the same expectations)."""

    exit_code = 3


class DriftFound(LakehouseError):
    """Reconciliation found a layer that does not hold what the one below it says it should.
    Exits with `exit_code`, so Airflow fails the task without retrying it (the same data would
    drift the same way); the checks are in ops.reconciliation."""

    exit_code = 4
