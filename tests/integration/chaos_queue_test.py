"""`millions chaos matrix` with the queue's faults and jobs in the ledger, on a small topology
under `millions up` (etcd, one PostgreSQL under Patroni, one Redis cache node, two web nodes
behind our balancer, one NATS JetStream server, two `serve worker` processes):
- kill:worker and restart:nats for 5 s each, two of the four ledger writers also asking for an
  edit job on each upload: exit 0, every row with 0 lost and 0 duplicated writes AND jobs, jobs
  accepted, a job p99; the job columns in the table, --json and RUN_DIR/chaos_matrix.json;
- the job check can fail: with MILLIONS_LEDGER_TEST_FAULT=phantom_job (a job recorded as accepted
  that was never requested) a baseline row reports one lost job and the matrix exits 1."""
import json
import os
import subprocess
import tempfile
import time

from harness import Checks, binary, free_port, node, topology, wait_for, web_lb

tmp = tempfile.mkdtemp(prefix="millions-chaosq-")
os.chmod(tmp, 0o755)  # engines run as another user under a root runner
topo = os.path.join(tmp, "topology.toml")
# A job in a killed worker's hands comes back after ack_wait_ms: short here, so that the row's
# verification does not wait out the default 30 s.
topology(topo, name="chaosqueue", up=tmp, **web_lb(),
         postgres={"pool_size": 4, "node": [node("pg1", rest=free_port())]},
         redis=[node("redis1")],
         nats=[node("nats1", admin=free_port())],
         worker=[node("worker1"), node("worker2")],
         workers={"threads": 1},
         queue={"ack_wait_ms": 2000, "reconcile_ms": 1000, "reconcile_age_ms": 3000})

c = Checks()


def millions(*args, env=None, timeout=300):
    return subprocess.run([binary(), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=tmp, env={**os.environ, **(env or {})})


def load(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


t0 = time.time()
up = millions("up", topo, "--detach", timeout=240)
c.eq(up.returncode, 0, f"up --detach: {up.stdout[-600:]} {up.stderr[-600:]}")
print(f"up took {time.time() - t0:.1f} s", flush=True)
try:
    out = os.path.join(tmp, "matrix.json")
    t0 = time.time()
    p = millions("chaos", "matrix", "--faults", "kill:worker,restart:nats", "--seconds", "5",
                 "--jobs", "2", "--settle", "45", "--json", out, "--topology", topo)
    print(f"matrix took {time.time() - t0:.1f} s", flush=True)
    print(p.stdout, flush=True)
    c.eq(p.returncode, 0, f"matrix exit code; stderr: {p.stderr[-1500:]}")
    doc = load(out)
    rows = doc["rows"] if doc else []
    c.eq([r["fault"] for r in rows], ["kill:worker", "restart:nats"], "one row per fault")
    c.eq([r["target"] for r in rows], ["worker1", "nats1"], "aimed at a worker, at nats")
    for r in rows:
        name = r["fault"]
        c.eq((r["lost"], r["duplicated"]), (0, 0), f"{name}: no write lost or duplicated: {r}")
        c.eq((r["jobs_lost"], r["jobs_duplicated"]), (0, 0),
             f"{name}: no job lost or duplicated: {r}")
        c.check(r["jobs_accepted"] > 0, f"{name}: jobs accepted: {r['jobs_accepted']}")
        c.check(r["acknowledged"] > 20, f"{name}: the ledger wrote: {r['acknowledged']}")
        c.check(isinstance(r["job_p99_s"], (int, float)) and 0 < r["job_p99_s"] < 60,
                f"{name}: a job p99: {r['job_p99_s']}")
        # A job answered 503 that ran all the same is counted apart, not as a duplicate, and
        # should read 0: a publish whose acknowledgement was lost across the nats restart is
        # answered 202 when a worker claimed the job first, and never runs when the web node
        # failed it first (docs/faults.md). Printed here for the record.
        print(f"{name}: jobs answered 503 that ran: {r['jobs_ran_after_503']}", flush=True)
        c.check(r["healthy"] and not r["failed"] and not r["skipped"],
                f"{name}: measured, full health reached: {r['note']}")
    lines = p.stdout.splitlines()
    c.check(len(lines) == 3 and "JOBS" in lines[0] and "JLOST" in lines[0]
            and "JOB_P99" in lines[0], "the job columns in the table")
    dash = load(os.path.join(tmp, "run", "chaos_matrix.json"))
    c.check(dash is not None and dash.get("finished") is True and dash["rows"] == rows,
            "RUN_DIR/chaos_matrix.json holds the rows with their job columns")

    # The job check can fail: a job recorded as accepted that was never requested is lost.
    bad = os.path.join(tmp, "bad.json")
    p = millions("chaos", "matrix", "--faults", "none", "--seconds", "2", "--writers", "1",
                 "--readers", "0", "--jobs", "1", "--json", bad, "--topology", topo,
                 env={"MILLIONS_LEDGER_TEST_FAULT": "phantom_job"})
    print(p.stdout, flush=True)
    c.eq(p.returncode, 1, f"a lost job fails the matrix: {p.stderr[-800:]}")
    doc = load(bad)
    r = doc["rows"][0] if doc and doc["rows"] else {}
    c.eq((r.get("jobs_lost"), r.get("lost")), (1, 0), f"the phantom job is lost, no write: {r}")
    c.check(r.get("jobs_accepted", 0) >= 2, f"real jobs accepted beside it: {r}")

    p = millions("chaos", "matrix", "--jobs", "5", "--writers", "4", "--topology", topo)
    c.eq(p.returncode, 2, "more job writers than writers is a usage error")
finally:
    down = millions("down", "--topology", topo, timeout=120)
    c.eq(down.returncode, 0, "down")

    def left():
        return subprocess.run(["pgrep", "-f", tmp], capture_output=True, text=True).stdout.split()

    wait_for(lambda: not left(), 5)
    c.eq(left(), [], "nothing left running")
c.finish()
