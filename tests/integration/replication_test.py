"""Replication and failover on a real Patroni cluster (etcd, one primary, two replicas, in
synchronous mode) under `millions up`, with one web node:
- replica reads land on replicas, and a caller reads its own write at once;
- a replica whose replay is paused falls behind the lag bound and gets no reads;
- kill -9 of a replica under reads and writes, until it is back: no failed read;
- kill -9 of the primary (its whole process group) under reads and writes, with a ledger of
  every write (a photo whose caption is its token, sent with that token as Idempotency-Key and
  retried after a 503), checked against the rows: every acknowledged write there exactly once,
  any other at most once, no failed read; prints the write-unavailability window; the killed
  member comes back as a replica. Every load thread must end without an exception."""
import json
import os
import subprocess
import tempfile
import threading
import time

from harness import (Checks, Worker, bearer, binary, free_port, http_request, node, parse_json,
                     patroni_auth, pg_env, png, topology, wait_for, worker_faults)

tmp = tempfile.mkdtemp(prefix="millions-repl-")
os.chmod(tmp, 0o755)
web_port = free_port()
pg = {f"pg{i}": (free_port(), free_port()) for i in (1, 2, 3)}
topo = os.path.join(tmp, "topology.toml")
topology(topo, name="repltest", up=tmp,
         web={"threads": 1, "blocking_threads": 8, "node": [node("web1", web_port)]},
         postgres={"pool_size": 6, "max_replica_lag_bytes": 1048576, "failover_wait_ms": 30000,
                   "patroni": {"ttl_s": 10, "loop_wait_s": 1, "retry_timeout_s": 3,
                               "synchronous_mode": True},
                   "node": [node(name, port, rest=rest) for name, (port, rest) in pg.items()]},
         workers={"threads": 1})

c = Checks()
# Reads of a page of this size are never cached (only the default page is): every one reaches
# the database, which is what this test routes and measures.
UNCACHED = 10


def run(*args, timeout=120):
    return subprocess.run([binary(), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=tmp)


def api(method, path, body=None, headers=None, timeout=40):
    try:
        status, _, data = http_request("127.0.0.1", web_port, method, path, body, headers,
                                       timeout=timeout)
        return status, parse_json(data)
    except OSError as e:
        return 0, str(e)


def series(prefix):
    """The values of every series of the web node's /metrics that starts with `prefix`."""
    _, _, data = http_request("127.0.0.1", web_port, "GET", "/metrics")
    return [float(line.rsplit(" ", 1)[1]) for line in data.decode().splitlines()
            if line.startswith(prefix)]


def metric(prefix):
    """Sum of every series of the web node's /metrics that starts with `prefix`."""
    return sum(series(prefix))


def patroni_cluster():
    for name, (_, rest) in pg.items():
        try:
            s, _, data = http_request("127.0.0.1", rest, "GET", "/cluster", timeout=2)
            if s == 200:
                return json.loads(data)
        except OSError:
            pass
    return None


def roles():
    cl = patroni_cluster() or {"members": []}
    return {m["name"]: (m["role"], m.get("state"), m.get("lag")) for m in cl["members"]}


def leader():
    return next((n for n, (r, _, _) in roles().items() if r == "leader"), None)


def maintenance(on):
    """Patroni's maintenance mode (pause) on or off, once every member has seen it."""
    def seen():
        for _, rest in pg.values():
            try:
                s, _, data = http_request("127.0.0.1", rest, "GET", "/patroni", timeout=2)
            except OSError:
                return False
            if s != 200 or bool(json.loads(data).get("pause")) != on:
                return False
        return True

    for _, rest in pg.values():
        try:
            if http_request("127.0.0.1", rest, "PATCH", "/config", {"pause": on},
                            patroni_auth(os.path.join(tmp, "run")), timeout=5)[0] == 200:
                return wait(seen, 20)
        except OSError:
            pass
    return False


def wait(cond, timeout, step=0.3):
    return wait_for(cond, timeout, step)


def psql(name, sql):
    port = pg[name][0]
    return subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d",
                           "millions", "-Atc", sql], capture_output=True, text=True, timeout=30,
                          env=pg_env(os.path.join(tmp, "run")))


up = subprocess.run([binary(), "up", topo, "--detach"], capture_output=True, text=True,
                    timeout=240, cwd=tmp)
c.eq(up.returncode, 0, f"up with three PostgreSQL members: {up.stdout[-600:]} {up.stderr[-600:]}")
try:
    # Both replicas streaming (Patroni) and seen by the data layer within the lag bound.
    ok = wait(lambda: len([1 for r, st, lag in roles().values()
                           if r in ("replica", "sync_standby") and st in ("running", "streaming")])
              == 2, 120)
    c.check(ok, f"two replicas streaming: {roles()}")
    c.check(wait(lambda: metric('millions_db_member_up{') == 3, 30),
            "the web node reaches all three members")
    st = json.loads(run("status", "--json", "--topology", topo).stdout)
    dbs = sorted(n["db_role"] for n in st["nodes"] if n["role"] == "postgres")
    c.eq(dbs, ["primary", "replica", "replica"], "status shows one primary and two replicas")

    # Users to read: created, then read once the data layer sees both replicas within the lag
    # bound (a replica read goes to the primary otherwise).
    users = []
    for i in range(12):
        s, u = api("POST", "/api/users", {"handle": f"reader{i}", "password": "password123"})
        users.append(u["id"] if s == 201 else None)
    created_at = time.time()
    c.check(all(users), f"users created: {users}")
    s, sess = api("POST", "/api/sessions", {"handle": "reader0", "password": "password123"})
    token = sess.get("token") if s == 201 else ""
    c.check(wait(lambda: len([v for v in series("millions_db_replica_lag_bytes{")
                              if 0 <= v <= 1048576]) == 2, 20),
            f"both replicas within the lag bound: {series('millions_db_replica_lag_bytes{')}")
    # Reads about a user who wrote through this node go to the primary for 2 s (read-your-writes,
    # pg_store.cc): that window must have passed since the last sign-up. A time, not a condition
    # the node exposes, so it is waited out.
    time.sleep(max(0.0, created_at + 2.2 - time.time()))
    before = metric('millions_db_queries_total{shard="0",member_role="replica",kind="read"}')
    for uid in users:
        api("GET", f"/api/users/{uid}/photos?limit={UNCACHED}")
    after = metric('millions_db_queries_total{shard="0",member_role="replica",kind="read"}')
    c.check(after - before >= len(users), f"replica reads land on replicas: {after - before}")

    # Read your own write: the profile read right after a PATCH shows it.
    s, _ = api("PATCH", "/api/me", {"bio": "fresh bio"}, bearer(token))
    s2, me = api("GET", f"/api/users/{users[0]}")
    c.check(s == 200 and s2 == 200 and me.get("bio") == "fresh bio",
            f"read-your-writes after PATCH: {s} {s2} {me}")

    # A replica with its replay paused falls behind the bound and is skipped.
    lead = leader()
    replicas = [n for n in pg if n != lead]
    paused = replicas[0]
    # Patroni resumes a paused replay on PostgreSQL 14+ at its next cycle (it takes a pause for
    # one caused by a parameter change), unless the cluster is in maintenance mode.
    c.check(maintenance(True), "Patroni in maintenance mode while replay is paused")
    c.check(psql(paused, "SELECT pg_wal_replay_pause()").returncode == 0, "replay paused")
    # About 4 MB of WAL that does not compress: random text, a different value per row.
    fill = psql(lead, "CREATE TABLE filler AS SELECT g, (SELECT string_agg(md5(random()::text"
                      " || i || g), '') FROM generate_series(1, 32) i) AS pad"
                      " FROM generate_series(1, 4000) g")
    behind = wait(lambda: metric(f'millions_db_replica_lag_bytes{{shard="0",member="{paused}"}}')
                  > 1048576, 20)
    lag_now = metric(f'millions_db_replica_lag_bytes{{shard="0",member="{paused}"}}')
    c.check(behind, f"the paused replica's lag is measured past the bound: {lag_now} "
            f"(filler: {fill.returncode} {fill.stderr[-200:]})")
    # The other replica replays the filler too: reads go to it once it is back within the bound.
    c.check(wait(lambda: metric(
        f'millions_db_replica_lag_bytes{{shard="0",member="{replicas[1]}"}}') < 1048576, 20),
        "the other replica caught up")
    reads_paused = metric(f'millions_db_member_reads_total{{shard="0",member="{paused}"}}')
    reads_other = metric(f'millions_db_member_reads_total{{shard="0",member="{replicas[1]}"}}')
    reads_all = {n: metric(f'millions_db_member_reads_total{{shard="0",member="{n}"}}') for n in pg}
    for uid in users:
        api("GET", f"/api/users/{uid}/photos?limit={UNCACHED}")
    c.eq(metric(f'millions_db_member_reads_total{{shard="0",member="{paused}"}}') - reads_paused,
         0, "no reads on the lagging replica")
    c.check(metric(f'millions_db_member_reads_total{{shard="0",member="{replicas[1]}"}}')
            - reads_other >= len(users), "its reads went to the other replica: " + str(
                {n: metric(f'millions_db_member_reads_total{{shard="0",member="{n}"}}') - v
                 for n, v in reads_all.items()}) + f" paused {paused}, leader {lead}")
    c.check(psql(paused, "SELECT pg_get_wal_replay_pause_state()").stdout.strip() == "paused",
            "replay stayed paused throughout")
    psql(paused, "SELECT pg_wal_replay_resume()")
    c.check(maintenance(False), "Patroni out of maintenance mode")
    c.check(wait(lambda: metric(f'millions_db_replica_lag_bytes{{shard="0",member="{paused}"}}')
                 == 0, 30), "replay resumed: the replica catches up")

    # Load: readers of existing users; writers upload photos, each with a caption of its own
    # (its ledger token) and that token as Idempotency-Key, retried with the same key after a
    # 503. A photo's caption is not unique in the schema: a write applied twice is two rows.
    stop = threading.Event()
    read_fail, read_ok = [], [0]
    attempted, acked, write_fail = [], [], []  # tokens; (token, photo id); (t, token, status, body)
    write_times = []
    writers = []
    for k in range(2):
        s, _ = api("POST", "/api/users", {"handle": f"writer{k}", "password": "password123"})
        s2, ws = api("POST", "/api/sessions", {"handle": f"writer{k}", "password": "password123"})
        c.check(s == 201 and s2 == 201, f"writer{k} signed up and logged in: {s} {s2}")
        writers.append(ws.get("token", "") if s2 == 201 else "")
    image = png(8, 8)

    def reader(k):
        i = 0
        while not stop.is_set():
            uid = users[(i + k) % len(users)]
            s, body = api("GET", f"/api/users/{uid}/photos?limit={UNCACHED}")
            if s == 200:
                read_ok[0] += 1
            else:
                read_fail.append((time.time(), s, str(body)[:120]))
            i += 1

    def writer(k):
        i = 0
        while not stop.is_set():
            token = f"ledger-r{rounds[0]}-w{k}-{i}"
            i += 1
            attempted.append(token)
            headers = {**bearer(writers[k]), "Content-Type": "image/png", "Idempotency-Key": token}
            t = time.time()
            while True:
                s, body = api("POST", f"/api/photos?caption={token}", image, headers)
                # A 503 may or may not have committed: the same key makes the retry safe (it
                # runs if the first did not claim the key, else it gets 409 in progress).
                if s in (0, 503) and not stop.is_set() and time.time() - t < 40:
                    time.sleep(0.2)  # client back-off before the retry
                    continue
                break
            if s == 201:
                acked.append((token, body["id"]))
                write_times.append(time.time())  # when it was acknowledged
            else:
                write_fail.append((t, token, s, str(body)[:120]))

    rounds = [0]

    def load(action, done, timeout):
        """Readers and writers run; once both are flowing, action() runs, and the load goes on
        until done() holds (at most timeout seconds). Every thread must end without an
        exception. Returns done()'s value."""
        rounds[0] += 1
        stop.clear()
        threads = [Worker(reader, k, name=f"reader{k}") for k in range(3)]
        threads += [Worker(writer, k, name=f"writer{k}") for k in range(2)]
        for t in threads:
            t.start()
        r0, w0 = read_ok[0], len(acked)
        flowing = wait(lambda: (read_ok[0] - r0 >= 20 and len(acked) - w0 >= 5)
                       or any(not t.is_alive() for t in threads), 30)
        c.check(flowing and all(t.is_alive() for t in threads),
                f"round {rounds[0]}: reads and writes flowing before the fault: "
                f"{read_ok[0] - r0} reads, {len(acked) - w0} writes")
        action()
        reached = wait(done, timeout)
        stop.set()
        c.eq(worker_faults(threads, 60), [],
             f"round {rounds[0]}: every reader and writer ended without an exception")
        return reached

    def streaming_replicas():
        return len([1 for r, st, _ in roles().values()
                    if r in ("replica", "sync_standby") and st in ("running", "streaming")])

    def node_pid(name):
        st = json.loads(run("status", "--json", "--topology", topo).stdout or "{}")
        n = next((n for n in st.get("nodes", []) if n["name"] == name), None)
        return n["pid"] if n and n["state"] == "running" else 0

    # kill -9 of a replica under load, until it is back (restarted, streaming, reached by the
    # data layer): no read fails.
    victim = [n for n in pg if n != leader()][1]
    victim_pid = node_pid(victim)
    back = load(lambda: run("chaos", "kill", victim, "--topology", topo),
                lambda: node_pid(victim) not in (0, victim_pid) and streaming_replicas() == 2
                and metric('millions_db_member_up{') == 3, 90)
    c.check(back, f"the killed replica is back: {roles()}")
    c.check(read_ok[0] > 50, f"reads ran: {read_ok[0]}")
    c.check(not read_fail, f"kill -9 of replica {victim}: no failed read: {len(read_fail)} "
            f"{read_fail[:3]}")

    # kill -9 of the primary under reads and writes, until a replica is promoted and writes
    # have been acknowledged again for a while.
    read_fail.clear()
    read_ok[0] = 0
    old = leader()
    kill_at = [0.0]

    def kill_primary():
        kill_at[0] = time.time()
        # Held down past Patroni's ttl, as a machine that died would be: a replica is promoted.
        run("chaos", "kill", old, "--hold", "30", "--topology", topo)

    load(kill_primary, lambda: leader() not in (None, old)
         and len([t for t in write_times if t > kill_at[0]]) >= 20, 60)
    new = leader()
    c.check(new and new != old, f"a replica was promoted: {old} -> {new}")
    c.check(not read_fail, f"kill -9 of the primary: no failed read: {len(read_fail)} "
            f"{read_fail[:3]}")
    # The write-unavailability window: the longest time without an acknowledged write, from
    # the last acknowledgement before the kill on.
    before_kill = [t for t in write_times if t <= kill_at[0]]
    acks = [max(before_kill, default=kill_at[0])] + sorted(t for t in write_times
                                                           if t > kill_at[0])
    c.check(len(acks) > 1, "writes succeed again after the failover")
    if len(acks) > 1:
        window = max(b - a for a, b in zip(acks, acks[1:]))
        print(f"write-unavailability window: {window:.2f} s (failed writes: {len(write_fail)}, "
              f"acknowledged: {len(acked)})")
    # The ledger against the database (the new primary; synchronous mode, so it has every
    # acknowledged commit): each acknowledged token is exactly one row, with the id its
    # answer gave; a failed or ambiguous one is at most one row; no row has a token nobody
    # sent.
    rows = psql(new, "SELECT caption, id FROM photos WHERE caption LIKE 'ledger-%'")
    c.eq(rows.returncode, 0, f"the ledger's rows read: {rows.stderr[-200:]}")
    in_db = {}
    for line in rows.stdout.split():
        token, pid = line.split("|")
        in_db.setdefault(token, []).append(pid)
    missing = [t for t, _ in acked if t not in in_db]
    doubled = {t: len(v) for t, v in in_db.items() if len(v) > 1}
    wrong_id = [(t, i, in_db[t]) for t, i in acked if t in in_db and in_db[t] != [i]]
    c.check(len(acked) > 100, f"writes ran: {len(acked)} acknowledged, {len(write_fail)} failed")
    c.check(not missing, f"no acknowledged write lost ({len(acked)} acknowledged): "
            f"{len(missing)} missing {missing[:5]}")
    c.check(not doubled, f"no write applied twice: {len(doubled)} tokens with more than one row "
            f"{sorted(doubled.items())[:5]}")
    c.check(not wrong_id, f"each acknowledged write's row is the photo it answered: {wrong_id[:3]}")
    c.eq(sorted(set(in_db) - set(attempted)), [], "no row from a write nobody sent")
    c.check(all(s == 503 or (s == 409 and "idempotency_in_progress" in b)
                for _, _, s, b in write_fail),
            f"failed writes are 503s (or 409 in progress, a retry after a 503 that may have "
            f"committed): {[w for w in write_fail if w[2] not in (409, 503)][:3]}")
    c.check(wait(lambda: roles().get(old, ("",))[0] in ("replica", "sync_standby"), 90),
            f"the old primary re-joins as a replica: {roles()}")
    st = json.loads(run("status", "--json", "--topology", topo).stdout)
    c.check(any(f"promoted to primary (was {old})" in e["text"] for e in st.get("events", [])),
            "the promotion is an event (the dashboard's list)")
    c.check(metric("millions_db_failovers_total") >= 1, "the data layer counted the failover")
finally:
    c.eq(run("down", "--topology", topo, timeout=180).returncode, 0, "down")
c.finish()
