"""Execd input plugins: one folder per plugin, each runnable as ``python -m``."""
