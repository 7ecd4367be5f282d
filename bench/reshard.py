"""bench/reshard: online resharding measured on real volume (docs/sharding.md), under `millions
up`: three PostgreSQL clusters of one Patroni member each, one etcd, one web node; the first map
uses one cluster ([shards] initial = 1), the others are migrated and empty.

Steps, one run:
  1. seed USERS users (`millions seed --users USERS --follows FOLLOWS --photos PHOTOS`: bulk
     COPY, not the API), their rows all on s1.
  2. queries per shard, 1 shard: READ_SECONDS of a read-heavy load (CLIENTS threads on
     keep-alive connections: a profile, a user's photo list and a logged-in user's feed, of
     users drawn at random), the web node's millions_db_queries_total by its `shard` label
     before and after: queries/s per cluster, and the reads' p99.
  3. reshard 1 -> 2 under load: CLIENTS threads, each read a profile and update a bio (one of
     WRITERS logged-in users) in turn, for LOAD_BEFORE seconds (the "before" window), then
     `millions reshard --shards 2` runs while they go on. Printed: the users and rows moved,
     the time, rows/s, the write pause per logical shard (p50, p99, max, from the plan in etcd:
     freeze to the source given up), where the pause went (the reshard's own breakdown), and
     the request p50/p99/max before and during the move, reads and writes apart.
  4. queries per shard, 2 shards; 5. reshard 2 -> 3 under load, as 3; 6. queries per shard,
     3 shards.
  7. how cost grows with data: profile, photo-list and feed p50/p99 at USERS users, ROUNDS
     rounds of READ_SECONDS each; then `millions seed --users LARGE` adds the users up to LARGE
     (same follows and photos per user), and the same rounds again. Printed per endpoint:
     median [min-max] spread of the rounds' p99 at each size, and the ratio LARGE/USERS of the
     medians. The rounds of one size cannot interleave with the other's (the data only grows):
     the spread says how much the machine drifted within a size.

Every request must answer 2xx (or the run fails, exit 1, `bench: FAIL: ...`), the reshard must
exit 0, and each reshard's summary must be found; BENCH_SELFTEST=1 reads profiles of an id that
does not exist (404) in step 2: the run must exit 1 (it exits 3 if they answered 2xx).
Loopback only; every wait bounded; `millions down` at the end in every case.
Environment: USERS (10000), LARGE (100000; 1000000 is the issue's figure: the seed then takes
several minutes here), FOLLOWS (10), PHOTOS (1), LOGICAL (1024), CLIENTS (4), WRITERS (8),
READ_SECONDS (10), LOAD_BEFORE (8), ROUNDS (3), SAMPLE (2000 users whose profiles and
photo lists are read), TOKENS (100 users logged in whose feeds are read), BENCH_SELFTEST, BENCH_KEEP=1 (keep the
directory)."""
import http.client
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from benchlib import fmt, run_main  # noqa: E402
import harness  # noqa: E402
from harness import binary, free_port, node  # noqa: E402

USERS = int(os.environ.get("USERS", "10000"))
LARGE = int(os.environ.get("LARGE", "100000"))
FOLLOWS = int(os.environ.get("FOLLOWS", "10"))
PHOTOS = int(os.environ.get("PHOTOS", "1"))
LOGICAL = int(os.environ.get("LOGICAL", "1024"))
CLIENTS = int(os.environ.get("CLIENTS", "4"))
WRITERS = int(os.environ.get("WRITERS", "8"))
READ_SECONDS = float(os.environ.get("READ_SECONDS", "10"))
LOAD_BEFORE = float(os.environ.get("LOAD_BEFORE", "8"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
SAMPLE = int(os.environ.get("SAMPLE", "2000"))  # users read (profiles, photo lists)
TOKENS = int(os.environ.get("TOKENS", "100"))  # users logged in whose feeds are read
SELFTEST = os.environ.get("BENCH_SELFTEST") == "1"
PASSWORD = "seeded-user"  # every seeded user's (ctl/seed.cc)


class Failed(Exception):
    pass


tmp = tempfile.mkdtemp(prefix="millions-bench-reshard-")
os.chmod(tmp, 0o755)
web_port = free_port()
topo = os.path.join(tmp, "topology.toml")
state = {"up": False}


def run(*args, timeout=600):
    return subprocess.run([binary(), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=tmp)


def log(msg):
    print(msg, flush=True)


class Client:
    """One keep-alive connection to the web node."""

    def __init__(self):
        self.c = http.client.HTTPConnection("127.0.0.1", web_port, timeout=30)

    def call(self, method, path, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        h = dict(headers or {})
        if data is not None:
            h["Content-Type"] = "application/json"
        start = time.perf_counter()
        try:
            self.c.request(method, path, data, h)
            r = self.c.getresponse()
            payload = r.read()
            status = r.status
        except (OSError, http.client.HTTPException) as e:
            self.c.close()
            self.c = http.client.HTTPConnection("127.0.0.1", web_port, timeout=30)
            raise Failed(f"{method} {path}: {e!r}")
        took = time.perf_counter() - start
        if not 200 <= status < 300:
            raise Failed(f"{method} {path}: {status} {payload[:200]!r}")
        return took, (json.loads(payload) if payload else None)


def metrics_by_shard():
    c = Client()
    c.c.request("GET", "/metrics")
    text = c.c.getresponse().read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("millions_db_queries_total{"):
            m = re.search(r'shard="([^"]*)"', line)
            out[m.group(1) if m else "?"] = out.get(m.group(1) if m else "?", 0) + \
                float(line.rsplit(" ", 1)[1])
    return out


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * q))] * 1000 if v else 0.0


def log_in(handles):
    c = Client()
    out = []
    for h in handles:
        _, s = c.call("POST", "/api/sessions", {"handle": h, "password": PASSWORD})
        _, me = c.call("GET", "/api/me", None, {"Authorization": f"Bearer {s['token']}"})
        out.append((int(me["id"]), s["token"]))
    return out


def seeded_ids(n_users):
    """Ids of seeded users found through the API (by handle), a sample of them."""
    c = Client()
    rng = random.Random(7)
    out = []
    for k in rng.sample(range(n_users), min(SAMPLE, n_users)):
        _, u = c.call("GET", f"/api/users/by-handle/seed{k}")
        out.append(int(u["id"]))
    return out


def reads(seconds, ids, tokens, selftest=False):
    """CLIENTS threads of profile, photo-list and feed reads: latencies per endpoint."""
    lat = {"profile": [], "photos": [], "feed": []}
    errors = []
    mu = threading.Lock()
    stop = time.time() + seconds

    def client(k):
        rng = random.Random(k)
        c = Client()
        mine = {"profile": [], "photos": [], "feed": []}
        try:
            while time.time() < stop:
                uid = 1 if selftest else rng.choice(ids)
                mine["profile"].append(c.call("GET", f"/api/users/{uid}")[0])
                mine["photos"].append(c.call("GET", f"/api/users/{rng.choice(ids)}/photos")[0])
                _, token = rng.choice(tokens)
                mine["feed"].append(
                    c.call("GET", "/api/feed", None, {"Authorization": f"Bearer {token}"})[0])
        except Failed as e:
            with mu:
                errors.append(str(e))
        with mu:
            for k2, v in mine.items():
                lat[k2].extend(v)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
    if errors:
        raise Failed(f"reads: {len(errors)} clients failed, first: {errors[0]}")
    return lat


def queries_per_shard(n, ids, tokens):
    before = metrics_by_shard()
    t = time.time()
    lat = reads(READ_SECONDS, ids, tokens, selftest=SELFTEST)
    took = time.time() - t
    after = metrics_by_shard()
    n_reads = sum(len(v) for v in lat.values())
    per = {s: (after.get(s, 0) - before.get(s, 0)) / took for s in sorted(after)}
    shown = ", ".join(f"{s} {q:,.0f}/s" for s, q in per.items() if q > 0)
    log(f"queries per shard, {n} shard(s), read-heavy ({n_reads / took:,.0f} reads/s, p99 "
        f"{pct([x for v in lat.values() for x in v], 0.99):.1f} ms): {shown}; per read "
        f"{sum(per.values()) * took / max(1, n_reads):.2f} queries")
    return per


def reshard_under_load(n, ids, writers):
    """LOAD_BEFORE s of reads and bio updates, then `reshard --shards n` while they go on."""
    lat = []  # (start, seconds, kind)
    errors = []
    mu = threading.Lock()
    stop = threading.Event()

    def client(k):
        rng = random.Random(100 + k)
        c = Client()
        i = 0
        try:
            while not stop.is_set():
                i += 1
                t = time.time()
                took, _ = c.call("GET", f"/api/users/{rng.choice(ids)}")
                with mu:
                    lat.append((t, took, "read"))
                uid, token = writers[(k + i * CLIENTS) % len(writers)]
                t = time.time()
                took, _ = c.call("PATCH", "/api/me", {"bio": f"bench {k} {i}"},
                                 {"Authorization": f"Bearer {token}"})
                with mu:
                    lat.append((t, took, "write"))
        except Failed as e:
            with mu:
                errors.append(str(e))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    time.sleep(LOAD_BEFORE)
    start = time.time()
    r = run("reshard", "--shards", str(n), "--topology", topo, timeout=3600)
    end = time.time()
    time.sleep(1)
    stop.set()
    for t in threads:
        t.join(120)
    if errors:
        raise Failed(f"reshard to {n}: {len(errors)} clients failed, first: {errors[0]}")
    if r.returncode != 0:
        raise Failed(f"reshard --shards {n}: exit {r.returncode}: {(r.stdout + r.stderr)[-800:]}")
    m = re.search(r"resharded: (\d+) logical shards.*?, (\d+) users, (\d+) rows; this run "
                  r"(\d+) rows in ([\d.]+) s \((\d+) rows/s\); write pause per shard p50 (-?\d+) "
                  r"ms, p99 (-?\d+) ms, max (-?\d+) ms", r.stdout)
    if not m:
        raise Failed(f"reshard --shards {n}: no summary line: {r.stdout[-400:]}")
    shards, users, rows, _, secs, rate, p50, p99, pmax = m.groups()
    parts = "".join(ln for ln in r.stderr.splitlines() if "pause parts" in ln)
    log(f"reshard {n - 1} -> {n}: {shards} logical shards, {users} users, {rows} rows in {secs} s "
        f"({rate} rows/s; wall {end - start:.1f} s); write pause per shard p50 {p50} ms, p99 "
        f"{p99} ms, max {pmax} ms")
    log(f"  {parts.strip()}")
    for kind in ("read", "write"):
        b = [d for t, d, k in lat if t < start and k == kind]
        d = [d for t, d, k in lat if start <= t < end and k == kind]
        log(f"  {kind}s: before p50 {pct(b, 0.5):.1f} p99 {pct(b, 0.99):.1f} ms ({len(b)}); "
            f"during p50 {pct(d, 0.5):.1f} p99 {pct(d, 0.99):.1f} max {pct(d, 1.0):.1f} ms "
            f"({len(d)}); p99 during/before x{pct(d, 0.99) / max(pct(b, 0.99), 1e-9):.2f}; "
            "0 failed")


def cost_at(size, ids, tokens):
    p99s = {"profile": [], "photos": [], "feed": []}
    for rnd in range(ROUNDS):
        lat = reads(READ_SECONDS, ids, tokens)
        for k, v in lat.items():
            p99s[k].append(pct(v, 0.99))
        log(f"  {size:,} users, round {rnd + 1}: " +
            ", ".join(f"{k} p50 {pct(v, 0.5):.1f} p99 {pct(v, 0.99):.1f} ms ({len(v)})"
                      for k, v in lat.items()))
    return p99s


def seed(n):
    t = time.time()
    r = run("seed", "--users", str(n), "--follows", str(FOLLOWS), "--photos", str(PHOTOS),
            "--topology", topo, timeout=7200)
    if r.returncode != 0:
        raise Failed(f"seed --users {n}: exit {r.returncode}: {(r.stdout + r.stderr)[-600:]}")
    log(f"seeded up to {n:,} users in {time.time() - t:.1f} s")


def main():
    # A copy of the binary: a rebuild during the run cannot change what is measured.
    copy = os.path.join(tmp, "millions")
    shutil.copy2(binary(), copy)
    os.environ["MILLIONS_BIN"] = copy
    harness.topology(
        topo, name="reshardbench", up=tmp,
        etcd={"listen": f"127.0.0.1:{free_port()}", "peer_listen": f"127.0.0.1:{free_port()}"},
        web={"threads": 2, "blocking_threads": 8, "node": [node("web1", web_port)]},
        shards={"function": "balanced", "logical": LOGICAL, "initial": 1},
        postgres={"pool_size": 6,
                  "node": [node(f"pg{i}", free_port(), rest=free_port(), cluster=f"s{i}")
                           for i in (1, 2, 3)]},
        workers={"threads": 1})
    up = run("up", topo, "--detach", timeout=600)
    if up.returncode != 0:
        raise Failed(f"up: {(up.stdout + up.stderr)[-800:]}")
    state["up"] = True
    log(f"bench/reshard: {USERS:,} users, {FOLLOWS} follows and {PHOTOS} photos each, "
        f"{LOGICAL} logical shards; 3 clusters of one member; one web node (2 threads); "
        f"{CLIENTS} client threads; {os.cpu_count()} cores shared by all")
    seed(USERS)
    ids = seeded_ids(USERS)
    tokens = log_in([f"seed{k}" for k in range(0, USERS, max(1, USERS // TOKENS))][:TOKENS])
    writers = log_in([f"seed{k}" for k in range(1, USERS, max(1, USERS // WRITERS))][:WRITERS])
    queries_per_shard(1, ids, tokens)
    if SELFTEST:
        sys.exit(3)
    reshard_under_load(2, ids, writers)
    queries_per_shard(2, ids, tokens)
    reshard_under_load(3, ids, writers)
    queries_per_shard(3, ids, tokens)
    log(f"cost with data: {ROUNDS} rounds of {READ_SECONDS:.0f} s at each size")
    small = cost_at(USERS, ids, tokens)
    seed(LARGE)
    ids_large = seeded_ids(LARGE)
    tokens_large = log_in([f"seed{k}" for k in range(0, LARGE, max(1, LARGE // TOKENS))][:TOKENS])
    large = cost_at(LARGE, ids_large, tokens_large)
    for k in ("profile", "photos", "feed"):
        ratio = statistics.median(large[k]) / max(statistics.median(small[k]), 1e-9)
        log(f"{k} p99: {USERS:,} users {fmt(small[k], 1)} ms; {LARGE:,} users "
            f"{fmt(large[k], 1)} ms; x{ratio:.2f}")


def cleanup():
    if state["up"]:
        run("down", "--topology", topo, timeout=300)
    if os.environ.get("BENCH_KEEP") != "1":
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"bench: kept {tmp}", file=sys.stderr)


if __name__ == "__main__":
    run_main(main, Failed, SELFTEST, "profile reads of a missing user answered 2xx", cleanup)
