"""An execd source for tests: copies lines from a FIFO to stdout, flushing each batch.

Lets one long-running Telegraf parse many test batches. Exits when stdin closes.
"""

import os
import sys
import threading


def _watch_stdin() -> None:
    sys.stdin.read()
    os._exit(0)


def main() -> None:
    fifo = sys.argv[1]
    threading.Thread(target=_watch_stdin, daemon=True).start()
    while True:
        with open(fifo, "rb") as source:  # noqa: PTH123 - plain os calls, as in the other helpers
            data = source.read()
        if data:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
