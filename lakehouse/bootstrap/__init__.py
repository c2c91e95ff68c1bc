"""Installs the project (`make setup`); standard library only, runs before any virtualenv exists."""
