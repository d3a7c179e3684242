"""The delivery journal and its writer: framing, torn tails, retirement, replay, group commit
and the cap, against real files and a real pipe (the reader plays Telegraf)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from telegraf_bridge.plugins.common import LineProtocolSerializer, Point, SkipCounter
from telegraf_bridge.plugins.common._cap import BufferCap
from telegraf_bridge.plugins.common._journal import (
    HEADER_BYTES,
    SEGMENT_SUFFIX,
    Journal,
    JournalBusy,
)
from telegraf_bridge.plugins.common._journaled_writer import JournaledWriter


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SEGMENT_SUFFIX}"))


def _reopen(directory: Path) -> Journal:
    journal = Journal(directory)
    journal.open()
    return journal


def test_entries_left_unretired_come_back_byte_identical_in_order(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    assert journal.open() == []
    payloads = [f"m v={i}i {i}\n".encode() for i in range(50)]
    for payload in payloads:
        journal.append(payload)
    journal.close()
    again = Journal(tmp_path / "j")
    left = again.open()
    assert [again.read(e) for e in left] == payloads
    assert [e.lines for e in left] == [1] * 50
    assert again.stats.replayed == 50
    assert again.append(b"m v=50i 50\n").seq == 51  # sequence numbers go on


@pytest.mark.parametrize("cut", [1, HEADER_BYTES - 1, HEADER_BYTES + 3])
def test_a_torn_tail_is_cut_off_and_counted_never_replayed(tmp_path: Path, cut: int) -> None:
    journal = Journal(tmp_path / "j")
    journal.open()
    for i in range(3):
        journal.append(f"m v={i}i {i}\n".encode())
    journal.close()
    (segment,) = _segments(tmp_path / "j")
    frame = HEADER_BYTES + len(b"m v=2i 2\n")
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) - frame + cut])  # the last write half done
    again = Journal(tmp_path / "j")
    left = again.open()
    assert [again.read(e) for e in left] == [b"m v=0i 0\n", b"m v=1i 1\n"]
    assert again.stats.torn == 1
    assert again.stats.torn_bytes == cut
    assert segment.stat().st_size == len(data) - frame  # truncated, so appends follow good data


def test_a_flipped_bit_ends_the_good_entries(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    journal.open()
    for i in range(3):
        journal.append(f"m v={i}i {i}\n".encode())
    journal.close()
    (segment,) = _segments(tmp_path / "j")
    data = bytearray(segment.read_bytes())
    frame = HEADER_BYTES + len(b"m v=0i 0\n")
    data[frame + HEADER_BYTES + 2] ^= 0x01  # inside the second entry's payload
    segment.write_bytes(bytes(data))
    again = Journal(tmp_path / "j")
    assert [again.read(e) for e in again.open()] == [b"m v=0i 0\n"]
    assert again.stats.torn == 1


def test_retiring_deletes_whole_segments_and_keeps_the_newest_checkpoint(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j", segment_bytes=200)
    journal.open()
    last = None
    for i in range(40):
        last = journal.append(f"m v={i}i {i}\n".encode(), meta=f'{{"n": {i}}}'.encode())
    assert last is not None
    assert len(_segments(tmp_path / "j")) > 5
    journal.retire(last.seq)
    assert journal.entries == type(journal.entries)()
    journal.close()
    # Nothing left to write again, yet the checkpoint survived the deletion of its segments.
    again = Journal(tmp_path / "j")
    assert again.open() == []
    assert again.meta == b'{"n": 39}'
    assert len(_segments(tmp_path / "j")) == 1


def test_a_second_process_waits_for_the_journal_then_gives_up(tmp_path: Path) -> None:
    first = Journal(tmp_path / "j")
    first.open()
    with pytest.raises(JournalBusy, match="still in use"):
        Journal(tmp_path / "j").open(lock_timeout_s=0.2)
    threading.Timer(0.3, first.close).start()
    Journal(tmp_path / "j").open(lock_timeout_s=5)  # the old one exits: the lock is free


def test_concurrent_durable_callers_share_fsyncs(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    journal.open()
    lock = threading.Lock()
    callers = 200

    def one(i: int) -> None:
        with lock:
            entry = journal.append(f"m v={i}i {i}\n".encode())
        journal.sync_through(entry.seq)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not journal.unsynced()
    assert 1 <= journal.stats.fsyncs < callers


# -- the writer, with a real pipe as Telegraf's stdin ---------------------------------------


class Pipe:
    """A pipe whose read end plays Telegraf."""

    def __init__(self) -> None:
        r, w = os.pipe()
        self.reader = os.fdopen(r, "rb", buffering=0)
        self.stream = os.fdopen(w, "wb")

    def read_all(self) -> bytes:
        os.set_blocking(self.reader.fileno(), False)
        chunks = []
        while True:
            try:
                chunk = self.reader.read(65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def _writer(directory: Path, stream: object, **kwargs: object) -> JournaledWriter:
    serializer = LineProtocolSerializer(time_floor_ns=0, counter=SkipCounter())
    journal = Journal(directory, segment_bytes=4096)
    writer = JournaledWriter(stream, serializer, journal, **kwargs)  # type: ignore[arg-type]
    writer.open()
    return writer


def _points(first: int, count: int) -> list[Point]:
    return [
        Point("m", {"s": "a"}, {"v": i}, 1_700_000_000_000_000_000 + i)
        for i in range(first, first + count)
    ]


def test_a_batch_is_retired_only_after_telegraf_read_it_and_commit_delay_passed(
    tmp_path: Path,
) -> None:
    pipe = Pipe()
    writer = _writer(tmp_path / "j", pipe.stream, commit_delay_s=0.3)
    writer.write_points(_points(0, 10))
    writer.tick()
    time.sleep(0.4)
    writer.tick()
    assert len(writer.journal.entries) == 1, "unread by Telegraf: kept"
    pipe.read_all()
    writer.tick()
    assert len(writer.journal.entries) == 1, "read, but commit_delay has not passed: kept"
    time.sleep(0.4)
    writer.tick()
    assert len(writer.journal.entries) == 0, "read and commit_delay passed: retired"


def test_after_a_crash_the_unretired_batches_go_out_first_byte_identical(tmp_path: Path) -> None:
    pipe = Pipe()
    writer = _writer(tmp_path / "j", pipe.stream, commit_delay_s=60)
    writer.write_points(_points(0, 5))
    writer.write_points(_points(5, 5))
    first_run = pipe.read_all()
    writer.journal.sync()  # a SIGKILL: no close(), the page cache survives
    writer.journal._close_active()
    assert writer.journal._lock_fd is not None
    os.close(writer.journal._lock_fd)

    pipe2 = Pipe()
    again = _writer(tmp_path / "j", pipe2.stream, commit_delay_s=60)
    again.write_points(_points(10, 5))  # new data queues behind the old
    again.tick()
    second_run = pipe2.read_all()
    assert second_run.startswith(first_run)
    new = again.serializer.lines(_points(10, 5))
    assert second_run[len(first_run) :] == ("\n".join(new) + "\n").encode()
    assert again.journal_status()["replayed"] == 2


def test_at_the_cap_live_data_is_held_then_the_oldest_is_dropped_and_counted(
    tmp_path: Path,
) -> None:
    buffer = tmp_path / "buffer"
    buffer.mkdir()
    pipe = Pipe()
    writer = _writer(tmp_path / "state" / "x.journal", pipe.stream, commit_delay_s=0)
    writer.cap = BufferCap(64 * 1024, buffer, tmp_path / "state", every_s=0)
    (buffer / "wal").write_bytes(b"\0" * 62 * 1024)  # Telegraf's buffer near the cap
    writer.tick()
    assert writer.holding
    for i in range(100):
        writer.write_points(_points(i * 10, 10))
        writer.tick()
    assert pipe.read_all() == b"", "nothing handed to Telegraf at the cap"
    status = writer.journal_status()
    assert status["dropped"] > 0
    assert writer.cap.used(fresh=True) <= 64 * 1024 + 4096  # within the cap + one segment
    kept = [writer.journal.read(e) for e in writer.journal.entries]
    newest = writer.serializer.lines(_points(999, 1))[0]
    assert kept[-1].endswith(f"{newest}\n".encode()), "the newest data is kept"
    (buffer / "wal").unlink()  # the sinks drained the buffer
    writer.tick()
    writer.tick()
    assert not writer.holding
    out = pipe.read_all()
    assert out == b"".join(kept), "held data goes out in order once below the cap"
    assert status["dropped"] + out.count(b"\n") == 1000


def test_the_checkpoint_survives_when_only_replayed_entries_retire(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    journal.open()
    last = journal.append(b"m v=1i 1\n", meta=b'{"n": 1}')
    journal.close()
    again = Journal(tmp_path / "j")
    again.open()
    again.retire(last.seq)  # the replay was taken by Telegraf; nothing new appended yet
    # a SIGKILL now: the lock dies with the process, the files stay
    assert again._lock_fd is not None
    os.close(again._lock_fd)
    third = Journal(tmp_path / "j")
    assert third.open() == []
    assert third.meta == b'{"n": 1}'


def test_a_failed_append_leaves_no_torn_frame_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(tmp_path / "j")
    journal.open()
    journal.append(b"m v=1i 1\n")
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:10]))  # disk full
    with pytest.raises(OSError, match="short write"):
        journal.append(b"m v=2i 2\n")
    monkeypatch.undo()
    journal.append(b"m v=3i 3\n")
    journal.close()
    again = Journal(tmp_path / "j")
    assert [again.read(e) for e in again.open()] == [b"m v=1i 1\n", b"m v=3i 3\n"]
    assert again.stats.torn == 0


def test_an_entry_synced_after_its_segment_rolled_was_fsynced_in_its_own_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A probe, not a mock: every fsync still happens; it records which file it was for.
    fsynced: list[str] = []
    real_fsync = os.fsync

    def probe(fd: int) -> None:
        fsynced.append(Path(f"/proc/self/fd/{fd}").readlink().name)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", probe)
    journal = Journal(tmp_path / "j", segment_bytes=100)
    journal.open()
    journal.append(b"x" * 80 + b"\n")  # segment 1 (full after this)
    entry = journal.append(b"y" * 80 + b"\n")  # segment 2
    fsynced.clear()
    journal.append(b"z" * 80 + b"\n")  # rolls: segment 2 is closed, segment 3 opened
    journal.sync_through(entry.seq)
    assert entry.segment.name in fsynced, fsynced


def test_durable_callers_keep_going_while_segments_roll(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j", segment_bytes=4096)
    journal.open()
    lock = threading.Lock()
    errors: list[OSError] = []

    def caller() -> None:
        for i in range(1500):
            with lock:
                entry = journal.append(f"m v={i}i {i}\n".encode() * 4)
            try:
                journal.sync_through(entry.seq)
            except OSError as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert not journal.unsynced()
