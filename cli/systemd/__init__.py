"""systemd units for a bare Linux host, behind ``bridge-cli install-systemd``.

One module per job: :mod:`.errors` (the one error), :mod:`.escape` (text made safe for a unit
file), :mod:`.units` (the unit names and the Jinja environment that renders them),
:mod:`.envfile` (the ``KEY=VALUE`` file systemd reads), :mod:`.host` (users, groups, programs
and what the service user may do, asked of this host), :mod:`.plan` (every input checked and
the units rendered, nothing written) and :mod:`.install` (writing the plan, ``systemctl``).
"""
