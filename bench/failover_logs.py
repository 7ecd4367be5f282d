"""What bench/failover.py reads off the machine: the runner's and the members' logs (when the
kill was sent, when a replica was promoted, to the millisecond) and the process tree under a
database member (to freeze it whole)."""
import calendar
import json
import os
import re
import time


class Failed(Exception):
    pass


def utc_seconds(stamp, fmt):
    return calendar.timegm(time.strptime(stamp, fmt))


def kill_time(tmp, old):
    """When the runner sent the SIGKILLs: its "chaos: SIGKILL" event (wall clock, 1 ms)."""
    try:
        lines = open(os.path.join(tmp, "run", "runner.log"), errors="replace").readlines()
    except OSError:
        lines = []
    for line in reversed(lines):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("msg") == "chaos: SIGKILL" and e.get("node_name") == old:
            ts = e["ts"]  # 2026-12-02T08:51:17.041Z
            return utc_seconds(ts[:19], "%Y-%m-%dT%H:%M:%S") + float("0" + ts[19:].rstrip("Z"))
    raise Failed(f"no 'chaos: SIGKILL' event for {old} in the runner's log")


PATRONI_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) \w+: (.*)")
PG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.(\d{3}) (\S+) \[\d+\] \w+:  (.*)")
PROMOTION_EVENTS = {  # event: (log, start of the message)
    "lock": ("patroni", "promoted self to leader"),  # logged at the end of Patroni's HA cycle
    "recovered": ("pg", "archive recovery complete"),  # writes are possible from about here
    "ready": ("pg", "database system is ready to accept connections"),  # the postmaster, later
}


def promotion_from_logs(tmp, members, old, after):
    """{member, lock, recovered, ready}: the times (1 ms) of PROMOTION_EVENTS in the log of the
    member but `old` that Patroni promoted after `after`, or None. Patroni stamps local time,
    PostgreSQL the zone it names."""
    for name in members:
        if name == old:
            continue
        try:
            with open(os.path.join(tmp, "run", "logs", f"{name}.log"), errors="replace") as f:
                lines = f.readlines()
        except OSError:
            continue
        seen = {}
        for line in lines:
            m, kind = PATRONI_LINE.match(line), "patroni"
            if m:
                t = time.mktime(time.strptime(m[1], "%Y-%m-%d %H:%M:%S")) + int(m[2]) / 1000
                msg = m[3]
            else:
                m, kind = PG_LINE.match(line), "pg"
                if not m:
                    continue
                base = (utc_seconds(m[1], "%Y-%m-%d %H:%M:%S") if m[3] in ("UTC", "GMT")
                        else time.mktime(time.strptime(m[1], "%Y-%m-%d %H:%M:%S")))
                t, msg = base + int(m[2]) / 1000, m[4]
            if t < after:
                continue
            for event, (log, start) in PROMOTION_EVENTS.items():
                if kind == log and msg.startswith(start) and event not in seen:
                    seen[event] = t
        if "lock" in seen:
            return {"member": name, **{e: seen.get(e, float("nan")) for e in PROMOTION_EVENTS}}
    return None


def proc_state(pid):
    """A process's state letter, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def parents():
    """{pid: parent pid} of every process."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    out[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return out


def tree(roots):
    """The roots and all their descendants."""
    pp = parents()
    out, todo = set(), [r for r in roots if r in pp]
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo += [c for c, q in pp.items() if q == p]
    return out


def member_pids(tmp, name):
    """(Patroni's pid, the postmaster's pid) of a member, from /proc and postmaster.pid."""
    conf = os.path.join(tmp, "run", name, "patroni.yml")
    patroni = None
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if conf.encode() in f.read().split(b"\0"):
                        patroni = int(d)
            except OSError:
                pass
    try:
        with open(os.path.join(tmp, "run", name, "data", "postmaster.pid")) as f:
            postmaster = int(f.readline())
    except (OSError, ValueError):
        postmaster = None
    return patroni, postmaster


def signal_all(pids, sig):
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass
