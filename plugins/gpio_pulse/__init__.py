"""GPIO meter-pulse counter: raw pulses, windowed energy aggregates and a persistent counter.

Why one process for every channel: a meter has up to three pulse outputs (import, export,
generation) and they share one GPIO chip, one edge-event file descriptor and one clock; one
reader thread timestamps them consistently and one state file keeps their counters together.
"""
