"""`millions chaos matrix` on a small topology under `millions up` (etcd, one PostgreSQL under
Patroni, one Redis cache node, two web nodes behind our balancer, one CDN edge):
- kill:web, pause:redis and kill:edge for 5 s each under the built-in ledger: exit 0, every row
  with 0 lost
  and 0 duplicated writes and jobs (one writer also asks for edit jobs, run from the PostgreSQL
  queue), acknowledged writes, a write gap and a time to full health, the same
  rows in --json and in RUN_DIR/chaos_matrix.json (the dashboard's copy), one table on stdout;
  the readers load each photo's bytes from the edge, and with the edge killed from the public
  URL (the page's fallback) without a failed read;
- the ledger can fail: with MILLIONS_LEDGER_TEST_FAULT=phantom_ack,duplicate (an acknowledgement
  recorded for a photo never written; each writer's first upload sent twice without its
  Idempotency-Key) a baseline row reports lost and duplicated writes and the matrix exits 1;
- a bad fault name is a usage error (exit 2)."""
import json
import os
import subprocess
import tempfile
import time

from harness import Checks, binary, free_port, node, topology, wait_for, web_lb

tmp = tempfile.mkdtemp(prefix="millions-chaos-")
os.chmod(tmp, 0o755)
topo = os.path.join(tmp, "topology.toml")
topology(topo, name="chaostest", up=tmp, **web_lb(),
         postgres={"pool_size": 4, "node": [node("pg1", rest=free_port())]},
         redis=[node("redis1")], workers={"threads": 1},
         # The ledger's edit jobs run on the web nodes' threads (no NATS here): a job claimed by
         # the killed web node comes back after lease_ms, short so the verification is quick.
         queue={"lease_ms": 3000},
         edge={"threads": 1, "node": [node("edge1", admin=free_port())]})

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
    p = millions("chaos", "matrix", "--faults", "kill:web,pause:redis,kill:edge", "--seconds", "5",
                 "--json", out, "--topology", topo)
    print(f"matrix took {time.time() - t0:.1f} s", flush=True)
    print(p.stdout, flush=True)
    c.eq(p.returncode, 0, f"matrix exit code; stderr: {p.stderr[-1500:]}")
    doc = load(out)
    rows = doc["rows"] if doc else []
    c.eq([r["fault"] for r in rows], ["kill:web", "pause:redis", "kill:edge"],
         "one row per fault, in order")
    for r in rows:
        name = r["fault"]
        c.eq((r["lost"], r["duplicated"]), (0, 0), f"{name}: no write lost or duplicated: {r}")
        c.check(r["acknowledged"] > 20, f"{name}: the ledger wrote: {r['acknowledged']}")
        c.check(isinstance(r["write_gap_s"], (int, float)) and 0 <= r["write_gap_s"] < 30,
                f"{name}: a write gap: {r['write_gap_s']}")
        c.check(r["healthy"] and isinstance(r["health_s"], (int, float)) and r["health_s"] >= 0,
                f"{name}: full health reached: {r['health_s']}")
        c.check(r["reads"] > 0, f"{name}: the ledger read: {r['reads']}")
        c.check(not r["failed"] and not r["skipped"], f"{name}: measured: {r['note']}")
        c.eq((r["jobs_lost"], r["jobs_duplicated"]), (0, 0), f"{name}: no job lost: {r}")
        c.check(r["jobs_accepted"] > 0, f"{name}: jobs accepted: {r['jobs_accepted']}")
        c.check(r["media_reads"] > 0, f"{name}: the readers loaded photos: {r['media_reads']}")
    c.eq(rows[0]["target"] if rows else None, "web1", "kill:web aims at one web node")
    c.eq(rows[1]["target"] if len(rows) > 1 else None, "redis1", "pause:redis at the cache node")
    edge_row = rows[2] if len(rows) > 2 else {}
    c.eq(edge_row.get("target"), "edge1", "kill:edge aims at the edge")
    c.eq(rows[1].get("media_fallbacks") if len(rows) > 1 else None, 0,
         "with the edge up, photos load from it (no fallback)")
    c.check(edge_row.get("media_fallbacks", 0) > 0 and edge_row.get("failed_reads") == 0,
            f"with the edge killed, photos load from the public URL, no read fails: {edge_row}")
    lines = p.stdout.splitlines()
    c.check(len(lines) == 4 and lines[0].startswith("FAULT") and "kill:web" in lines[1]
            and "pause:redis" in lines[2] and "kill:edge" in lines[3],
            "one table on stdout, a line per row")
    dash = load(os.path.join(tmp, "run", "chaos_matrix.json"))
    c.check(dash is not None and dash.get("finished") is True and dash["rows"] == rows,
            "RUN_DIR/chaos_matrix.json holds the last matrix for the dashboard")

    # The ledger can fail: a phantom acknowledgement is lost, a write sent twice without its
    # key is duplicated, and the matrix says so with exit 1.
    bad = os.path.join(tmp, "bad.json")
    p = millions("chaos", "matrix", "--faults", "none", "--seconds", "2", "--writers", "2",
                 "--readers", "1", "--json", bad, "--topology", topo,
                 env={"MILLIONS_LEDGER_TEST_FAULT": "phantom_ack,duplicate"})
    print(p.stdout, flush=True)
    c.eq(p.returncode, 1, f"a ledger that lost and duplicated writes fails the matrix: "
                          f"{p.stderr[-800:]}")
    doc = load(bad)
    r = doc["rows"][0] if doc and doc["rows"] else {}
    c.eq(r.get("lost"), 1, f"the phantom acknowledgement is lost: {r}")
    c.eq(r.get("duplicated"), 2, f"each writer's unkeyed double write is duplicated: {r}")

    p = millions("chaos", "matrix", "--faults", "kill:nothing", "--topology", topo)
    c.eq(p.returncode, 2, "an unknown fault is a usage error")
finally:
    down = millions("down", "--topology", topo, timeout=120)
    c.eq(down.returncode, 0, "down")

    def left():
        return subprocess.run(["pgrep", "-f", tmp], capture_output=True, text=True).stdout.split()

    wait_for(lambda: not left(), 5)
    c.eq(left(), [], "nothing left running")
c.finish()
