"""Per-device queries and deletes on any sink: latest values, a time range, and delete a range.

Replaces IoTFlow's ``GET /device/{id}/latest``, ``GET /device/{id}/data`` and ``DELETE
/device/{id}/data`` (seed 002) for every sink kind, in the sink's own language: InfluxQL on
InfluxDB 1.x, Flux on v2/Cloud, SQL on InfluxDB 3. Points are selected by the ``device_id`` tag
that every IoTFlow point carries (see the data model of issue 7).

Why our own small HTTP client (:mod:`telegraf_bridge.cli.influx`) and not the official
libraries: ``influxdb-client`` pulls in a large dependency tree for three HTTP calls, and
``influxdb3-python`` queries over Arrow Flight (gRPC), which needs pyarrow (no ARMv6 wheel,
seconds to import on a Pi Zero) and which the loopback v3 fake cannot answer. The official HTTP
APIs used here (``/query``, ``/api/v2/query``, ``/api/v2/delete``, ``/api/v3/query_sql``)
are documented, stable and enough.

One module per job: :mod:`.times` (the user's device, measurement and time arguments),
:mod:`.results` (what a query returns), :mod:`.base` (what ``query`` and ``delete-data`` ask
of a sink, and the choice of implementation) and :mod:`.v1`, :mod:`.v2`, :mod:`.v3` (one
implementation per InfluxDB version, in its own query language).

Every device ID, measurement and time that reaches a query is quoted for the target language
by the quoting modules of :mod:`telegraf_bridge.cli.influx` (``influxql``: identifiers and
strings, also the v2 delete predicate's double-quoted values; ``flux``: strings; ``sql``:
identifiers and strings), so user input can never change a query's shape. Memory stays
bounded: ranges fetch at most ``limit + 1`` rows per series (the first ``limit`` points overall
are always among them) and counts are streamed.

Deleting, per sink (time windows are half-open, ``start <= time < stop``, everywhere):

- InfluxDB 1.x: ``DELETE [FROM m] WHERE "device_id" = '...' AND time >= a AND time < b``.
  InfluxQL's DELETE filters on tags and time only and cannot name a retention policy: it
  removes the matching points from *every* retention policy of the database.
- v2/Cloud: ``POST /api/v2/delete`` with ``start``/``stop`` (both inclusive on the server, so
  ``stop`` is sent 1 ns early) and the predicate ``_measurement="m" AND device_id="..."``
  (tag equality with double-quoted values joined by AND: the only form the server accepts;
  no OR, no regular expressions, no fields). InfluxDB Cloud Serverless (IOx) refuses deletes.
- InfluxDB 3 Core/Enterprise cannot delete points: only whole tables or databases (or points
  ageing out of a retention period). :data:`.v3.V3_DELETE_REFUSAL` says so and what to do
  instead.
"""
