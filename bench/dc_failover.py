"""bench/dc_failover: RTO and RPO of moving the database between DCs (docs/datacentres.md).

One `millions up` of tests/integration/dc_ledger.py's topology (dc1: pg1 and pg2, the primary
cluster; dc2: pg3, a Patroni standby cluster; a web node, balancer and cache node per DC; etcd in
dc3; [postgres] dc_failover_after_ms = AFTER_MS). A writer ledger signs users up through both
DCs' web nodes (dc2's only while dc1 is down) in every round.
- Planned, ROUNDS rounds: `millions dc failover dc2`, then `millions dc failback`. RTO: the
  runner's (fence to the first write committed in the new primary DC) and the ledger's write
  stall (the longest time without an acknowledged sign-up, from the last one before the
  command); RPO: acknowledged sign-ups missing from the new primary.
- Unplanned, ROUNDS rounds: `chaos dc-down dc1`; the runner promotes dc2 by itself. RTO: the
  runner's (from the last moment dc1 answered) and the ledger's (dc-down to the first write
  sent after it acknowledged through dc2); RPO: acknowledged sign-ups missing in dc2. Then `chaos dc-up dc1`
  (dc1 is rebuilt as a standby of dc2) and a failback, for the next round.
Medians with [min-max] and spread. Fails (exit 1) on an operation that fails, a planned round
that loses an acknowledged write, or a write never acknowledged after a failover. Loopback only;
bounded (about 4 minutes with the defaults).

Environment: ROUNDS (3), AFTER_MS (4000), BENCH_KEEP=1 (keep the run directory)."""
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from benchlib import fmt, run_main  # noqa: E402
from dc_ledger import Ledger, TwoDcs  # noqa: E402
from harness import wait_for  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "3"))
AFTER_MS = int(os.environ.get("AFTER_MS", "4000"))
tmp = tempfile.mkdtemp(prefix="millions-bench-dcf-")
os.chmod(tmp, 0o755)
dcs = TwoDcs(tmp, name="dcfbench", failover_after_ms=AFTER_MS)


class Failed(Exception):
    pass


def tag():
    """A fresh prefix for a round's handles."""
    tag.n = getattr(tag, "n", 0) + 1
    return f"r{tag.n}"


def planned(to, rows):
    led = Ledger(dcs, tag(), ["web1", "web2"])
    time.sleep(1.5)
    t0 = time.time()
    rc, out, err = dcs.run("dc", "failback" if to == "dc1" else "failover",
                           *([] if to == "dc1" else [to]))
    time.sleep(2)
    led.finish()
    if rc != 0:
        raise Failed(f"dc failover {to}: {out}{err}")
    op = dcs.dc_op()["operation"]
    lost = led.lost(op["new_primary"])
    gap = led.stall(t0)
    if led.gap_after(t0) is None:
        raise Failed(f"no write acknowledged after the failover to {to}")
    rows.append((to, op["rto_s"], gap, len(lost), len(led.acked)))
    print(f"  planned -> {to}: RTO {op['rto_s']:.2f} s (runner), write stall {gap:.2f} s; "
          f"lost {len(lost)} of {len(led.acked)}", flush=True)
    if lost:
        raise Failed(f"planned failover to {to} lost acknowledged writes: {lost[:5]}")


def unplanned(rows):
    led = Ledger(dcs, tag(), ["web2"])
    time.sleep(1.5)
    t0 = time.time()
    rc, _, err = dcs.run("chaos", "dc-down", "dc1")
    if rc != 0:
        raise Failed("chaos dc-down dc1: " + err)
    op = wait_for(lambda: (lambda o: o if o["operation"].get("kind") == "unplanned" and
                           o["operation"].get("state") != "running" else None)(dcs.dc_op()),
                  60 + AFTER_MS / 1000, 0.25)
    time.sleep(2)
    led.finish()
    if not op or op["operation"]["state"] != "done":
        raise Failed(f"the runner did not fail over: {op}")
    lost = led.lost("pg3")
    gap = led.gap_after(t0)
    if gap is None:
        raise Failed("no write acknowledged through dc2 after dc-down")
    rows.append((op["operation"]["rto_s"], gap, len(lost), len(led.acked),
                 op["operation"]["lost_bytes"]))
    print(f"  unplanned (dc-down dc1): RTO {op['operation']['rto_s']:.2f} s (runner, from the "
          f"last answer), {gap:.2f} s (ledger, from dc-down); lost {len(lost)} of "
          f"{len(led.acked)} acknowledged ({op['operation']['lost_bytes']} WAL bytes at most)",
          flush=True)
    rc, _, err = dcs.run("chaos", "dc-up", "dc1")
    if rc != 0:
        raise Failed("chaos dc-up dc1: " + err)
    t1 = time.time()
    count = "SELECT count(*) FROM users"
    if wait_for(lambda: dcs.sql("pg1", "SELECT pg_is_in_recovery()") == "t" and
                dcs.sql("pg1", count) == dcs.sql("pg3", count), 120, 1) is None:
        raise Failed("dc1 did not rejoin as a standby of dc2")
    print(f"  dc1 rebuilt as a standby of dc2 in {time.time() - t1:.1f} s", flush=True)


def main():
    t0 = time.time()
    rc, out = dcs.up()
    if rc != 0:
        raise Failed("up: " + out[-1500:])
    print(f"up took {time.time() - t0:.1f} s; {ROUNDS} rounds", flush=True)
    plan, unplan, back = [], [], []
    for _ in range(ROUNDS):
        planned("dc2", plan)
        planned("dc1", back)
    for _ in range(ROUNDS):
        unplanned(unplan)
        planned("dc1", back)
    print("\nplanned failover dc1 -> dc2, RTO runner (s):  ", fmt([r[1] for r in plan], 2))
    print("planned failover dc1 -> dc2, write stall (s): ", fmt([r[2] for r in plan], 2))
    print("planned failback dc2 -> dc1, RTO runner (s):  ", fmt([r[1] for r in back], 2))
    print("planned failback dc2 -> dc1, write stall (s): ", fmt([r[2] for r in back], 2))
    print("planned, acknowledged writes lost:          ", sum(r[3] for r in plan + back),
          "of", sum(r[4] for r in plan + back))
    print(f"unplanned (bound {AFTER_MS} ms), RTO runner (s):", fmt([r[0] for r in unplan], 2))
    print("unplanned, RTO ledger from dc-down (s):     ", fmt([r[1] for r in unplan], 2))
    print("unplanned, acknowledged writes lost:        ", [r[2] for r in unplan], "of",
          [r[3] for r in unplan], "; WAL bytes at most:", [r[4] for r in unplan])


def cleanup():
    dcs.run("down")
    if not os.environ.get("BENCH_KEEP"):
        shutil.rmtree(tmp, ignore_errors=True)


run_main(main, Failed, False, "", cleanup)
