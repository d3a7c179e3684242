"""taptap wrapper: Tigo optimiser power reports from ``taptap observe`` on an RS485 bus.

Why wrap taptap rather than reimplement it: the Tigo bus protocol was reverse-engineered there
and keeps being refined; the plugin follows it by running whatever taptap is installed, in
either of its output formats, and adds what a long-running service needs: restarts with
backoff, identities that survive restarts, exact timestamps and a status point.
"""
