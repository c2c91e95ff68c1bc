"""Errors the CLI reports as one clear line instead of a traceback."""


class LakehouseError(RuntimeError):
    """Base class: the message says what is wrong and how to fix it."""


class ConfigError(LakehouseError):
    """The configuration is missing a value or holds an invalid one."""


class ServiceError(LakehouseError):
    """An embedded or external service cannot be started, reached or used."""


class CatalogError(LakehouseError):
    """A table definition is invalid or cannot be applied to the catalog."""
