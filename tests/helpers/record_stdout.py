"""Run a plugin module exactly as Telegraf would, keeping a record of every byte it writes out.

Usage: record_stdout.py RECORD_DIR -m MODULE [ARGS ...]

The fault suite needs an honest record of what a live source produced. A tee process between
the plugin and Telegraf would change what is tested: the plugin's FIONREAD (how the shim knows
Telegraf has read its bytes) would then see the tee's pipe, not Telegraf's. So the plugin keeps
Telegraf's pipe as its own stdout (fd 1, same pid, same signals), and this wrapper only hooks
the raw file object under ``sys.stdout``: after each successful write to the pipe the same bytes
are appended to a record file of this process. Bytes are recorded only once the pipe took them,
so a SIGKILL between the two can only leave a line out of the record, never put one in that
Telegraf was not given. Each process writes its own file (``<pid>-<ns>.lp``), so a record torn
by a SIGKILL costs at most the last line of that file (the reader drops an unterminated tail).
A plain write without fsync is enough: the faults are process kills, which the page cache
survives.
"""

import io
import os
import runpy
import sys
import time


class RecordingStdout(io.FileIO):
    """fd 1 as a raw file whose successful writes are also appended to the record."""

    def __init__(self, record_fd: int) -> None:
        super().__init__(1, "wb", closefd=False)
        self._record_fd = record_fd

    def write(self, data) -> int:  # type: ignore[no-untyped-def]  # the io signature
        written = super().write(data)
        if written:
            os.write(self._record_fd, bytes(memoryview(data)[:written]))
        return written


def main() -> None:
    record_dir, flag, module, *args = sys.argv[1:]
    if flag != "-m":
        raise SystemExit("usage: record_stdout.py RECORD_DIR -m MODULE [ARGS ...]")
    os.makedirs(record_dir, exist_ok=True)  # noqa: PTH103 - plain os calls, as in the other helpers
    name = os.path.join(record_dir, f"{os.getpid()}-{time.time_ns()}.lp")  # noqa: PTH118 - plain os calls, as above
    record_fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(RecordingStdout(record_fd)), encoding="utf-8", line_buffering=False
    )
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
