"""A stand-in for `taptap observe` in the wrapper's supervision tests: replays recorded observe
lines (either format) the way taptap prints them, one flushed line at a time.

Used where the test is about the wrapper (restarts, backoff, staleness, bad lines), not about
decoding; decoding is tested with the real taptap binary. Each start appends the monotonic
time to --starts, so a test can measure the restart backoff.

Usage: fake_observe.py [--starts FILE] [--delay S] [--pause-after N --pause S] [--hold S]
                       [--stderr TEXT] [--exit CODE] [FILE ...]
"""

import argparse
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="*")
    parser.add_argument("--starts")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--pause-after", type=int, default=-1)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument("--stderr", default="")
    parser.add_argument("--exit", type=int, default=0)
    args = parser.parse_args()
    if args.starts:
        with open(args.starts, "a", encoding="utf-8") as handle:  # noqa: PTH123 - plain os calls
            handle.write(f"{time.monotonic()}\n")
    if args.stderr:
        sys.stderr.write(args.stderr + "\n")
        sys.stderr.flush()
    out = sys.stdout.buffer
    sent = 0
    for name in args.files:
        with open(name, "rb") as handle:  # noqa: PTH123 - plain os calls
            for line in handle:
                out.write(line)
                out.flush()
                sent += 1
                if sent == args.pause_after:
                    time.sleep(args.pause)
                elif args.delay:
                    time.sleep(args.delay)
    time.sleep(args.hold)
    return args.exit


if __name__ == "__main__":
    sys.exit(main())
