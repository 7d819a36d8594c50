#!/usr/bin/env python3
"""Process and memory helpers for scripts/bench.sh (standard library only).

    proc.py cpu PID        user+system CPU seconds of PID and all its descendants
    proc.py mem PID        "VmRSS VmHWM" in KiB, summed over PID and its descendants
    proc.py prefault MIB   maps MIB MiB of anonymous memory, faults every page in,
                           then frees it (prints the milliseconds it took)

Why prefault: this VM hands freed guest pages back to the host (virtio-balloon free
page reporting), so the first touch of a page after a while costs a fault in the
host as well (issue 6 saw results move 2-3x with it). Touching a block of memory
right before a run makes the host back it again; the pages freed at exit go to the
top of the guest's free lists, where the broker's and the page cache's next
allocations find them (they are reported back only after a couple of seconds).
Measured when this was written, after 30 s idle and a warm-up per broker start: 1 GiB
took 0.8-1.0 s to fault in, and the baseline produce was about 10% faster with it,
less than the spread between runs.
"""

import mmap
import os
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    # The command name is in parentheses and may hold spaces: split after the last ')'.
    return data[data.rindex(")") + 2 :].split()


def descendants(root):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(stat_fields(entry)[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def cpu_seconds(root):
    total = 0
    for pid in descendants(root):
        try:
            fields = stat_fields(pid)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLK_TCK


def memory_kib(root):
    rss = hwm = 0
    for pid in descendants(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                    elif line.startswith("VmHWM:"):
                        hwm += int(line.split()[1])
        except OSError:
            continue
    return rss, hwm


def prefault(mib):
    start = time.monotonic()
    size = mib << 20
    if size:
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)
        block = mmap.mmap(-1, size, flags=flags)
        page = mmap.PAGESIZE
        for offset in range(0, size, page):  # cheap when MAP_POPULATE already did it
            block[offset] = 1
        block.close()
    return (time.monotonic() - start) * 1000


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("cpu", "mem", "prefault"):
        print(__doc__, file=sys.stderr)
        return 2
    command, arg = sys.argv[1], int(sys.argv[2])
    if command == "cpu":
        if not os.path.exists(f"/proc/{arg}"):
            print(f"no process {arg}", file=sys.stderr)
            return 1
        print(f"{cpu_seconds(arg):.2f}")
    elif command == "mem":
        print(*memory_kib(arg))
    else:
        print(f"{prefault(arg):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
