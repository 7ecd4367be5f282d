"""bench/failover: what a primary's death costs, through our data layer and on bare Patroni.

1. Our stack: `millions up` (etcd, three Patroni members in synchronous mode, one web node).
   Two writers sign users up and three readers read profiles through the web node; the
   primary is killed (kill -9, held down past Patroni's ttl). Reported: the write-
   unavailability window (longest time without an acknowledged write), failed writes and
   failed reads.
2. Bare Patroni, same cluster settings: a psycopg2 writer INSERTs in a loop on a multi-host
   connection (target_session_attrs=read-write), reconnecting on error; the primary is killed
   the same way. Reported: its window, and Patroni's own promotion time (kill to new leader).
3. Reads: `millions load --mix browse` with 1, 2 and 3 replicas: requests/s and database reads
   per member role.
Loopback only; every phase bounded in time. Run with /usr/bin/python3 (psycopg2 is Debian's)."""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from harness import binary, free_port, http_request, up_tables  # noqa: E402

import psycopg2  # noqa: E402

TTL, LOOP_WAIT, RETRY = 10, 2, 4
def topology(tmp, replicas):
    web = free_port()
    members = {f"pg{i}": (free_port(), free_port()) for i in range(1, replicas + 2)}
    path = os.path.join(tmp, "topology.toml")
    with open(path, "w") as f:
        f.write(up_tables("failoverbench", tmp) + f"""[web]
threads = 2
blocking_threads = 8
[[web.node]]
name = "web1"
listen = "127.0.0.1:{web}"
[postgres]
pool_size = 6
failover_wait_ms = 30000
[postgres.patroni]
ttl_s = {TTL}
loop_wait_s = {LOOP_WAIT}
retry_timeout_s = {RETRY}
synchronous_mode = true
# No cache: this bench measures the database tier (bench/cache measures the cache's effect).
[cache]
capacity_bytes = 0
""")
        for name, (pg, rest) in members.items():
            f.write(f'[[postgres.node]]\nname = "{name}"\nlisten = "127.0.0.1:{pg}"\n'
                    f'rest = "127.0.0.1:{rest}"\n')
        f.write("[workers]\nthreads = 1\n")
    return path, web, members


def run(tmp, *args, timeout=240):
    return subprocess.run([binary(), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=tmp)


def leader(members):
    for _, (_, rest) in members.items():
        try:
            s, _, data = http_request("127.0.0.1", rest, "GET", "/cluster", timeout=2)
            if s == 200:
                for m in json.loads(data)["members"]:
                    if m["role"] == "leader":
                        return m["name"]
        except OSError:
            pass
    return None


def replicas_streaming(members):
    for _, (_, rest) in members.items():
        try:
            s, _, data = http_request("127.0.0.1", rest, "GET", "/cluster", timeout=2)
            if s == 200:
                return sum(1 for m in json.loads(data)["members"]
                           if m["role"] != "leader" and m.get("state") in ("running", "streaming"))
        except OSError:
            pass
    return 0


def wait(cond, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.3)
    return False


def up(replicas):
    tmp = tempfile.mkdtemp(prefix="millions-failover-")
    os.chmod(tmp, 0o755)
    path, web, members = topology(tmp, replicas)
    r = run(tmp, "up", path, "--detach")
    if r.returncode != 0:
        sys.exit(f"up failed: {r.stdout[-800:]} {r.stderr[-800:]}")
    wait(lambda: replicas_streaming(members) == replicas, 120)
    return tmp, path, web, members


def api(web, method, path, body=None):
    try:
        return http_request("127.0.0.1", web, method, path, body, timeout=40)[0]
    except OSError:
        return 0


def kill_primary(tmp, path, members, acks, stop, threads):
    """After 4 s of load, kill -9 the leader (held down past the ttl), wait for a new one, run
    6 s more; returns the longest time without an acknowledged write and the promotion time."""
    time.sleep(4)
    old = leader(members)
    killed = time.time()
    run(tmp, "chaos", "kill", old, "--hold", "60", "--topology", path)
    wait(lambda: leader(members) not in (None, old), 60)
    promoted = time.time() - killed
    time.sleep(6)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    after = sorted(t for t in acks if t > killed - 1)
    return max((b - a for a, b in zip(after, after[1:])), default=float("nan")), promoted


def ours():
    tmp, path, web, members = up(2)
    try:
        ids = []
        for i in range(10):
            s, _, data = http_request("127.0.0.1", web, "POST", "/api/users",
                                      {"handle": f"reader{i}", "password": "password123"})
            ids.append(json.loads(data)["id"])
        stop = threading.Event()
        acks, wfail, rfail, rok = [], [0], [0], [0]

        def writer(k):
            i = 0
            while not stop.is_set():
                if api(web, "POST", "/api/users", {"handle": f"w{k}x{i}",
                                                    "password": "password123"}) == 201:
                    acks.append(time.time())
                else:
                    wfail[0] += 1
                i += 1

        def reader(k):
            i = 0
            while not stop.is_set():
                uid = ids[(i + k) % len(ids)]
                if api(web, "GET", f"/api/users/{uid}/photos?limit=10") == 200:
                    rok[0] += 1
                else:
                    rfail[0] += 1
                i += 1

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
        threads += [threading.Thread(target=reader, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        window, promoted = kill_primary(tmp, path, members, acks, stop, threads)
        return {"window_s": window, "failed_writes": wfail[0], "acknowledged": len(acks),
                "failed_reads": rfail[0], "reads": rok[0], "patroni_promotion_s": promoted}
    finally:
        run(tmp, "down", "--topology", path)


def bare():
    tmp, path, web, members = up(2)
    try:
        hosts = ",".join("127.0.0.1" for _ in members)
        ports = ",".join(str(pg) for pg, _ in members.values())
        dsn = (f"host={hosts} port={ports} dbname=millions user=millions connect_timeout=2 "
               "target_session_attrs=read-write")
        setup = psycopg2.connect(dsn)
        setup.autocommit = True
        setup.cursor().execute("CREATE TABLE IF NOT EXISTS bench_ledger(id BIGSERIAL PRIMARY KEY)")
        setup.close()
        stop = threading.Event()
        acks, fails = [], [0]

        def writer():
            conn = None
            while not stop.is_set():
                try:
                    if conn is None:
                        conn = psycopg2.connect(dsn)
                        conn.autocommit = True
                    conn.cursor().execute("INSERT INTO bench_ledger DEFAULT VALUES")
                    acks.append(time.time())
                except psycopg2.Error:
                    fails[0] += 1
                    conn = None
                    time.sleep(0.05)

        threads = [threading.Thread(target=writer) for _ in range(2)]
        for t in threads:
            t.start()
        window, promoted = kill_primary(tmp, path, members, acks, stop, threads)
        return {"window_s": window, "failed_writes": fails[0], "acknowledged": len(acks),
                "patroni_promotion_s": promoted}
    finally:
        run(tmp, "down", "--topology", path)


def metric(web, prefix):
    _, _, data = http_request("127.0.0.1", web, "GET", "/metrics")
    return sum(float(line.rsplit(" ", 1)[1]) for line in data.decode().splitlines()
               if line.startswith(prefix))


def reads(replicas, seconds):
    tmp, path, web, members = up(replicas)
    try:
        out = os.path.join(tmp, "load.json")
        rep0 = metric(web, 'millions_db_queries_total{shard="0",member_role="replica"')
        pri0 = metric(web, 'millions_db_queries_total{shard="0",member_role="primary",kind="read"')
        run(tmp, "load", "--target", f"http://127.0.0.1:{web}", "--users", "16", "--duration",
            str(seconds), "--mix", "browse", "--json", out, timeout=seconds + 120)
        r = json.load(open(out))
        return {"rps": r.get("throughput_rps", r.get("rps")), "p99_ms": r.get("p99_ms"),
                "replica_reads": metric(web, 'millions_db_queries_total{shard="0",'
                                        'member_role="replica"') - rep0,
                "primary_reads": metric(web, 'millions_db_queries_total{shard="0",'
                                        'member_role="primary",kind="read"') - pri0}
    finally:
        run(tmp, "down", "--topology", path)


if __name__ == "__main__":
    seconds = int(os.environ.get("DURATION", "15"))
    a = ours()
    print(f"ours (web node on PgCluster): {json.dumps(a)}", flush=True)
    b = bare()
    print(f"bare Patroni (psycopg2 writer): {json.dumps(b)}", flush=True)
    print(f"\nkill -9 of the primary, ttl {TTL} s, loop_wait {LOOP_WAIT} s, synchronous mode")
    print(f"{'':28} {'window s':>9} {'promotion s':>12} {'failed writes':>14} {'failed reads':>13}")
    print(f"{'millions (through web1)':28} {a['window_s']:>9.2f} {a['patroni_promotion_s']:>12.2f}"
          f" {a['failed_writes']:>14} {a['failed_reads']:>13}")
    print(f"{'bare Patroni + libpq':28} {b['window_s']:>9.2f} {b['patroni_promotion_s']:>12.2f}"
          f" {b['failed_writes']:>14} {'-':>13}")
    print(f"window ours - bare: {a['window_s'] - b['window_s']:+.2f} s (goal: within 1 s)\n",
          flush=True)
    print(f"read-heavy load (--mix browse, 16 users, {seconds} s) by replica count")
    for n in (1, 2, 3):
        r = reads(n, seconds)
        print(f"  {n} replica(s): {json.dumps(r)}", flush=True)
