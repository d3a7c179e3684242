"""execd helper for benchmarks: copy a line-protocol file to stdout, then report (via a marker
file) once Telegraf has read every byte from the pipe, then wait for stdin to close."""

import array
import fcntl
import sys
import termios
import time
from pathlib import Path


def unread(fd: int) -> int:
    buf = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, buf, True)
    return int(buf[0])


def main() -> None:
    source = Path(sys.argv[1])
    out = sys.stdout.buffer
    with source.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            out.write(chunk)
    out.flush()
    while unread(out.fileno()) > 0:
        time.sleep(0.05)
    Path(str(source) + ".done").write_text("read")
    sys.stdin.read()


if __name__ == "__main__":
    main()
