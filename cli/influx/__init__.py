"""One way to talk to InfluxDB (1.x, v2/Cloud, 3), for every command in ``cli/``.

Layers, bottom up:

- :mod:`.transport`: urllib with the sink's TLS options, timeouts, bounded reads and secrets
  redacted from every error; :mod:`.auth`: the credential reader (token from ``token_env`` or
  ``token_file``, the 1.x user's ``password_env``) and the only builder of ``Authorization``;
- :mod:`.influxql`, :mod:`.flux`, :mod:`.sql`: quoting, one module per query language;
  :mod:`.annotated_csv`: the reader of v2's annotated CSV;
- :mod:`.v1`, :mod:`.v2`, :mod:`.v3`: one client per version, each endpoint one method, plus
  the two monitoring questions (:class:`.client.Client`); :mod:`.versions` chooses the version;
  :mod:`.sinks` goes from the config to a client;
- :mod:`.devices` (``query``, ``delete-data``) and :mod:`.admin` (``setup-influxdb``,
  ``verify``, ``delete-buckets``) on top; ``healthcheck``, ``rssi-report`` and preflight's
  probes use the clients directly.
"""
