"""Two DCs for DC failover (docs/datacentres.md), shared by tests/integration/dc_failover_test.py
and bench/dc_failover.py: the topology (dc1: pg1 and pg2, the primary cluster; dc2: pg3, a
standby cluster of it; a web node, a balancer and a cache node in each; etcd alone in dc3), the
commands and SQL against it, and a writer ledger of acknowledged sign-ups."""
import json
import os
import subprocess
import threading
import time
import tomllib

from harness import admin_auth, binary, free_port, http_request, node, pg_env, topology

PSQL = "/usr/lib/postgresql/15/bin/psql"
PG = {"pg1": "dc1", "pg2": "dc1", "pg3": "dc2"}


class TwoDcs:
    """The topology under `tmp` and what a test does with it once `up` runs."""

    def __init__(self, tmp, name="dcf", failover_after_ms=4000):
        self.tmp = tmp
        self.run_dir = os.path.join(tmp, "run")
        self.topo = os.path.join(tmp, "topology.toml")
        topology(self.topo, name=name, up=tmp,
                 network={"mode": os.environ.get("DC_FAILOVER_NETWORK", "loopback")},
                 etcd={"node": [dict(node("etcd1", peer_listen=free_port()), dc="dc3")]},
                 web={"threads": 1, "blocking_threads": 4,
                      "node": [dict(node("web1"), dc="dc1"), dict(node("web2"), dc="dc2")]},
                 postgres={"pool_size": 3, "primary_dc": "dc1",
                           "dc_failover_after_ms": failover_after_ms, "failover_wait_ms": 20000,
                           "node": [dict(node(n, rest=free_port()), dc=d) for n, d in PG.items()]},
                 redis=[dict(node("redis1"), dc="dc1"), dict(node("redis2"), dc="dc2")],
                 lb={"threads": 1, "check_interval_ms": 300,
                     "node": [dict(node("lb1", admin=free_port()), dc="dc1"),
                              dict(node("lb2", admin=free_port()), dc="dc2")]})
        with open(self.topo, "a") as f:
            f.write('[[dc]]\nname = "dc2"\n[[dc]]\nname = "dc3"\n')  # name= made dc1
        with open(self.topo, "rb") as f:
            h, port = tomllib.load(f)["runner"]["admin"].rsplit(":", 1)
        self.admin = (h, int(port))

    def run(self, *args, timeout=180):
        p = subprocess.run([binary(), *args, "--topology", self.topo], capture_output=True,
                           timeout=timeout, cwd=self.tmp)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def up(self):
        p = subprocess.run([binary(), "up", self.topo, "--detach"], capture_output=True,
                           timeout=240, cwd=self.tmp)
        return p.returncode, (p.stdout + p.stderr).decode()

    def status(self):
        return {n["name"]: n for n in json.loads(self.run("status", "--json")[1])["nodes"]}

    def sql(self, member, query):
        """The rows of `query` on a member, as the superuser ("" when it does not answer)."""
        host, port = self.status()[member + "-pg"]["address"].rsplit(":", 1)
        p = subprocess.run([PSQL, "-Atw", "-h", host, "-p", port, "-U", "postgres", "-d",
                            "millions", "-c", query], capture_output=True, timeout=20,
                           env={**pg_env(self.run_dir), "PGCONNECT_TIMEOUT": "2"})
        return p.stdout.decode().strip() if p.returncode == 0 else ""

    def primaries(self):
        return [m for m in PG if self.sql(m, "SELECT NOT pg_is_in_recovery()") == "t"]

    def web(self, name):
        host, port = self.status()[name]["address"].rsplit(":", 1)
        return host, int(port)

    def dc_op(self):
        """GET /api/dc: the DC taking writes and the latest operation."""
        _, _, body = http_request(*self.admin, "GET", "/api/dc",
                                  headers=admin_auth(self.run_dir))
        return json.loads(body)


class Ledger:
    """Writers signing up users through web nodes, each acknowledged (201) handle recorded with
    the times it was sent and acknowledged; an attempt without an answer is ambiguous (it may
    exist)."""

    def __init__(self, dcs, tag, webs):
        self.dcs, self.tag = dcs, tag
        self.acked, self.failed, self.ambiguous = [], 0, 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.write, args=(dcs.web(w), w)) for w in webs]
        for t in self.threads:
            t.start()

    def write(self, address, w):
        host, port = address
        i = 0
        while not self.stop.is_set():
            handle = f"{self.tag}_{w}_{i}"
            i += 1
            sent = time.time()
            try:
                s, _, _ = http_request(host, port, "POST", "/api/users",
                                       {"handle": handle, "password": "password123"}, timeout=30)
            except OSError:
                self.ambiguous += 1
                continue
            if s == 201:
                self.acked.append((time.time(), handle, sent))
            else:
                self.failed += 1
                time.sleep(0.05)
            time.sleep(0.02)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)
        return self

    def lost(self, member):
        """Acknowledged handles the member does not have."""
        have = set(self.dcs.sql(member, "SELECT handle FROM users WHERE handle LIKE "
                                f"'{self.tag}\\_%'").split("\n"))
        return [h for _, h, _ in self.acked if h not in have]

    def gap_after(self, t0):
        """Seconds from t0 to the first acknowledgement of a write sent after it (a write in
        flight at t0 proves nothing by its late answer)."""
        later = [t for t, _, sent in self.acked if sent > t0]
        return min(later) - t0 if later else None

    def stall(self, t0):
        """The longest time without an acknowledgement from the last one before t0 on: how long
        writes stopped around an operation started at t0."""
        times = sorted(t for t, _, _ in self.acked)
        before = [t for t in times if t <= t0]
        times = ([before[-1]] if before else [t0]) + [t for t in times if t > t0]
        return max((b - a for a, b in zip(times, times[1:])), default=None)
