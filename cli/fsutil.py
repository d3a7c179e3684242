"""Former home of ``write_atomic`` for the CLI: import it from ``telegraf_bridge.plugins.common``.

Kept only for ``render.py`` and ``commands/install_systemd.py``, which are being reworked on
another branch at the same time; they switch to the public name and this module goes.
"""

from telegraf_bridge.plugins.common import write_atomic

__all__ = ["write_atomic"]
