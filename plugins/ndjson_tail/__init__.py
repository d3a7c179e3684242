"""Tail NDJSON files with persistent state (SmartSolar) and emit line protocol."""
