"""`millions reshard --add CLUSTER` while the source cluster's primary is killed (docs/sharding.md,
"Online resharding"): three database clusters, of which the first map uses two; the first, s1,
has a primary and a synchronous replica (Patroni), the others one member each. Seeded, then
writers keep a client ledger (sign-ups, bios, photos with an Idempotency-Key, follows; a request
that fails is retried, the same request, for up to 60 s) while `reshard --add s3` spreads the
logical shards over all three; a fifth of the way through, s1's primary is killed (kill -9 of its
process group, held down past Patroni's ttl) and a replica is promoted.
What it shows: the reshard waits for the failover and finishes by itself (exit 0); no request
fails after the client's retries; every acknowledged write is found afterwards, once, on the
cluster its logical shard maps to (nothing lost, nothing duplicated, nothing left behind); s3
holds its share; the fence's state is the map's on every cluster."""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request

from harness import (Checks, bearer, binary, etcd_get_json, free_port, http_request, node,
                     parse_json, pg_env, png, secret, topology, wait_for)

LOGICAL = 256
SEED_USERS = 2000
WRITERS = 3
RETRY_FOR = 60.0

tmp = tempfile.mkdtemp(prefix="millions-reshard-fo-")
os.chmod(tmp, 0o755)
run_dir = os.path.join(tmp, "run")
web_port = free_port()
etcd_port = free_port()
pg = {name: (free_port(), free_port(), cluster) for name, cluster in
      (("pg1", "s1"), ("pg2", "s1"), ("pg3", "s2"), ("pg4", "s3"))}
topo = os.path.join(tmp, "topology.toml")
topology(topo, name="reshardfo", up=tmp,
         etcd={"listen": f"127.0.0.1:{etcd_port}", "peer_listen": f"127.0.0.1:{free_port()}"},
         web={"threads": 1, "blocking_threads": 6, "node": [node("web1", web_port)]},
         shards={"function": "balanced", "logical": LOGICAL, "initial": 2},
         postgres={"pool_size": 4, "failover_wait_ms": 30000,
                   "patroni": {"ttl_s": 10, "loop_wait_s": 1, "retry_timeout_s": 3,
                               "synchronous_mode": True},
                   "node": [node(n, port, rest=rest, cluster=cl)
                            for n, (port, rest, cl) in pg.items()]},
         workers={"threads": 1})
c = Checks()
t0 = time.time()


def log(msg):
    print(f"{time.time() - t0:6.1f} s: {msg}", flush=True)


def request(method, path, body=None, headers=None):
    status, _, data = http_request("127.0.0.1", web_port, method, path, body, headers, timeout=30)
    return status, parse_json(data)


def s1_roles():
    for name in ("pg1", "pg2"):
        try:
            s, _, data = http_request("127.0.0.1", pg[name][1], "GET", "/cluster", timeout=2)
            if s == 200:
                return {m["name"]: (m["role"], m.get("state"))
                        for m in json.loads(data)["members"]}
        except OSError:
            pass
    return {}


def s1_leader():
    return next((n for n, (r, _) in s1_roles().items() if r == "leader"), None)


def member_of(cluster):
    """The member of `cluster` to read: its leader (s1 fails over), else its one member."""
    if cluster == "s1":
        return s1_leader()
    return next(n for n, (_, _, cl) in pg.items() if cl == cluster)


def psql(cluster, sql):
    r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(pg[member_of(cluster)][0]), "-U",
                        "postgres", "-d", "millions", "-Atc", sql], capture_output=True,
                       text=True, timeout=60, env=pg_env(run_dir))
    if r.returncode != 0:
        raise RuntimeError(f"psql {cluster}: {r.stderr}")
    return [ln for ln in r.stdout.splitlines() if ln]


def etcd_get(key):
    return etcd_get_json(etcd_port, run_dir, key)


def cluster_of(m, row_id):
    return m["clusters"][m["owner"][((int(row_id) >> 10) & 8191) % LOGICAL]]


class Ledger:
    def __init__(self):
        self.mu = threading.Lock()
        self.users, self.bio, self.photos, self.follows = {}, {}, {}, set()
        self.failures, self.retried, self.requests = [], 0, 0


ledger = Ledger()
stop_writers = threading.Event()


def retried(ok, method, path, body=None, headers=None):
    """The same request again until `ok(status)` or RETRY_FOR seconds: the client's retry."""
    deadline = time.time() + RETRY_FOR
    tries = 0
    while True:
        tries += 1
        try:
            s, b = request(method, path, body, headers)
        except Exception as e:  # a connection error is a failed attempt too
            s, b = 0, repr(e)
        with ledger.mu:
            ledger.requests += 1
            ledger.retried += tries > 1
        if ok(s, b) or time.time() > deadline:
            return s, b
        time.sleep(0.2)


def writer(w, seeded_ids):
    mine = []
    for k in range(3):
        handle = f"fo{w}u{k}"
        # A sign-up that committed before its answer was lost is a 409 on the retry.
        s, u = retried(lambda s, b: s in (201, 409), "POST", "/api/users",
                       {"handle": handle, "password": "password123"})
        s, sess = retried(lambda s, b: s == 201, "POST", "/api/sessions",
                          {"handle": handle, "password": "password123"})
        if s != 201:
            with ledger.mu:
                ledger.failures.append(("log in", s, str(sess)[:200]))
            continue
        s, me = retried(lambda s, b: s == 200, "GET", "/api/me", None, bearer(sess["token"]))
        with ledger.mu:
            ledger.users[int(me["id"])] = handle
        mine.append((int(me["id"]), sess["token"]))
    i = 0
    while not stop_writers.is_set() and mine:
        i += 1
        uid, token = mine[i % len(mine)]
        bio = f"fo{w} #{i}"
        s, b = retried(lambda s, b: s == 200, "PATCH", "/api/me", {"bio": bio}, bearer(token))
        with ledger.mu:
            if s == 200:
                ledger.bio[uid] = bio
            else:
                ledger.failures.append(("bio", s, str(b)[:200]))
        if i % 4 == 0:
            key = f"fo-{w}-{i}"
            s, p = retried(lambda s, b: s == 201, "POST", "/api/photos",
                           png(8, 6, seed=w * 100000 + i),
                           {**bearer(token), "Content-Type": "image/png", "Idempotency-Key": key})
            with ledger.mu:
                if s == 201:
                    ledger.photos[int(p["id"])] = uid
                else:
                    ledger.failures.append(("photo", s, str(p)[:200]))
        if i % 3 == 0:
            followee = seeded_ids[(w * 7919 + i * 104729) % len(seeded_ids)]
            s, b = retried(lambda s, b: s in (200, 201, 204), "POST",
                           f"/api/users/{followee}/follow", None, bearer(token))
            with ledger.mu:
                if s in (200, 201, 204):
                    ledger.follows.add((uid, followee))
                else:
                    ledger.failures.append(("follow", s, str(b)[:200]))
        time.sleep(0.02)


up = subprocess.run([binary(), "up", topo, "--detach"], capture_output=True, text=True,
                    timeout=300, cwd=tmp)
c.eq(up.returncode, 0, "up --detach: " + (up.stdout + up.stderr)[-800:])
log("up")
try:
    c.check(wait_for(lambda: sorted(r for r, st in s1_roles().values()
                                    if st in ("running", "streaming")) ==
                     ["leader", "sync_standby"], 120, 0.5),
            f"s1 has a primary and a synchronous replica: {s1_roles()}")
    m = etcd_map = etcd_get("/millions/reshardfo/shardmap")
    c.eq((m["version"], m["clusters"]), (1, ["s1", "s2"]), "the first map uses s1 and s2")
    p = subprocess.run([binary(), "seed", "--users", str(SEED_USERS), "--follows", "4",
                        "--photos", "1", "--topology", topo], capture_output=True, text=True,
                       timeout=300, cwd=tmp)
    c.eq(p.returncode, 0, "seed: " + (p.stdout + p.stderr)[-400:])
    seeded_ids = sorted(int(u) for cl in ("s1", "s2")
                        for u in psql(cl, "SELECT id FROM users WHERE handle LIKE 'seed%'"))
    c.eq(len(seeded_ids), SEED_USERS, "seeded")
    log(f"seeded {SEED_USERS} users")

    threads = [threading.Thread(target=writer, args=(w, seeded_ids), daemon=True)
               for w in range(WRITERS)]
    for t in threads:
        t.start()
    time.sleep(4)
    rs = subprocess.Popen([binary(), "reshard", "--add", "s3", "--topology", topo],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp)

    def progressed():
        plan = etcd_get("/millions/reshardfo/reshard/plan")
        if not plan:
            return False
        done = sum(mv["state"] in ("switched", "cleaned") for mv in plan["moves"])
        return done >= len(plan["moves"]) * 0.2

    c.check(wait_for(progressed, 300, 0.1), "the reshard gets a fifth of the way")
    old = s1_leader()
    plan = etcd_get("/millions/reshardfo/reshard/plan")
    states = {}
    for mv in plan["moves"]:
        states[mv["state"]] = states.get(mv["state"], 0) + 1
    kill = subprocess.run([binary(), "chaos", "kill", old, "--hold", "30", "--topology", topo],
                          capture_output=True, text=True, timeout=60, cwd=tmp)
    c.eq(kill.returncode, 0, f"chaos kill {old}: {kill.stderr[-300:]}")
    log(f"killed s1's primary {old} with the plan at {states}")
    c.check(wait_for(lambda: s1_leader() not in (None, old), 90, 0.5),
            f"a replica of s1 is promoted: {s1_roles()}")
    log(f"s1's primary is now {s1_leader()}")
    out, err = rs.communicate(timeout=600)
    c.eq(rs.returncode, 0, "reshard --add s3 through the failover: " + (out + err)[-1500:])
    c.check("database_unavailable" in err or "cannot connect" in err or "connection" in err,
            f"the reshard met the failover: {err[-600:]}")
    log(f"reshard --add s3: {out.strip()}")
    time.sleep(3)
    stop_writers.set()
    for t in threads:
        t.join(RETRY_FOR + 30)
    with ledger.mu:
        users, bio, photos, follows = (dict(ledger.users), dict(ledger.bio),
                                       dict(ledger.photos), set(ledger.follows))
        failures, nreq, nretried = list(ledger.failures), ledger.requests, ledger.retried
    log(f"writers: {nreq} requests, {nretried} retried")
    c.eq(failures[:10], [], f"no request failed after the client's retries ({nreq} requests)")
    c.check(len(bio) >= WRITERS and len(photos) > 5 and len(follows) > 5,
            f"the writers wrote: {len(bio)} users' bios, {len(photos)} photos, "
            f"{len(follows)} follows")

    m = etcd_get("/millions/reshardfo/shardmap")
    c.eq(sorted(m["owner"].count(i) for i in range(3)),
         sorted([LOGICAL // 3 + (1 if k < LOGICAL % 3 else 0) for k in range(3)]),
         "balanced over s1, s2 and s3")
    plan = etcd_get("/millions/reshardfo/reshard/plan")
    c.check(all(mv["state"] == "cleaned" for mv in plan["moves"]), "the plan is done")
    c.eq(m["version"], 1 + len(plan["moves"]), "one map version per moved shard")
    # Every row on the cluster its logical shard maps to, once; the ledger all there.
    users_on = {}
    for cl in ("s1", "s2", "s3"):
        for uid in psql(cl, "SELECT id FROM users"):
            users_on.setdefault(int(uid), []).append(cl)
    c.eq({u: cls for u, cls in users_on.items() if len(cls) > 1}, {}, "no user on two clusters")
    c.eq([u for u, cls in users_on.items() if cls[0] != cluster_of(m, u)][:5], [],
         "every user on the cluster its logical shard maps to")
    c.eq(len(users_on), SEED_USERS + len(users), "every seeded and signed-up user, once")
    c.eq(sorted({cluster_of(m, u) for u in users_on}), ["s1", "s2", "s3"], "users on all three")
    wrong_bio = []
    for cl in ("s1", "s2", "s3"):
        for line in psql(cl, "SELECT id, bio FROM users WHERE bio LIKE 'fo%#%'"):
            uid, b = line.split("|", 1)
            if int(uid) in bio and bio[int(uid)] != b:
                wrong_bio.append((uid, b, bio[int(uid)]))
    c.eq(wrong_bio, [], "every user's bio is its last acknowledged one")
    photo_on = {}
    for cl in ("s1", "s2", "s3"):
        for pid in psql(cl, "SELECT id FROM photos"):
            photo_on.setdefault(int(pid), []).append(cl)
    lost = [p for p in photos if p not in photo_on]
    twice = [p for p, cls in photo_on.items() if len(cls) > 1]
    misplaced = [p for p, cls in photo_on.items() if cls[0] != cluster_of(m, p)]
    c.eq((lost[:5], twice[:5], misplaced[:5]), ([], [], []),
         f"{len(photos)} acknowledged photos: none lost, none twice, none misplaced")
    mine = {}
    for cl in ("s1", "s2", "s3"):
        for line in psql(cl, "SELECT owner_id, count(*) FROM photos WHERE owner_id IN (" +
                         ",".join(str(u) for u in users) + ") GROUP BY owner_id"):
            u, n = line.split("|")
            mine[int(u)] = mine.get(int(u), 0) + int(n)
    acked = {}
    for _, u in photos.items():
        acked[u] = acked.get(u, 0) + 1
    c.eq(mine, acked, "each writer's photos: as many as were acknowledged (no retry twice)")
    edges = {}
    for cl in ("s1", "s2", "s3"):
        for line in psql(cl, "SELECT follower, followee FROM follows"):
            a, b = map(int, line.split("|"))
            edges.setdefault((a, b), set()).add(cl)
    missing = [e for e in follows
               if {cluster_of(m, e[0]), cluster_of(m, e[1])} - edges.get(e, set())]
    stray = [e for e, cls in edges.items() if cls - {cluster_of(m, e[0]), cluster_of(m, e[1])}]
    c.eq((missing[:5], stray[:5]), ([], []),
         f"{len(follows)} acknowledged follows on both ends' clusters, none stray")
    for cl in ("s1", "s2", "s3"):
        own = psql(cl, "SELECT logical, state FROM shard_ownership ORDER BY logical")
        want = [f"{s}|owned" for s in range(LOGICAL) if m["clusters"][m["owner"][s]] == cl]
        c.eq(own, want, f"{cl}'s shard_ownership is the map's")
        c.eq(psql(cl, "SELECT count(*) FROM shard_changes"), ["0"], f"{cl}: no change log left")
    bad = []
    for uid in list(users_on)[::20] + list(users):
        s, _ = request("GET", f"/api/users/{uid}")
        if s != 200:
            bad.append((uid, s))
    c.eq(bad[:5], [], "users read back through the web node")
finally:
    subprocess.run([binary(), "down", "--topology", topo], capture_output=True, timeout=180)
    log("down")
if not c.failed:
    shutil.rmtree(tmp, ignore_errors=True)
c.finish()
