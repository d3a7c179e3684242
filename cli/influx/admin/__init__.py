"""Administration of the sinks: create, check and delete the meter-pulse tiers.

One backend per sink kind (InfluxDB 1.x, v2/Cloud, 3) behind :class:`AdminBackend`, so
``setup-influxdb``, ``verify`` and ``delete-buckets`` print one kind of report for all three.
"""
