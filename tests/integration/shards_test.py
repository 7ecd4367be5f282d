"""`millions up` with two shards (docs/sharding.md): two PostgreSQL clusters, each its own Patroni
scope with a primary and a replica, the shard map in etcd, two web nodes behind a balancer.
What it shows: the map is in etcd (version 1, every logical shard placed) and status lists both
clusters with their primary; users signed up through the balancer land on both clusters, each on
the cluster its id's logical shard maps to and on no other; log-in by handle works from either
web node; a follow across clusters counts on both users; the feed gathers photos from both
clusters; every node's queries are labelled with the real cluster; and the fence: a row whose
logical shard its cluster does not own is refused by the trigger (SQLSTATE MS001), and a web
node writing there gets a 503 until the shard is owned again."""
import base64
import concurrent.futures
import hashlib
import hmac
import json
import os
import subprocess
import tempfile
import time
import urllib.request

from harness import (Checks, bearer, binary, etcd_shardmap, free_port, http_request, node,
                     parse_json, pg_env, png, secret, topology, wait_for)


def request(port, method, path, body=None, headers=None):
    status, _, data = http_request("127.0.0.1", port, method, path, body, headers)
    return status, parse_json(data)


tmp = tempfile.mkdtemp(prefix="millions-shards-")
os.chmod(tmp, 0o755)
run_dir = os.path.join(tmp, "run")
web_ports = [free_port(), free_port()]
lb_port = free_port()
etcd_port = free_port()
pg = {name: (free_port(), cluster) for name, cluster in
      (("pg1", "s1"), ("pg2", "s1"), ("pg3", "s2"), ("pg4", "s2"))}
topo = os.path.join(tmp, "topology.toml")
topology(topo, name="shardtest", up=tmp,
         etcd={"listen": f"127.0.0.1:{etcd_port}", "peer_listen": f"127.0.0.1:{free_port()}"},
         web={"threads": 1, "blocking_threads": 4,
              "node": [node("web1", web_ports[0]), node("web2", web_ports[1])]},
         lb={"threads": 1, "check_interval_ms": 500,
             "node": [node("lb1", lb_port, admin=free_port())]},
         shards={"function": "balanced", "logical": 1024},
         postgres={"pool_size": 3,
                   "node": [node(n, port, rest=free_port(), cluster=cl)
                            for n, (port, cl) in pg.items()]},
         workers={"threads": 1})

c = Checks()


def status():
    out = subprocess.run([binary(), "status", "--json", "--topology", topo], capture_output=True,
                         timeout=30)
    return json.loads(out.stdout) if out.returncode == 0 else None


def psql(port, sql, user="postgres"):
    return subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d",
                           "millions", "-Atc", sql], capture_output=True, text=True, timeout=30,
                          env=pg_env(run_dir))


MAP_KEY = base64.b64encode(b"/millions/shardtest/shardmap").decode()


def etcd(path, body):
    """A call to etcd's JSON gateway as the `shardmap` user."""
    return etcd_shardmap(etcd_port, run_dir, path, body)


def etcd_map():
    """The shard map as etcd holds it."""
    kvs = etcd("kv/range", {"key": MAP_KEY}).get("kvs", [])
    return json.loads(base64.b64decode(kvs[0]["value"])) if kvs else None


def map_versions():
    """The map version each web node routes by."""
    out = []
    for port in web_ports:
        _, _, text = http_request("127.0.0.1", port, "GET", "/metrics")
        line = [ln for ln in text.decode().splitlines()
                if ln.startswith("millions_shard_map_version")]
        out.append(float(line[0].split()[-1]) if line else None)
    return out


def shard_of(user_id):
    return (int(user_id) >> 10) & 8191


t0 = time.time()
up = subprocess.run([binary(), "up", topo, "--detach"], capture_output=True, text=True,
                    timeout=240, cwd=tmp)
c.eq(up.returncode, 0, "up --detach: " + (up.stdout + up.stderr)[-800:])
print(f"up took {time.time() - t0:.1f} s")
try:
    # --- the map in etcd, and the clusters in status
    m = etcd_map()
    c.check(m is not None, "the shard map is in etcd under /millions/shardtest/shardmap")
    c.eq((m["version"], m["clusters"], len(m["owner"])), (1, ["s1", "s2"], 1024),
         "map version 1 places 1024 logical shards on s1 and s2")
    c.eq(sorted(m["owner"].count(i) for i in (0, 1)), [512, 512], "balanced: 512 shards each")
    st = status()
    shards = {s["cluster"]: s for s in (st or {}).get("shards", [])}
    c.eq(sorted(shards), ["s1", "s2"], "status --json lists both clusters")
    primary = {}
    for name in ("s1", "s2"):
        s = shards.get(name, {})
        c.eq((s.get("scope"), s.get("map_version"), s.get("logical_shards")),
             (f"millions-{name}", 1, 512), f"{name}: its Patroni scope, map version, shards")
        c.check(s.get("primary") in [n for n, (_, cl) in pg.items() if cl == name],
                f"{name}: its primary is one of its members ({s.get('primary')})")
        primary[name] = pg[s["primary"]][0] if s.get("primary") in pg else None
    rows = [n for n in st["nodes"] if n["role"] == "postgres"]
    c.eq(sorted((n["cluster"], n["db_role"]) for n in rows),
         [("s1", "primary"), ("s1", "replica"), ("s2", "primary"), ("s2", "replica")],
         "each cluster: one primary and one replica")

    print(f"{time.time() - t0:.1f} s: map and status checked")
    # --- sign-ups through the balancer land on both clusters, each where the map says
    def sign_up(handle):
        return handle, request(lb_port, "POST", "/api/users",
                               {"handle": handle, "password": "password123"})

    users = {}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for handle, (s, u) in pool.map(sign_up, [f"user{i}" for i in range(20)]):
            c.eq(s, 201, f"sign up {handle}")
            if s == 201:
                users[handle] = u["id"]
    on = {}
    for name in ("s1", "s2"):
        out = psql(primary[name], "SELECT id FROM users")
        on[name] = set(out.stdout.split())
    c.check(on["s1"] and on["s2"], f"users on both clusters: {len(on['s1'])} and {len(on['s2'])}")
    c.eq(on["s1"] & on["s2"], set(), "no user on both clusters")
    c.eq(on["s1"] | on["s2"], set(users.values()), "every user on some cluster")
    misplaced = [h for h, i in users.items()
                 if i not in on[m["clusters"][m["owner"][shard_of(i) % 1024]]]]
    c.eq(misplaced, [], "every user on the cluster its logical shard maps to")

    # --- log-in by handle from either web node
    tokens = {}
    for n, h in enumerate(sorted(users)[:4]):
        s, sess = request(web_ports[n % 2], "POST", "/api/sessions",
                          {"handle": h, "password": "password123"})
        c.eq(s, 201, f"log in {h} on web{n % 2 + 1}")
        tokens[h] = sess and sess.get("token")
        s, me = request(web_ports[(n + 1) % 2], "GET", "/api/me", headers=bearer(tokens[h]))
        c.eq((s, me and me.get("handle")), (200, h), f"{h}'s session on the other web node")

    # --- a follow across clusters, and the feed across clusters
    def on_cluster(name):
        return [h for h in sorted(users) if users[h] in on[name]]

    a, b = on_cluster("s1")[0], on_cluster("s2")[0]
    reader = on_cluster("s1")[1]
    for h in (a, b, reader):
        if h not in tokens:
            s, sess = request(lb_port, "POST", "/api/sessions", {"handle": h, "password": "password123"})
            tokens[h] = sess["token"]
    # On one web node, read back on it: with no cache nodes, another node's L1 may keep the
    # user's page from before the follow for its TTL (nothing to do with shards).
    s, _ = request(web_ports[1], "POST", f"/api/users/{users[b]}/follow",
                   headers=bearer(tokens[a]))
    c.check(s in (200, 201, 204), f"{a} (s1) follows {b} (s2): {s}")

    def counts():
        # Read from the replicas, which may lag the primaries by a moment: asked again until
        # they agree (or 10 s).
        _, ua = request(web_ports[1], "GET", f"/api/users/{users[a]}")
        _, ub = request(web_ports[1], "GET", f"/api/users/{users[b]}")
        return (ua and ua.get("following"), ub and ub.get("followers"))

    wait_for(lambda: counts() == (1, 1), 10, 0.3)
    c.eq(counts(), (1, 1), "the follow counts on both users (each answered by its own cluster)")
    print(f"{time.time() - t0:.1f} s: follows")
    s, lst = request(web_ports[1], "GET", f"/api/users/{users[b]}/followers")
    c.check(s == 200 and users[a] in json.dumps(lst), f"{b}'s followers name {a}")
    photos = []
    for h in (a, b):
        request(lb_port, "POST", f"/api/users/{users[h]}/follow", headers=bearer(tokens[reader]))
        s, p = request(lb_port, "POST", "/api/photos", png(24, 16),
                       {**bearer(tokens[h]), "Content-Type": "image/png"})
        c.eq(s, 201, f"{h} uploads a photo")
        photos.append(p and p.get("id"))
    s, f = request(web_ports[0], "GET", "/api/feed?limit=20", headers=bearer(tokens[reader]))
    got = [i["id"] for i in f["items"]] if s == 200 else []
    c.eq(sorted(got), sorted(photos), "the feed gathers both clusters' photos, newest first")
    c.check(got == sorted(got, key=int, reverse=True), "the feed is newest first")

    # --- the real cluster in every query's labels
    s, _, text = http_request("127.0.0.1", web_ports[0], "GET", "/metrics")
    text = text.decode()
    for name in ("s1", "s2"):
        c.check(f'millions_db_queries_total{{kind="write",member_role="primary",shard="{name}"}}'
                in text or f'shard="{name}"' in text, f"queries labelled shard={name}")
    c.check('shard="0"' not in text, "no query labelled with the unsharded shard 0")
    c.check("millions_shard_map_version 1" in text, "the node routes by map version 1")

    print(f"{time.time() - t0:.1f} s: feed and metrics")
    # --- the fence: a row of a shard its cluster does not own is refused
    victim = on_cluster("s1")[2]
    vid, vshard = users[victim], shard_of(users[victim])
    fake = (1 << 40) | (vshard << 10) | 7  # an id of the victim's shard, for a raw insert
    ins = (f"INSERT INTO users(id, handle, display_name, password_hash, created_ms) "
           f"VALUES ({fake}, 'fence_probe', 'x', 'x', 1)")
    r = psql(primary["s2"], ins)
    c.check(r.returncode != 0 and "wrong_shard" in r.stderr,
            f"s2 refuses a row of a shard s1 owns: {r.stderr.strip()[:200]}")
    owned = psql(primary["s1"], f"SELECT state FROM shard_ownership WHERE logical = {vshard}")
    c.eq(owned.stdout.strip(), "owned", "s1 owns the victim's shard")
    psql(primary["s1"], f"DELETE FROM shard_ownership WHERE logical = {vshard}")
    r = psql(primary["s1"], f"UPDATE users SET bio = 'raw' WHERE id = {vid}")
    c.check(r.returncode != 0 and "wrong_shard" in r.stderr,
            f"s1 refuses a change to the row once it does not own its shard: {r.stderr[:200]}")
    s, tok = request(lb_port, "POST", "/api/sessions", {"handle": victim, "password": "password123"})
    vtok = tok and tok.get("token")
    s, body = request(web_ports[0], "PATCH", "/api/me", {"bio": "fenced"}, bearer(vtok))
    c.eq((s, body and body.get("error", {}).get("code")), (503, "wrong_shard"),
         "a web node's write to a shard no cluster owns: 503 wrong_shard, nothing written")
    bio = psql(primary["s1"], f"SELECT bio FROM users WHERE id = {vid}").stdout.strip()
    c.eq(bio, "", "the refused write left the row as it was")
    psql(primary["s1"], f"INSERT INTO shard_ownership VALUES ({vshard}, 'owned', 1)")
    s, body = request(web_ports[1], "PATCH", "/api/me", {"bio": "owned again"}, bearer(vtok))
    c.eq((s, body and body.get("bio")), (200, "owned again"), "owned again: the write goes through")
    print(f"{time.time() - t0:.1f} s: fence")

    # --- `millions seed` fills both clusters by the map: every seeded user on its logical shard's
    # cluster, edges on both ends' clusters, and the users log in through the balancer.
    p = subprocess.run([binary(), "seed", "--users", "2000", "--follows", "4", "--photos", "1",
                        "--topology", topo], capture_output=True, text=True, timeout=180, cwd=tmp)
    c.eq(p.returncode, 0, "seed over two clusters: " + (p.stdout + p.stderr)[-400:])
    seeded = {}
    for name in ("s1", "s2"):
        out = psql(primary[name], "SELECT id FROM users WHERE handle LIKE 'seed%'").stdout.split()
        seeded[name] = out
        wrong = [i for i in out if m["clusters"][m["owner"][shard_of(i) % 1024]] != name]
        c.eq(wrong, [], f"every seeded user on {name} belongs there")
    c.eq(sum(len(v) for v in seeded.values()), 2000, "2000 seeded users, none twice")
    c.check(all(len(v) > 500 for v in seeded.values()), "on both clusters: " +
            str({k: len(v) for k, v in seeded.items()}))
    s, _ = request(lb_port, "POST", "/api/sessions", {"handle": "seed7", "password": "seeded-user"})
    c.eq(s, 201, "a seeded user logs in through the balancer")
    print(f"{time.time() - t0:.1f} s: seed")

    # --- a new map version in etcd reaches every web node (the watcher's poll)
    c.eq(map_versions(), [1, 1], "both web nodes route by map version 1")
    m["version"] = 2
    etcd("kv/put", {"key": MAP_KEY, "value": base64.b64encode(json.dumps(m).encode()).decode()})
    t1 = time.time()
    c.check(wait_for(lambda: map_versions() == [2, 2], 10, 0.1),
            f"both web nodes swap to version 2: {map_versions()}")
    print(f"map version 2 on both web nodes after {time.time() - t1:.2f} s")
    st = status()
    c.eq(sorted(s.get("map_version") for s in st.get("shards", [])), [2, 2],
         "status shows the new version")
    s, body = request(web_ports[0], "PATCH", "/api/me", {"bio": "v2"}, bearer(vtok))
    c.eq(s, 200, "writes go on under version 2")

    # --- the reshard's nudge (POST /shardmap/refresh) needs the token derived from the shard
    # map's secret: not through the balancer, not with a wrong one
    s, body = request(lb_port, "POST", "/shardmap/refresh?version=0")
    c.eq((s, (body or {}).get("error", {}).get("code")), (403, "forbidden"),
         "a nudge without the token is refused")
    s, _ = request(web_ports[0], "POST", "/shardmap/refresh?version=0",
                   headers={"Authorization": "Bearer " + "0" * 64})
    c.eq(s, 403, "a nudge with a wrong token is refused")
    token = hmac.new(secret(run_dir, "etcd_shardmap").encode(), b"millions shard map refresh",
                     hashlib.sha256).hexdigest()
    s, body = request(web_ports[0], "POST", "/shardmap/refresh?version=2",
                      headers={"Authorization": "Bearer " + token})
    c.eq((s, body.get("version")), (200, 2), "the reshard's token is taken")
finally:
    subprocess.run([binary(), "down", "--topology", topo], capture_output=True, timeout=120)
    print(f"{time.time() - t0:.1f} s: down")
c.finish()
