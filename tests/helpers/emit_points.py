"""An execd source for tests: serialises the points in a JSON file with the bundle's serializer,
writes them once, then waits for stdin to close (as Telegraf's execd expects) and closes its
pipes before it exits, as the plugins do (else Telegraf may log "file already closed")."""

import json
import sys

from telegraf_bridge.plugins.common import (
    FieldType,
    LineProtocolSerializer,
    Point,
    SkipCounter,
    setup_logging,
)
from telegraf_bridge.plugins.common._main import close_pipes_before_exit


def main() -> None:
    setup_logging()
    with open(sys.argv[1], encoding="utf-8") as handle:  # noqa: PTH123 - plain os calls, as in the other helpers
        doc = json.load(handle)
    serializer = LineProtocolSerializer(
        field_types={k: FieldType(v) for k, v in doc.get("types", {}).items()},
        counter=SkipCounter(),
    )
    points = [Point(p["measurement"], p["tags"], p["fields"], p["time_ns"]) for p in doc["points"]]
    lines = serializer.lines(points)
    sys.stdout.write("".join(line + "\n" for line in lines))
    sys.stdout.flush()
    sys.stdin.read()
    close_pipes_before_exit()


if __name__ == "__main__":
    main()
