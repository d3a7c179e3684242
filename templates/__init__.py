"""Jinja2 templates for telegraf.conf (data only; rendered by ``bridge-cli render-config``)."""
