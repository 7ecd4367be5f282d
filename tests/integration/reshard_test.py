"""`millions reshard` under load (docs/sharding.md, "Online resharding"): a topology of three
database clusters (one Patroni member each) of which the first map uses two, seeded with a few
thousand users; writers keep a client ledger (sign-ups, bios, photos, follows) through the
balancer while the logical shards are spread over all three (`--shards 3`), then gathered back
onto two (`--shards 2`), the second reshard killed midway and resumed.
What it shows: no request fails; every acknowledged write is found afterwards, once, on the
cluster its logical shard maps to (nothing lost, nothing duplicated, nothing left behind);
every user reads back through the balancer; a second reshard refuses to start while one runs;
`--status` shows the plan; a killed reshard resumes to the same correct end; the web nodes
follow the map to its last version; read-your-writes across the two web nodes through the
shared cache (a Redis cache node) holds through every cut-over. Figures: the reshard's time,
rows/s, write pause per shard (p50, p99, max) and where it went, and the writers' latency p99
before and during the move."""
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import tomllib
import urllib.request

from harness import (Checks, admin_auth, bearer, binary, etcd_get_json, free_port, http_request,
                     node, parse_json, pg_env, png, secret, topology, wait_for)

LOGICAL = int(os.environ.get("MILLIONS_RESHARD_LOGICAL", "256"))
SEED_USERS = int(os.environ.get("MILLIONS_RESHARD_USERS", "3000"))
WRITERS = 4

tmp = tempfile.mkdtemp(prefix="millions-reshard-")
os.chmod(tmp, 0o755)
run_dir = os.path.join(tmp, "run")
web_ports = [free_port(), free_port()]
lb_port = free_port()
etcd_port = free_port()
pg = {name: (free_port(), cluster) for name, cluster in
      (("pg1", "s1"), ("pg2", "s2"), ("pg3", "s3"))}
port_of = {cl: port for _, (port, cl) in pg.items()}
topo = os.path.join(tmp, "topology.toml")
topology(topo, name="reshardtest", up=tmp,
         etcd={"listen": f"127.0.0.1:{etcd_port}", "peer_listen": f"127.0.0.1:{free_port()}"},
         web={"threads": 1, "blocking_threads": 4,
              "node": [node("web1", web_ports[0]), node("web2", web_ports[1])]},
         lb={"threads": 1, "check_interval_ms": 500,
             "node": [node("lb1", lb_port, admin=free_port())]},
         shards={"function": "balanced", "logical": LOGICAL, "initial": 2},
         postgres={"pool_size": 3,
                   "node": [node(n, port, rest=free_port(), cluster=cl)
                            for n, (port, cl) in pg.items()]},
         redis={"node": [node("redis1", free_port())]},
         workers={"threads": 1})
c = Checks()
t0 = time.time()


def log(msg):
    print(f"{time.time() - t0:6.1f} s: {msg}", flush=True)


def request(method, path, body=None, headers=None, port=lb_port):
    status, _, data = http_request("127.0.0.1", port, method, path, body, headers, timeout=30)
    return status, parse_json(data)


def psql(cluster, sql):
    r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port_of[cluster]), "-U", "postgres",
                        "-d", "millions", "-Atc", sql], capture_output=True, text=True,
                       timeout=60, env=pg_env(run_dir))
    if r.returncode != 0:
        raise RuntimeError(f"psql {cluster}: {r.stderr}")
    return [ln for ln in r.stdout.splitlines() if ln]


def etcd_get(key):
    return etcd_get_json(etcd_port, run_dir, key)


def etcd_map():
    return etcd_get("/millions/reshardtest/shardmap")


def shard_of(user_id):
    return ((int(user_id) >> 10) & 8191) % LOGICAL


def cluster_of(m, user_id):
    return m["clusters"][m["owner"][shard_of(user_id)]]


def map_versions():
    out = []
    for port in web_ports:
        _, _, text = http_request("127.0.0.1", port, "GET", "/metrics")
        line = [ln for ln in text.decode().splitlines()
                if ln.startswith("millions_shard_map_version")]
        out.append(float(line[0].split()[-1]) if line else None)
    return out


def reshard(*args, **kw):
    return subprocess.Popen([binary(), "reshard", *args, "--topology", topo],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp,
                            **kw)


class Ledger:
    """What the writers were told succeeded, and every failure."""

    def __init__(self):
        self.mu = threading.Lock()
        self.users = {}       # id -> handle
        self.bio = {}         # id -> last acknowledged bio
        self.photos = {}      # photo id -> owner id
        self.follows = set()  # (follower, followee)
        self.failures = []    # (what, status, body)
        self.latency = []     # (time, seconds, method) of every request
        self.requests = 0

    def fail(self, what, status, body):
        with self.mu:
            self.failures.append((what, status, str(body)[:200]))


ledger = Ledger()
stop_writers = threading.Event()


def timed(method, path, body=None, headers=None):
    start = time.time()
    try:
        s, b = request(method, path, body, headers)
    except Exception as e:  # a connection error is a failed request too
        s, b = 0, repr(e)
    with ledger.mu:
        ledger.latency.append((start, time.time() - start, method))
        ledger.requests += 1
    return s, b


rounds = [0]


def writer(w, seeded_ids):
    """Signs up users of its own, then loops: a bio, sometimes a photo, sometimes a follow."""
    mine = []
    for k in range(3):
        handle = f"w{w}u{k}r{rounds[0]}"
        s, u = timed("POST", "/api/users", {"handle": handle, "password": "password123"})
        if s != 201:
            ledger.fail("sign up", s, u)
            continue
        s, sess = timed("POST", "/api/sessions", {"handle": handle, "password": "password123"})
        if s != 201:
            ledger.fail("log in", s, sess)
            continue
        with ledger.mu:
            ledger.users[int(u["id"])] = handle
        mine.append((int(u["id"]), sess["token"]))
    i = 0
    while not stop_writers.is_set() and mine:
        i += 1
        uid, token = mine[i % len(mine)]
        bio = f"w{w} #{i}"
        s, b = timed("PATCH", "/api/me", {"bio": bio}, bearer(token))
        if s == 200:
            with ledger.mu:
                ledger.bio[uid] = bio
        else:
            ledger.fail("bio", s, b)
        if i % 4 == 0:
            s, p = timed("POST", "/api/photos", png(8, 6, seed=w * 100000 + i),
                         {**bearer(token), "Content-Type": "image/png"})
            if s == 201:
                with ledger.mu:
                    ledger.photos[int(p["id"])] = uid
            else:
                ledger.fail("photo", s, p)
        if i % 3 == 0:
            followee = seeded_ids[(w * 7919 + i * 104729) % len(seeded_ids)]
            s, b = timed("POST", f"/api/users/{followee}/follow", None, bearer(token))
            if s in (200, 201, 204):
                with ledger.mu:
                    ledger.follows.add((uid, followee))
            else:
                ledger.fail("follow", s, b)
        time.sleep(0.01)


stale_reads = []  # (user, wrote, read back) of the cross-node read-your-writes checker
ryw_checks = [0]


def ryw_checker(k, users):
    """Read-your-writes across web nodes through the cache: a bio written through web1, read
    back through web2 100 ms later (the cache's invalidation broadcast has arrived; web2's map
    poll, 500 ms, may not have). web2 with a stale map would read a moved user's old cluster
    and put the old profile into the shared cache."""
    i = 0
    while not stop_writers.is_set():
        for uid, token in users:
            i += 1
            bio = f"ryw{k} #{i}"
            s, b = request("PATCH", "/api/me", {"bio": bio}, bearer(token), port=web_ports[0])
            if s != 200:
                ledger.fail("bio (read-your-writes checker)", s, b)
                continue
            time.sleep(0.1)
            s, u = request("GET", f"/api/users/{uid}", port=web_ports[1])
            with ledger.mu:
                ryw_checks[0] += 1
                if s != 200 or u.get("bio") != bio:
                    stale_reads.append((uid, bio, s, u and u.get("bio")))


def start_ryw(seeded_ids):
    users = []
    for k in range(12):
        handle = f"seed{(k * 2477) % SEED_USERS}"
        s, sess = request("POST", "/api/sessions", {"handle": handle, "password": "seeded-user"})
        if s == 201:
            s, me = request("GET", "/api/me", None, bearer(sess["token"]))
            users.append((int(me["id"]), sess["token"]))
    c.eq(len(users), 12, "the read-your-writes checker's users log in")
    threads = [threading.Thread(target=ryw_checker, args=(k, users[k::4]), daemon=True)
               for k in range(4)]
    for t in threads:
        t.start()
    return threads


def start_writers(seeded_ids):
    rounds[0] += 1
    stop_writers.clear()
    threads = [threading.Thread(target=writer, args=(w, seeded_ids), daemon=True)
               for w in range(WRITERS)]
    for t in threads:
        t.start()
    return threads


def stop(threads):
    stop_writers.set()
    for t in threads:
        t.join(60)


def p99(values):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * 0.99))] if v else 0


def check_placement(label, clusters_in_use):
    """Every row on the cluster its logical shard maps to, once; the ledger all there."""
    m = etcd_map()
    users_on = {}
    for cl in ("s1", "s2", "s3"):
        for uid in psql(cl, "SELECT id FROM users"):
            users_on.setdefault(int(uid), []).append(cl)
    dup = {u: cls for u, cls in users_on.items() if len(cls) > 1}
    c.eq(dup, {}, f"{label}: no user on two clusters")
    wrong = [u for u, cls in users_on.items() if cls[0] != cluster_of(m, u)]
    c.eq(wrong[:5], [], f"{label}: every user on the cluster its logical shard maps to")
    with ledger.mu:
        users, bio, photos, follows = (dict(ledger.users), dict(ledger.bio), dict(ledger.photos),
                                       set(ledger.follows))
    c.eq(len(users_on), SEED_USERS + len(users) + extra_users,
         f"{label}: every seeded and signed-up user, once")
    c.eq([u for u in users if u not in users_on], [], f"{label}: no signed-up user lost")
    held = sorted({cluster_of(m, u) for u in users_on})
    c.eq(held, clusters_in_use, f"{label}: users on {clusters_in_use}")
    # Bios: the last acknowledged write of each user.
    wrong_bio = []
    for cl in clusters_in_use:
        for line in psql(cl, "SELECT id, bio FROM users WHERE bio LIKE 'w%#%'"):
            uid, b = line.split("|", 1)
            if int(uid) in bio and bio[int(uid)] != b:
                wrong_bio.append((uid, b, bio[int(uid)]))
    c.eq(wrong_bio, [], f"{label}: every user's bio is its last acknowledged one")
    # Photos: each acknowledged photo once, on its owner's cluster.
    photo_on = {}
    for cl in ("s1", "s2", "s3"):
        for pid in psql(cl, "SELECT id FROM photos"):
            photo_on.setdefault(int(pid), []).append(cl)
    lost = [p for p in photos if p not in photo_on]
    twice = [p for p, cls in photo_on.items() if len(cls) > 1]
    misplaced = [p for p, cls in photo_on.items() if cls[0] != cluster_of(m, p)]
    c.eq((lost[:5], twice[:5], misplaced[:5]), ([], [], []),
         f"{label}: {len(photos)} acknowledged photos: none lost, none twice, none misplaced")
    # Follows: each acknowledged edge on both ends' clusters, and no edge where neither end is.
    edges = {}
    for cl in ("s1", "s2", "s3"):
        for line in psql(cl, "SELECT follower, followee FROM follows"):
            a, b = map(int, line.split("|"))
            edges.setdefault((a, b), set()).add(cl)
    missing = [(e, sorted(edges.get(e, set())), cluster_of(m, e[0]), cluster_of(m, e[1]))
               for e in follows
               if {cluster_of(m, e[0]), cluster_of(m, e[1])} - edges.get(e, set())]
    stray = [e for e, cls in edges.items()
             if cls - {cluster_of(m, e[0]), cluster_of(m, e[1])}]
    c.eq((missing[:5], stray[:5]), ([], []),
         f"{label}: {len(follows)} acknowledged follows on both ends' clusters, no edge left "
         f"on a cluster that holds neither end ({len(edges)} edges)")
    # The fence's state: the map's shards owned, nothing in flight, no change log left.
    for cl in ("s1", "s2", "s3"):
        own = psql(cl, "SELECT logical, state FROM shard_ownership ORDER BY logical")
        want = [f"{s}|owned" for s in range(LOGICAL)
                if m["clusters"][m["owner"][s]] == cl]
        states = sorted({ln.split("|")[1] for ln in own})
        c.check(own == want or (not want and states in ([], ["gone"])),
                f"{label}: {cl}'s shard_ownership is the map's ({len(own)} rows, {states})")
        c.eq(psql(cl, "SELECT count(*) FROM shard_changes"), ["0"],
             f"{label}: {cl} has no change log left")
    return m, users_on


def readable(user_ids):
    """Every user read back through the balancer."""
    bad = []
    for uid in user_ids:
        s, _ = request("GET", f"/api/users/{uid}")
        if s != 200:
            bad.append((uid, s))
    return bad


def runner_reshard():
    r = subprocess.run([binary(), "status", "--json", "--topology", topo], capture_output=True,
                       text=True, timeout=30, cwd=tmp)
    try:
        return json.loads(r.stdout).get("reshard") if r.returncode == 0 else None
    except ValueError:
        return None


def parse_summary(out):
    m = re.search(r"resharded: (\d+) logical shards.*?, (\d+) users, (\d+) rows; this run "
                  r"(\d+) rows in ([\d.]+) s \((\d+) rows/s\); write pause per shard p50 (-?\d+) "
                  r"ms, p99 (-?\d+) ms, max (-?\d+) ms", out)
    return m.groups() if m else None


extra_users = 0
up = subprocess.run([binary(), "up", topo, "--detach"], capture_output=True, text=True,
                    timeout=300, cwd=tmp)
c.eq(up.returncode, 0, "up --detach: " + (up.stdout + up.stderr)[-800:])
log("up")
try:
    m = etcd_map()
    c.eq((m["version"], m["clusters"], len(m["owner"])), (1, ["s1", "s2"], LOGICAL),
         "the first map uses two of the three clusters ([shards] initial = 2)")
    c.eq(psql("s3", "SELECT count(*) FROM shard_ownership"), ["0"], "s3 holds no shard")
    c.eq(psql("s3", "SELECT max(version) FROM schema_version"),
         psql("s1", "SELECT max(version) FROM schema_version"), "s3 is migrated all the same")

    p = subprocess.run([binary(), "seed", "--users", str(SEED_USERS), "--follows", "4",
                        "--photos", "1", "--topology", topo], capture_output=True, text=True,
                       timeout=300, cwd=tmp)
    c.eq(p.returncode, 0, "seed: " + (p.stdout + p.stderr)[-400:])
    seeded_ids = sorted(int(u) for cl in ("s1", "s2")
                        for u in psql(cl, "SELECT id FROM users WHERE handle LIKE 'seed%'"))
    c.eq(len(seeded_ids), SEED_USERS, "seeded")
    rows_before = sum(int(psql(cl, "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM "
                                   "follows) + (SELECT count(*) FROM photos)")[0])
                      for cl in ("s1", "s2"))
    log(f"seeded {SEED_USERS} users ({rows_before} rows)")

    # --- 2 -> 3 under the writers
    threads = start_writers(seeded_ids) + start_ryw(seeded_ids)
    time.sleep(8)
    before_start = time.time()
    rs = reshard("--shards", "3")
    time.sleep(1.5)
    second = subprocess.run([binary(), "reshard", "--shards", "3", "--topology", topo],
                            capture_output=True, text=True, timeout=60, cwd=tmp)
    c.check(second.returncode == 1 and "another reshard is running" in second.stderr,
            f"a second reshard refuses to start: {second.returncode} {second.stderr[-300:]}")
    st = subprocess.run([binary(), "reshard", "--status", "--topology", topo],
                        capture_output=True, text=True, timeout=60, cwd=tmp)
    c.check(st.returncode == 0 and "running: pid" in st.stdout and "plan: map version 1" in
            st.stdout, f"--status shows the running plan: {st.stdout[-600:]}")
    # The runner shows the reshard in progress (status --json "reshard", the dashboard's).
    seen_running = wait_for(lambda: (runner_reshard() or {}).get("state") == "running", 20, 0.5)
    out, err = rs.communicate(timeout=900)
    took = time.time() - before_start
    c.check(seen_running, f"status --json shows the reshard running: {runner_reshard()}")
    c.eq(rs.returncode, 0, "reshard --shards 3: " + (out + err)[-1500:])
    summary = parse_summary(out)
    c.check(summary is not None, f"the summary line: {out[-400:]}")
    log(f"reshard 2 -> 3: {out.strip()}")
    log("".join(ln for ln in err.splitlines(True) if "pause parts" in ln).strip())
    time.sleep(3)
    stop(threads)
    with ledger.mu:
        # Bio updates: one row on the user's shard, the request a move pauses.
        before = [d for t, d, k in ledger.latency if t < before_start and k == "PATCH"]
        during = [d for t, d, k in ledger.latency
                  if before_start <= t < before_start + took and k == "PATCH"]
        failures = list(ledger.failures)
        nreq = ledger.requests
    log(f"writers: {nreq} requests; bio update p99 before {p99(before) * 1000:.0f} ms "
        f"({len(before)}), during {p99(during) * 1000:.0f} ms ({len(during)}), max during "
        f"{max(during) * 1000 if during else 0:.0f} ms")
    c.eq(failures[:10], [], f"no request failed during the reshard ({nreq} requests)")
    c.eq(stale_reads[:5], [], f"read-your-writes across the web nodes through the cache held "
         f"through every cut-over ({ryw_checks[0]} writes read back through the other node)")
    m3, users_on = check_placement("after 2 -> 3", ["s1", "s2", "s3"])
    c.eq(sorted(m3["owner"].count(i) for i in range(3)),
         sorted([LOGICAL // 3 + (1 if k < LOGICAL % 3 else 0) for k in range(3)]),
         "balanced over three clusters")
    moved = int(summary[0]) if summary else 0
    c.eq(m3["version"], 1 + moved, "one map version per moved shard")
    c.check(wait_for(lambda: map_versions() == [m3["version"]] * 2, 10, 0.2),
            f"both web nodes route by the last map: {map_versions()}")
    bad = readable(list(users_on))
    c.eq(bad[:5], [], f"all {len(users_on)} users read back through the balancer")
    s, _ = request("POST", "/api/sessions", {"handle": "seed7", "password": "seeded-user"})
    c.eq(s, 201, "a seeded user logs in")
    plan = etcd_get("/millions/reshardtest/reshard/plan")
    pauses = sorted(mv["pause_ms"] for mv in plan["moves"])
    c.check(all(mv["state"] == "cleaned" for mv in plan["moves"]), "the plan is done")
    c.check(wait_for(lambda: (runner_reshard() or {}).get("state") == "done"
                     and runner_reshard().get("moves") == {"cleaned": moved}, 10, 0.5),
            f"status --json shows the reshard done, every move cleaned: {runner_reshard()}")
    st = runner_reshard() or {}
    c.eq((st.get("shards_switched"), st.get("pause_max_ms")), (moved, max(pauses)),
         "status --json: the shards switched and the largest pause, as the plan says")
    with open(topo, "rb") as f:
        admin = tomllib.load(f)["runner"]["admin"]
    host, port = admin.rsplit(":", 1)
    _, _, text = http_request(host, int(port), "GET", "/metrics", headers=admin_auth(run_dir))
    c.check(f'millions_reshard_shards{{state="cleaned"}} {moved}' in text.decode(),
            "the runner's /metrics: millions_reshard_shards by state")
    c.check(pauses and pauses[-1] < 2000,
            f"every write pause under the store's 2 s wait: max {pauses[-1] if pauses else None}")
    log(f"pauses ms: p50 {pauses[len(pauses) // 2]} p99 {pauses[int(len(pauses) * .99)]} "
        f"max {pauses[-1]}")

    # --- 3 -> 2, killed midway, resumed
    threads = start_writers(seeded_ids)
    time.sleep(2)
    rs = reshard("--shards", "2")

    def switched():
        p = etcd_get("/millions/reshardtest/reshard/plan")
        if not p or p["from"]["version"] != m3["version"]:
            return False
        n = sum(mv["state"] in ("switched", "cleaned") for mv in p["moves"])
        return n >= len(p["moves"]) * 0.4

    c.check(wait_for(switched, 300, 0.2), "the second reshard gets 40% through")
    rs.send_signal(signal.SIGKILL)
    rs.communicate(timeout=30)
    plan = etcd_get("/millions/reshardtest/reshard/plan")
    states = {}
    for mv in plan["moves"]:
        states[mv["state"]] = states.get(mv["state"], 0) + 1
    log(f"killed the reshard: {states}")
    c.check(states.get("cleaned", 0) + states.get("switched", 0) < len(plan["moves"]),
            "killed before its end")
    st = subprocess.run([binary(), "reshard", "--status", "--topology", topo],
                        capture_output=True, text=True, timeout=60, cwd=tmp)
    c.check("not done" in st.stdout, f"--status: the plan is not done: {st.stdout[-400:]}")
    rs = reshard()  # no flags: resumes the recorded plan
    out, err = rs.communicate(timeout=900)
    c.eq(rs.returncode, 0, "the resumed reshard: " + (out + err)[-1500:])
    c.check("resuming" in err, "it said it resumes")
    log(f"resumed: {out.strip()}")
    log("".join(ln for ln in err.splitlines(True) if "pause parts" in ln).strip())
    time.sleep(3)
    stop(threads)
    with ledger.mu:
        failures = list(ledger.failures)
    c.eq(failures[:10], [], "no request failed through the kill and the resume")
    m2, users_on = check_placement("after 3 -> 2, killed and resumed", ["s1", "s2"])
    c.eq(m2["owner"].count(2), 0, "s3 holds no logical shard")
    bad = readable(list(users_on))
    c.eq(bad[:5], [], f"all {len(users_on)} users read back through the balancer")
    c.check(wait_for(lambda: map_versions() == [m2["version"]] * 2, 10, 0.2),
            f"both web nodes route by the last map: {map_versions()}")
    again = subprocess.run([binary(), "reshard", "--shards", "2", "--topology", topo],
                           capture_output=True, text=True, timeout=120, cwd=tmp)
    c.check(again.returncode == 0 and "nothing to move" in again.stdout,
            f"once done, the same reshard has nothing to move: {again.stdout} {again.stderr}")

    # --- a celebrity's logical shard onto the cluster that now holds nothing
    id7 = int([u for cl in ("s1", "s2") for u in psql(cl, "SELECT id FROM users WHERE "
                                                           "handle = 'seed7'")][0])
    iso = subprocess.run([binary(), "reshard", "--isolate", "seed7", "--topology", topo],
                         capture_output=True, text=True, timeout=300, cwd=tmp)
    c.eq(iso.returncode, 0, "reshard --isolate seed7: " + (iso.stdout + iso.stderr)[-800:])
    mi = etcd_map()
    c.eq((mi["owner"].count(2), cluster_of(mi, id7)), (1, "s3"),
         "seed7's logical shard, alone, on s3")
    c.eq(psql("s3", f"SELECT handle FROM users WHERE id = {id7}"), ["seed7"], "seed7 is on s3")
    c.eq([cl for cl in ("s1", "s2") if psql(cl, f"SELECT id FROM users WHERE id = {id7}")], [],
         "and on no other cluster")
    c.check(wait_for(lambda: map_versions() == [mi["version"]] * 2, 10, 0.2),
            "the web nodes follow")
    s, _ = request("POST", "/api/sessions", {"handle": "seed7", "password": "seeded-user"})
    c.eq(s, 201, "seed7 logs in, served by s3")
    s, u7 = request("GET", f"/api/users/{id7}")
    c.eq((s, u7 and u7.get("handle")), (200, "seed7"), "seed7 reads back")
    log(f"isolated: {iso.stdout.strip()}")
finally:
    subprocess.run([binary(), "down", "--topology", topo], capture_output=True, timeout=120)
    log("down")
if not c.failed:  # hundreds of MB of databases; kept for a look when a check failed
    shutil.rmtree(tmp, ignore_errors=True)
c.finish()
