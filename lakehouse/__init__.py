"""Shared code of the streaming medallion lakehouse: settings, services, catalog, engines, CLI."""
