"""Memory and binary-size measurement for edge_footprint: /proc readers and an ELF check.

Memory comes from ``/proc/<pid>/smaps_rollup`` (kernel 4.14+): RSS counts every resident page
a process maps, so pages shared by several processes (libpython, the interpreter's own
binary, a wheel's shared objects) are counted once per process; PSS divides each shared page
by the number of processes mapping it, so the PSS of all bundle processes adds up to what the
bundle really occupies. USS (Private_Clean + Private_Dirty) is what a process's exit frees.
"""

from __future__ import annotations

import os
import struct
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KIB = 1024
MIB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
_PRESENT = 1 << 63
_PFN_MASK = (1 << 55) - 1


# --- /proc ------------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from every thread's ``children`` list)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (0 once it has exited)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def tree_cpu_seconds(pid: int) -> float:
    """:func:`cpu_seconds` of ``pid`` and every process below it."""
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        total += cpu_seconds(current)
        stack += children(current)
    return total


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def rollup(pid: int) -> dict[str, int] | None:
    """``smaps_rollup`` in KiB (``Rss``, ``Pss``, ``Private_Clean`` ...); None once it exited."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    values: dict[str, int] = {}
    for line in text.splitlines()[1:]:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0])
    return values or None


def rss_hwm_kib(pid: int) -> int:
    """The kernel's own peak RSS of ``pid`` (VmHWM), which catches spikes between samples."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def plugin_label(argv: list[str]) -> str | None:
    """``python -m telegraf_bridge.plugins.<name> --config FILE`` (or ``bridge-<name>``) -> name."""
    if "-m" in argv[:-1]:
        module = argv[argv.index("-m") + 1]
        if module.startswith("telegraf_bridge.plugins."):
            return module.rsplit(".", 1)[-1]
    for arg in argv[:2]:  # a console script: argv[0], or argv[1] after the interpreter
        name = Path(arg).name
        if name.startswith("bridge-"):
            return name.removeprefix("bridge-").replace("-", "_")
    return None


def bundle_processes(telegraf_pid: int) -> dict[str, int]:
    """Label -> pid for Telegraf and every process below it.

    A child of Telegraf is a plugin, labelled by its command line (its source's name); a
    process below a plugin (taptap's decoder) is ``<plugin>/<program>``.
    """
    found = {"telegraf": telegraf_pid}

    def walk(pid: int, parent_label: str) -> None:
        for child in children(pid):
            argv = cmdline(child)
            if not argv:
                continue
            if parent_label == "telegraf":
                label = plugin_label(argv) or f"telegraf/{Path(argv[0]).name}"
            else:
                label = f"{parent_label.split('/', maxsplit=1)[0]}/{Path(argv[0]).name}"
            while label in found:  # two decoders of one plugin, say
                label += "+"
            found[label] = child
            walk(child, label)

    walk(telegraf_pid, "telegraf")
    return found


def resident_pages(pid: int) -> list[int] | None:
    """Physical frame numbers of every resident page of ``pid`` (from ``/proc/<pid>/pagemap``).

    Only mappings with resident pages (``Rss`` > 0 in ``smaps``) are read. None when the
    process is gone or the frame numbers are hidden (they are shown to root only).
    """
    try:
        smaps = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return None
    ranges: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    for line in smaps.splitlines():
        head = line.split(" ", 1)[0]
        if "-" in head and ":" not in head:
            low, _, high = head.partition("-")
            current = (int(low, 16), int(high, 16))
        elif line.startswith("Rss:") and current is not None and int(line.split()[1]) > 0:
            ranges.append(current)
    frames: list[int] = []
    hidden = True
    try:
        with Path(f"/proc/{pid}/pagemap").open("rb") as pagemap:
            for start, end in ranges:
                pagemap.seek(start // PAGE * 8)
                entries = array("Q")
                entries.frombytes(pagemap.read((end - start) // PAGE * 8))
                for entry in entries:
                    if entry & _PRESENT:
                        pfn = entry & _PFN_MASK
                        if pfn:
                            hidden = False
                            frames.append(pfn)
    except OSError:
        return None
    return None if hidden and ranges else frames


def bundle_shares(pages: dict[str, list[int]]) -> dict[str, float]:
    """Each process's share of the bundle's pages in KiB: a page mapped by n bundle processes
    counts 1/n to each, so the shares add up to the bundle's distinct resident pages.

    This is PSS as it would be if only the bundle ran: the kernel's PSS also divides a page
    with processes outside the bundle (this benchmark's own Python maps the same libpython,
    and so does any other Python on the machine), which would flatter the bundle.
    """
    users: Counter[int] = Counter()
    for frames in pages.values():
        users.update(set(frames))
    return {
        label: sum(1 / users[f] for f in set(frames)) * PAGE / KIB
        for label, frames in pages.items()
    }


# --- sampling ---------------------------------------------------------------------------------


def mib(kib: float) -> float:
    """KiB -> MiB, rounded for the report."""
    return round(kib * KIB / MIB, 2)


@dataclass
class Series:
    """One labelled process over the run: peak and last values in KiB, and its pids."""

    pids: list[int] = field(default_factory=list)
    peak: dict[str, int] = field(default_factory=dict)
    final: dict[str, int] = field(default_factory=dict)
    rss_hwm_kib: int = 0

    def add(self, pid: int, values: dict[str, int]) -> None:
        if not self.pids or self.pids[-1] != pid:
            self.pids.append(pid)
        self.final = values
        for key, value in values.items():
            self.peak[key] = max(self.peak.get(key, 0), value)
        self.rss_hwm_kib = max(self.rss_hwm_kib, rss_hwm_kib(pid))

    def figures(self) -> dict[str, float | int]:
        bundle_pss = (
            {
                "bundle_pss_peak_mib": mib(self.peak["bpss"]),
                "bundle_pss_final_mib": mib(self.final.get("bpss", 0)),
            }
            if "bpss" in self.peak
            else {}
        )
        return {
            "rss_peak_mib": mib(self.peak.get("rss", 0)),
            "rss_final_mib": mib(self.final.get("rss", 0)),
            "rss_hwm_mib": mib(self.rss_hwm_kib),
            "pss_peak_mib": mib(self.peak.get("pss", 0)),
            "pss_final_mib": mib(self.final.get("pss", 0)),
            "uss_peak_mib": mib(self.peak.get("uss", 0)),
            "uss_final_mib": mib(self.final.get("uss", 0)),
            **bundle_pss,
            "restarts": max(len(self.pids) - 1, 0),
        }


def measure(pid: int) -> dict[str, int] | None:
    """RSS, PSS and USS of ``pid`` in KiB."""
    values = rollup(pid)
    if values is None:
        return None
    return {
        "rss": values.get("Rss", 0),
        "pss": values.get("Pss", 0),
        "uss": values.get("Private_Clean", 0) + values.get("Private_Dirty", 0),
    }


@dataclass
class Sampler:
    """Samples a process tree; ``series`` per label, bundle totals per sample.

    ``bpss`` is the bundle-only PSS of :func:`bundle_shares`; it is left out (and the totals
    carry none) when page frame numbers cannot be read.
    """

    series: dict[str, Series] = field(default_factory=dict)
    totals: list[dict[str, int]] = field(default_factory=list)

    def sample(self, processes: dict[str, int], bundle: set[str]) -> dict[str, int]:
        """One sample of every process; returns the totals of the ``bundle`` labels."""
        measured: dict[str, dict[str, int]] = {}
        pages: dict[str, list[int]] = {}
        for label, pid in processes.items():
            values = measure(pid)
            if values is None:
                continue
            measured[label] = values
            if label in bundle:
                frames = resident_pages(pid)
                if frames is not None:
                    pages[label] = frames
        in_bundle = [label for label in measured if label in bundle]
        if in_bundle and all(label in pages for label in in_bundle):
            for label, share in bundle_shares(pages).items():
                measured[label]["bpss"] = round(share)
        total: dict[str, int] = {}
        for label, values in measured.items():
            self.series.setdefault(label, Series()).add(processes[label], values)
            if label in bundle:
                for key, value in values.items():
                    total[key] = total.get(key, 0) + value
        self.totals.append(total)
        return total

    def peak_total(self, key: str) -> int | None:
        values = [t[key] for t in self.totals if key in t]
        return max(values) if values else None

    def final_total(self, key: str) -> int | None:
        return self.totals[-1].get(key) if self.totals else None


# --- ELF --------------------------------------------------------------------------------------


def elf_sections(path: Path) -> list[str]:
    """Section names of an ELF file (32- or 64-bit, either byte order)."""
    with path.open("rb") as handle:
        ident = handle.read(16)
        if ident[:4] != b"\x7fELF":
            raise ValueError(f"{path} is not an ELF file")
        is64 = ident[4] == 2
        order = "<" if ident[5] == 1 else ">"
        if is64:
            header = handle.read(48)
            shoff, _flags, _ehsize, _phsz, _phnum, shentsize, shnum, shstrndx = struct.unpack(
                order + "24xQIHHHHHH", header
            )
        else:
            header = handle.read(36)
            shoff, _flags, _ehsize, _phsz, _phnum, shentsize, shnum, shstrndx = struct.unpack(
                order + "16xIIHHHHHH", header
            )

        def section(index: int) -> tuple[int, int, int]:
            handle.seek(shoff + index * shentsize)
            raw = handle.read(shentsize)
            if is64:
                name, _type, _fl, _addr, offset, size = struct.unpack(order + "IIQQQQ", raw[:40])
            else:
                name, _type, _fl, _addr, offset, size = struct.unpack(order + "IIIIII", raw[:24])
            return name, offset, size

        _, str_offset, str_size = section(shstrndx)
        handle.seek(str_offset)
        strings = handle.read(str_size)
        names = []
        for index in range(shnum):
            name_offset = section(index)[0]
            names.append(strings[name_offset : strings.index(b"\0", name_offset)].decode())
        return names


def binary_figures(path: Path) -> dict[str, Any]:
    """Size of a Telegraf binary and whether it carries a symbol table or DWARF.

    Go's linker flags ``-s`` (no symbol table) and ``-w`` (no DWARF) leave no ``.symtab`` and
    no ``.debug_*``/``.zdebug_*`` section: that is what "stripped" is checked by.
    """
    names = elf_sections(path)
    size = path.stat().st_size
    return {
        "path": str(path),
        "bytes": size,
        "mib": round(size / MIB, 2),
        "mb": round(size / 1e6, 2),
        "stripped": ".symtab" not in names,
        "dwarf": any(n.startswith((".debug_", ".zdebug_")) for n in names),
    }
