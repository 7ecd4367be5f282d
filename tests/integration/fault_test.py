"""The single faults that used to lose or block writes, each under the chaos matrix's ledger on a
topology like the default one (three etcd members, three PostgreSQL members under Patroni in
synchronous mode, two web nodes behind our balancer):
- the primary's Patroni paused past the leader TTL, then resumed (the supervisor's watchdog
  fences it before its lease expires);
- the primary's whole host (Patroni and PostgreSQL) paused likewise;
- one etcd member killed, and every etcd member killed (failsafe mode: writes go on);
- the runner killed -9, and a new `up` adopting the running nodes.
Each row: 0 lost, 0 duplicated, writes acknowledged after the fault, full health again. Before
the fixes the paused host lost 30 of 99 acknowledged writes and the dead runner left every node
holding its admin socket (docs/faults.md).
Also: no node inherits a descriptor of the runner, and `down` with no runner stops the orphans."""
import json
import os
import subprocess
import tempfile
import time

from harness import Checks, addr, binary, free_port, node, topology, wait_for, web_lb

SECONDS = os.environ.get("FAULT_SECONDS", "20")  # past Patroni's TTL of 10 s
tmp = tempfile.mkdtemp(prefix="millions-fault-")
os.chmod(tmp, 0o755)
topo = os.path.join(tmp, "topology.toml")
admin = free_port()
topology(topo, name="faulttest", up=tmp, runner={"admin": addr(admin)},
         etcd=[node(f"etcd{i}", peer_listen=free_port()) for i in (1, 2, 3)], **web_lb(),
         postgres={"pool_size": 4, "failover_wait_ms": 15000,
                   "patroni": {"ttl_s": 10, "loop_wait_s": 2, "retry_timeout_s": 4,
                               "synchronous_mode": True},
                   "node": [node(f"pg{i}", rest=free_port()) for i in (1, 2, 3)]},
         workers={"threads": 1})

c = Checks()


def millions(*args, timeout=600):
    return subprocess.run([binary(), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=tmp)


def status():
    p = millions("status", "--json", "--topology", topo, timeout=30)
    return json.loads(p.stdout) if p.returncode == 0 else None


def listeners_on(port):
    """Pids holding a listening socket on 127.0.0.1:port (from ss)."""
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True,
                         text=True).stdout
    return sorted({int(x.split(",")[0]) for x in out.split("pid=")[1:]})


up = millions("up", topo, "--detach", timeout=300)
c.eq(up.returncode, 0, f"up --detach: {up.stdout[-600:]} {up.stderr[-600:]}")
try:
    s = status()
    names = sorted(n["name"] for n in s["nodes"] if n["role"] == "etcd")
    c.eq(names, ["etcd1", "etcd2", "etcd3"], "three etcd members")
    runner = json.load(open(f"{tmp}/run/runner.json"))["pid"]
    c.eq(listeners_on(admin), [runner], "only the runner holds its admin socket (no node inherits it)")

    out = os.path.join(tmp, "matrix.json")
    faults = "pause:patroni-leader,pause:db-host,kill:etcd-member,kill:etcd-all,kill:runner"
    p = millions("chaos", "matrix", "--faults", faults, "--seconds", SECONDS, "--json", out,
                 "--topology", topo, timeout=1500)
    print(p.stdout, flush=True)
    c.eq(p.returncode, 0, f"matrix exit code; stderr: {p.stderr[-1500:]}")
    rows = json.load(open(out))["rows"] if os.path.exists(out) else []
    c.eq(sorted(r["fault"] for r in rows), sorted(faults.split(",")), "a row per fault")
    for r in rows:
        name = f"{r['fault']} ({r['target']})"
        c.eq(r["lost"], 0, f"{name}: no acknowledged write lost")
        c.eq(r["duplicated"], 0, f"{name}: no write applied twice")
        c.check(r["acknowledged"] > 0, f"{name}: writes acknowledged ({r['acknowledged']})")
        c.check(r["health_s"] is not None, f"{name}: full health again ({r['health_s']} s)")
        c.check(not r.get("failed"), f"{name}: the row ran to its end ({r.get('note')})")
        if r["fault"] in ("kill:etcd-member", "kill:etcd-all", "kill:runner"):
            # Nothing here stops writes: the gap is the ordinary spacing of a few writers.
            c.check(r["write_gap_s"] < 5, f"{name}: writes go on (gap {r['write_gap_s']} s)")
        if r["fault"].startswith("pause:"):
            # Fenced at half the TTL, then a failover or a restart: far less than the pause.
            c.check(r["write_gap_s"] < float(SECONDS) + 5, f"{name}: gap {r['write_gap_s']} s")

    # The runners' log (one file across the runner killed and the one that adopted its nodes).
    log = open(f"{tmp}/run/runner.log", errors="replace").read()
    c.eq(log.count("fenced (watchdog)"), 2, "the watchdog fenced each paused leader, once")
    c.check("adopting " in log and "adopted, pid" in log, "the new runner adopted the nodes")

    # The runner dies again; `down` with no runner answering stops what it left.
    runner = json.load(open(f"{tmp}/run/runner.json"))["pid"]
    pids = [n["pid"] for n in status()["nodes"] if n["pid"] and n["role"] != "postgres"]
    os.kill(runner, 9)
    c.check(wait_for(lambda: listeners_on(admin) == [], 10), "the admin port is free at once")
    d = millions("down", "--topology", topo, timeout=180)
    c.eq(d.returncode, 0, f"down with no runner: {d.stdout[-300:]} {d.stderr[-300:]}")
    c.check("left by a runner that died" in d.stdout, "down says what it stopped")
    alive = [p for p in pids if os.path.exists(f"/proc/{p}") and
             open(f"/proc/{p}/stat").read().split(")")[-1].split()[0] not in "ZX"]
    c.eq(alive, [], "every node stopped")
finally:
    millions("down", "--topology", topo, timeout=180)
c.finish()
