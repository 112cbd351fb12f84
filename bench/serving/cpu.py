"""CPU time per image, by group of processes: where a run's CPU goes.

Every process's user and system time is read from /proc before and after a run. A group is
named by its root processes (their descendants count with them), by one process alone, or by a
word of the command line (every PostgreSQL process of the host, say: the database's work for
others counts too, so measure on a quiet machine). A process that ends inside the window takes
its time with it, so only servers that outlive the run are measured this way; a process belongs
to the first group that claims it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    cmdline: str
    cpu_seconds: float


Group = Callable[[Process, Mapping[int, Process]], bool]


def processes() -> dict[int, Process]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # ended meanwhile
            continue
        # The command name in parentheses may hold spaces; the fields after it do not.
        fields = stat.rsplit(")", 1)[1].split()
        utime, stime = int(fields[11]), int(fields[12])
        pid = int(entry.name)
        found[pid] = Process(pid, int(fields[1]), cmdline, (utime + stime) / TICKS)
    return found


def under(*roots: int) -> Group:
    """The root processes and all their descendants."""

    def member(process: Process, table: Mapping[int, Process]) -> bool:
        seen = set()
        while process is not None and process.pid not in seen:
            if process.pid in roots:
                return True
            seen.add(process.pid)
            process = table.get(process.ppid)
        return False

    return member


def only(pid: int) -> Group:
    return lambda process, table: process.pid == pid


def named(word: str) -> Group:
    return lambda process, table: word in process.cmdline


class CpuMeter:
    """``with CpuMeter({"server": under(pid), ...}) as meter:`` around a run, then
    ``meter.ms_per(images)``: CPU milliseconds per image for each group."""

    def __init__(self, groups: Mapping[str, Group]) -> None:
        self.groups = dict(groups)

    def _totals(self) -> dict[tuple[str, int], float]:
        table = processes()
        totals = {}
        for process in table.values():
            for name, member in self.groups.items():
                if member(process, table):
                    totals[(name, process.pid)] = process.cpu_seconds
                    break
        return totals

    def __enter__(self) -> CpuMeter:
        self._before = self._totals()
        return self

    def __exit__(self, *exc) -> None:
        self._after = self._totals()

    def ms_per(self, count: int) -> dict[str, float]:
        used = dict.fromkeys(self.groups, 0.0)
        for (name, pid), seconds in self._after.items():
            used[name] += seconds - self._before.get((name, pid), 0.0)
        return {name: round(seconds * 1000 / count, 1) for name, seconds in used.items()}
