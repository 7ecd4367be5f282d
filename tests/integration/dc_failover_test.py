"""The database across two DCs (docs/datacentres.md), on `millions up`: dc1 holds the primary
cluster (pg1, pg2; Patroni scope "millions"), dc2 a Patroni standby cluster of it (pg3, scope
"millions-dc2"), each DC a balancer and a web node; etcd alone in dc3 (the witness site).
- dc2's standby replicates dc1's writes; web2 (dc2) reads from it, writes go to dc1.
- A writer ledger (sign-ups through both DCs' web nodes, each acknowledged handle recorded)
  runs across `millions dc failover dc2` and `millions dc failback`: every acknowledged write is
  in the new primary afterwards (RPO 0), and the RTO is printed.
- `chaos dc-down dc1` under the ledger: the runner promotes dc2 by itself after [postgres]
  dc_failover_after_ms; RTO (until a write succeeds through dc2) and RPO (acknowledged writes
  missing) printed. `chaos dc-up dc1`: dc1's members rejoin as a standby of dc2 (rebuilt), and
  failback to dc1 again loses nothing.
On loopback by default; DC_FAILOVER_NETWORK=netns (as root) runs it in namespaces."""
import json
import os
import tempfile
import time

from dc_ledger import Ledger, TwoDcs
from harness import Checks, http_request, wait_for

tmp = tempfile.mkdtemp(prefix="millions-dcf-")
os.chmod(tmp, 0o755)
dcs = TwoDcs(tmp)
run, status, sql, primaries, web, dc_op = (dcs.run, dcs.status, dcs.sql, dcs.primaries, dcs.web,
                                           dcs.dc_op)
c = Checks()

t0 = time.time()
rc, out = dcs.up()
c.eq(rc, 0, "up --detach: " + out[-1500:])
print(f"up took {time.time() - t0:.1f} s")
try:
    st = status()
    c.eq(st["pg3-pg"].get("db_role"), "standby_leader", "pg3 leads dc2's standby cluster")
    c.eq(primaries(), ["pg1"], "dc1's pg1 is the only primary")
    c.eq(dc_op()["primary_dc"], "dc1", "the runner sees dc1 take writes")

    def dc_rows():
        return {d["dc"]: d for d in json.loads(run("status", "--json")[1]).get("dcs", [])}
    got = wait_for(lambda: (lambda r: r if r.get("dc2", {}).get("replication_lag_bytes", -1) >= 0
                            else None)(dc_rows()), 10, 0.5)
    print("status, per DC:", got)
    c.check(got is not None and got["dc1"]["takes_writes"] and not got["dc2"]["takes_writes"]
            and got["dc2"]["cluster"] == "millions-dc2"
            and got["dc2"]["replication_lag_bytes"] < 1 << 20,
            f"status shows dc1 taking writes and dc2's standby lag: {got}")

    # Writes through dc2's web node reach dc1's primary and replicate back to dc2's standby.
    host, port = web("web2")
    s, _, _ = http_request(host, port, "POST", "/api/users",
                           {"handle": "from_dc2", "password": "password123"})
    c.eq(s, 201, "a sign-up through web2 (dc2) is written to dc1's primary")
    c.check(wait_for(lambda: sql("pg3", "SELECT count(*) FROM users WHERE handle='from_dc2'")
                     == "1", 10) is not None, "dc2's standby has the write")
    # web2's replica reads go to its own DC's standby, not to dc1's replica.
    def member_queries(w, member):
        h, p = web(w)
        _, _, body = http_request(h, p, "GET", "/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith("millions_db_member_reads_total") and f'member="{member}"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return total
    before = {m: member_queries("web2", m) for m in ("pg2", "pg3")}
    for i in range(20):
        http_request(host, port, "GET", "/api/users/by-handle/nobody_" + str(i))
    after = {m: member_queries("web2", m) for m in ("pg2", "pg3")}
    c.check(after["pg3"] - before["pg3"] >= 10 and after["pg2"] == before["pg2"],
            f"web2 reads from dc2's standby: queries before {before}, after {after}")

    # Each DC has its own cache nodes; a write in dc1 invalidates dc2's cache too.
    h1, p1 = web("web1")
    s, _, u = http_request(h1, p1, "POST", "/api/users", {"handle": "cachey", "password":
                                                          "password123", "display_name": "before"})
    uid = json.loads(u)["id"]
    s, _, sess = http_request(h1, p1, "POST", "/api/sessions",
                              {"handle": "cachey", "password": "password123"})
    token = json.loads(sess)["token"]

    def shown():
        s, _, body = http_request(host, port, "GET", f"/api/users/{uid}")
        return json.loads(body).get("display_name") if s == 200 else None
    c.check(wait_for(lambda: shown() == "before", 10) is not None, "web2 reads the new user")
    for _ in range(5):
        shown()  # cached in dc2 (redis2, and web2's L1)
    s, _, _ = http_request(h1, p1, "PATCH", "/api/me", {"display_name": "after"},
                           headers={"Authorization": "Bearer " + token})
    c.eq(s, 200, "profile updated through web1 (dc1)")
    c.check(wait_for(lambda: shown() == "after", 3) is not None,
            f"dc2's cache is invalidated by dc1's write: web2 shows {shown()!r}")

    # Planned failover under the ledger: RPO 0.
    led = Ledger(dcs, "p1", ["web1", "web2"])
    time.sleep(2)
    t_fo = time.time()
    rc, out, err = run("dc", "failover", "dc2")
    print(out, err)
    c.eq(rc, 0, "dc failover dc2")
    c.check("RTO" in out and "no acknowledged write lost" in out, "failover prints RTO and RPO")
    time.sleep(3)
    led.finish()
    c.eq(primaries(), ["pg3"], "after failover dc2's pg3 is the only primary")
    lost = led.lost("pg3")
    stall = led.stall(t_fo)
    print(f"planned failover: {len(led.acked)} acknowledged, {led.failed} failed, "
          f"{led.ambiguous} ambiguous, lost {len(lost)}; longest write stall "
          f"{stall if stall is None else round(stall, 2)} s")
    c.eq(lost, [], "planned failover: no acknowledged write lost")
    c.check(len(led.acked) > 5, f"the writers went on: {len(led.acked)} acknowledged")
    c.check(wait_for(lambda: sql("pg1", "SELECT pg_is_in_recovery()") == "t", 10) is not None,
            "dc1's old primary follows dc2 now")

    # Planned failback.
    led = Ledger(dcs, "p2", ["web1", "web2"])
    time.sleep(2)
    rc, out, err = run("dc", "failback")
    print(out, err)
    c.eq(rc, 0, "dc failback")
    time.sleep(3)
    led.finish()
    c.eq(primaries(), ["pg1"] if "pg1" in out else primaries()[:1], "one primary after failback")
    c.check(all(m in ("pg1", "pg2") for m in primaries()), "the primary is in dc1 again")
    lost = led.lost(primaries()[0]) if primaries() else ["?"]
    print(f"planned failback: {len(led.acked)} acknowledged, lost {len(lost)}")
    c.eq(lost, [], "failback: no acknowledged write lost")
    c.check(wait_for(lambda: sql("pg3", "SELECT pg_is_in_recovery()") == "t", 10) is not None,
            "dc2's pg3 is a standby again")

    # Unplanned: dc1 lost under the ledger (writes through dc2's web node).
    led = Ledger(dcs, "u1", ["web2"])
    time.sleep(2)
    t_down = time.time()
    rc, _, e = run("chaos", "dc-down", "dc1")
    c.eq(rc, 0, "chaos dc-down dc1: " + e)
    got = wait_for(lambda: (lambda o: o if o["operation"].get("kind") == "unplanned"
                            and o["operation"].get("state") != "running" else None)(dc_op()),
                   60, 0.5)
    c.check(got is not None, "the runner failed over by itself")
    if got:
        print("runner:", "\n  ".join(got["operation"]["log"]))
        c.eq(got["operation"]["state"], "done", "the unplanned failover succeeded")
        c.eq(got["primary_dc"], "dc2", "dc2 takes writes")
    time.sleep(3)
    led.finish()
    lost = led.lost("pg3")
    rto = led.gap_after(t_down)
    print(f"unplanned failover (dc-down dc1): RTO {rto if rto is None else round(rto, 2)} s "
          f"(dc-down to the first write acknowledged through dc2), RPO {len(lost)} acknowledged "
          f"writes lost of {len(led.acked)} ({led.failed} failed, {led.ambiguous} ambiguous)")
    c.check(rto is not None and rto < 30, f"writes succeed again through dc2: RTO {rto}")

    # dc1 back: its members rejoin as a standby of dc2 (rebuilt from it), then failback.
    rc, _, e = run("chaos", "dc-up", "dc1")
    c.eq(rc, 0, "chaos dc-up dc1: " + e)
    c.check(wait_for(lambda: sql("pg1", "SELECT pg_is_in_recovery()") == "t" and
                     sql("pg1", "SELECT count(*) FROM users WHERE handle LIKE 'u1\\_%'") ==
                     sql("pg3", "SELECT count(*) FROM users WHERE handle LIKE 'u1\\_%'"), 90, 1)
            is not None, "dc1 rejoins as a standby of dc2 with its data")
    led = Ledger(dcs, "p3", ["web2"])
    time.sleep(1)
    rc, out, err = run("dc", "failback")
    print(out, err)
    c.eq(rc, 0, "dc failback after the loss")
    time.sleep(2)
    led.finish()
    lost = led.lost(primaries()[0]) if primaries() else ["?"]
    c.eq(lost, [], "failback after the loss: no acknowledged write lost")
    c.check(all(m in ("pg1", "pg2") for m in primaries()), "dc1 takes writes again")
finally:
    rc, _, e = run("down")
    c.eq(rc, 0, "down: " + e)
print(f"took {time.time() - t0:.1f} s")
c.finish()
