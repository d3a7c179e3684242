"""The plugin host: several sources in one Python process (plugins/common/_host.py)."""
