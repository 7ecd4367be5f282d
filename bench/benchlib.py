"""What the Python benches share: reading `millions load`'s JSON summary for errors of any kind,
defensively (its fields grow: errors by kind, by call), and the CPU time of processes under test
(bench/README.md, rule 9)."""
import json
import statistics
import os
import re

ERROR_KEY = re.compile(r"^(errors?|failures?|failed)(_by_[a-z_]+|_total|_count)?$")


def count_errors(value):
    if isinstance(value, bool):
        return 0
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, dict):
        return sum(count_errors(v) for v in value.values())
    if isinstance(value, list):
        return sum(count_errors(v) for v in value)
    return 0


def check_load_summary(returncode, out_path, tail, what, failed):
    """`millions load`'s JSON summary, checked: exit 0, every answer 2xx, no error counted, some
    requests made. Raises `failed(message)`; returns (successes/s, p99 ms of successes)."""
    if returncode != 0:
        raise failed(f"{what}: millions load exited {returncode}:\n{tail}")
    try:
        with open(out_path) as f:
            r = json.load(f)
    except (OSError, ValueError) as e:
        raise failed(f"{what}: no JSON summary from millions load ({e}):\n{tail}")
    statuses = r.get("by_status")
    errors = {k: v for k, v in r.items() if ERROR_KEY.match(k) and count_errors(v)}
    bad = {k: v for k, v in (statuses or {}).items()
           if not (k.isdigit() and 200 <= int(k) < 300) and v}
    if bad or errors:
        raise failed(f"{what}: millions load saw failures: by_status {bad} {errors}\n{tail}")
    if statuses is None and not any(ERROR_KEY.match(k) for k in r):
        raise failed(f"{what}: millions load's summary says nothing of errors: {sorted(r)}")
    if not r.get("requests"):
        raise failed(f"{what}: millions load made no requests:\n{tail}")
    rps, p99 = r.get("rps"), r.get("p99_ms")  # both of successes only
    if not isinstance(rps, (int, float)) or not isinstance(p99, (int, float)):
        raise failed(f"{what}: no successes/s or p99 in millions load's summary: {sorted(r)}")
    return rps, p99


def cpu_seconds(pid):
    """utime + stime of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(pids):
    """{pid: utime+stime seconds}; processes gone or not readable are left out."""
    out = {}
    for p in pids:
        try:
            out[p] = cpu_seconds(p)
        except (OSError, IndexError, ValueError):
            pass
    return out


def cpu_delta(before, after):
    """CPU used between two cpu_of snapshots; a process that appeared in between counts from 0."""
    return sum(v - before.get(p, 0.0) for p, v in after.items())


def postgres_pids(pg, skip=()):
    """The postmaster of a PgServer and its children (backends, background workers), but for
    the pids in `skip` (the bench's own session)."""
    try:
        pm = int(open(os.path.join(pg.dir, "data", "postmaster.pid")).readline())
    except (OSError, ValueError):
        return []
    pids = [pm]
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) not in skip:
            try:
                if int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1]) == pm:
                    pids.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return pids


def run_main(main, failed, selftest, not_exercised, cleanup):
    """Runs a Python bench's main() and exits as every bench does: a `failed` exception prints
    `bench: FAIL: ...` and exits 1; exit code 3 under BENCH_SELFTEST prints why the check was not
    exercised (`not_exercised`); `cleanup()` runs in every case."""
    import sys
    status = 0
    try:
        main()
    except failed as e:
        print(f"bench: FAIL: {e}", file=sys.stderr, flush=True)
        status = 1
    except SystemExit as e:
        if selftest and e.code == 3:
            print(f"bench: selftest: {not_exercised}: the failure check was not exercised",
                  file=sys.stderr, flush=True)
        status = e.code if isinstance(e.code, int) else 1
    except BaseException:
        status = 1
        raise
    finally:
        cleanup()
    sys.exit(status)


# Medians with their spread, and per-round ratios, as bench/README.md's rule prints them.
def fmt(values, digits=0):
    """median [min-max] spread%, the spread being (max - min) / median."""
    m = statistics.median(values)
    sp = (max(values) - min(values)) / m * 100 if m else 0.0
    return f"{m:,.{digits}f} [{min(values):,.{digits}f}-{max(values):,.{digits}f}] {sp:.0f}%"


def ratio(a, b, digits=2):
    rs = [x / y for x, y in zip(a, b) if y]
    if not rs:
        return "n/a"
    return f"x{statistics.median(rs):.{digits}f} [{min(rs):.{digits}f}-{max(rs):.{digits}f}]"
