"""telegraf-bridge: Telegraf execd plugins and config rendering for solar and IoT telemetry.

The top-level folders of the repository (``cli/``, ``plugins/``, ``templates/``, ``telegraf/``)
are mapped into this package by the build backend; see pyproject.toml.
"""

from telegraf_bridge._version import __version__

__all__ = ["__version__"]
