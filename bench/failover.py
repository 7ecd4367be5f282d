"""bench/failover: what a primary's death costs, through our data layer and on bare Patroni.

1. Our stack: `millions up` (etcd, three Patroni members in synchronous mode, one web node).
   Two writers sign users up and three readers read a photo list through the web node.
2. Bare Patroni, same cluster settings: psycopg2 writers INSERT in a loop with autocommit,
   connecting to the first member that takes a read-write session (each tried in turn,
   target_session_attrs=read-write), reconnecting 10 ms after an error.
   The kill, the same for both: once writes (and reads) flow, every process of the primary's
   member (Patroni, the postmaster, and each backend: PostgreSQL's children lead process groups
   of their own, so killing the postmaster's group leaves them able to commit for a while) is
   stopped at one instant with SIGSTOP, a machine's death; then `millions chaos kill --hold`
   (the runner kills Patroni and the postmaster and keeps the node down past Patroni's ttl) and
   SIGKILL to whatever is left. Times count from that instant.
   The write window runs from the kill to the first acknowledged write that was *sent after*
   it: a write in flight at the kill proves nothing by its late answer. Two fresh writers start
   at the kill beside the two running (whose writes in flight are held through the failover;
   ours wait up to failover_wait), so the first write after the kill does not queue behind one
   sent before it. The run fails if no write sent after the kill is acknowledged within
   AFTER_KILL_S, if the old primary (bare: known by the port of each acknowledgement) took one,
   if no new primary is seen, or if a writer or reader thread dies of an exception.
   Promotion, from the new primary's log (1 ms): PostgreSQL's "archive recovery complete"
   (writes are possible from about then) and "ready to accept connections", Patroni's
   "promoted self to leader" (logged at the end of its cycle). As a cross-check, every member
   but the old one is asked GET /primary every 0.05 s; the first 200 is printed with its
   resolution (since the start of that member's last negative answer).
   Reads (ours) time out after 2 s, and a timed-out read counts as failed; their count, failures
   and latency p50/p99/max are printed for before and after the kill.
   ROUNDS rounds (default 3), ours and bare alternating which goes first; the median, the range
   and the spread ((max - min) / median) are printed, and ours - bare per round.
3. Reads: `millions load --mix browse` with 1, 2 and 3 replicas, ROUNDS rotated rounds:
   successes/s and database reads per member role. Any non-2xx answer, error count or non-zero
   exit of `millions load` fails the run.
Waits are on conditions with deadlines, not fixed sleeps. Loopback only; every phase bounded in
time. Run with /usr/bin/python3 (psycopg2 is Debian's). Exits 1 on any failed check.

Environment: ROUNDS (3), DURATION (15, seconds per read load), AFTER_KILL_S (60), PHASES
("failover,reads"), BENCH_KEEP=1 (keep the run directories)."""
import collections
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from benchlib import check_load_summary  # noqa: E402
from failover_logs import (Failed, kill_time, member_pids, proc_state,  # noqa: E402
                           promotion_from_logs, signal_all, tree)
import harness  # noqa: E402
from harness import binary, free_port, http_request, node  # noqa: E402

import psycopg2  # noqa: E402

TTL, LOOP_WAIT, RETRY = 10, 2, 4
FAILOVER_WAIT_S = 30
READ_TIMEOUT_S = 2.0
WRITE_TIMEOUT_S = FAILOVER_WAIT_S + 10  # a write held through the failover is the design
POLL_S = 0.05
BARE_RETRY_S = 0.01
ROUNDS = int(os.environ.get("ROUNDS", "3"))
SECONDS = int(os.environ.get("DURATION", "15"))
AFTER_KILL_S = float(os.environ.get("AFTER_KILL_S", "60"))
PHASES = set(os.environ.get("PHASES", "failover,reads").split(","))
WARM_ACKS = 20  # acknowledged writes (and good reads) before the kill
AFTER_ACKS = 20  # acknowledged writes sent after the kill before the run ends
MAX_REQUESTS = 1_000_000  # per thread: a bound on every loop besides time


def copy_binary():
    """A copy of the binary under test, so that a rebuild during the run cannot change it."""
    d = tempfile.mkdtemp(prefix="millions-failover-bin-")
    os.chmod(d, 0o755)
    dst = os.path.join(d, "millions")
    shutil.copy2(os.path.realpath(binary()), dst)
    # The libvips module the binary loads from beside itself (src/media/media.cc).
    module = os.path.join(os.path.dirname(os.path.realpath(binary())), "millions-media-vips.so")
    if os.path.exists(module):
        shutil.copy2(module, os.path.join(d, "millions-media-vips.so"))
    os.environ["MILLIONS_BIN"] = dst
    return d


def topology(tmp, replicas):
    web = free_port()
    members = {f"pg{i}": (free_port(), free_port()) for i in range(1, replicas + 2)}
    path = harness.topology(
        os.path.join(tmp, "topology.toml"), name="failoverbench", up=tmp,
        web={"threads": 2, "blocking_threads": 8, "node": [node("web1", web)]},
        postgres={"pool_size": 6, "failover_wait_ms": FAILOVER_WAIT_S * 1000,
                  "patroni": {"ttl_s": TTL, "loop_wait_s": LOOP_WAIT, "retry_timeout_s": RETRY,
                              "synchronous_mode": True},
                  "node": [node(name, pg, rest=rest) for name, (pg, rest) in members.items()]},
        # No cache: this bench measures the database tier (bench/cache measures the cache's effect).
        cache={"capacity_bytes": 0}, workers={"threads": 1})
    return path, web, members

def run(tmp, *args, timeout=240):
    return subprocess.run([binary(), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=tmp)


def wait(cond, timeout, step=POLL_S):
    """cond()'s first true value within timeout seconds; else None."""
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v or time.time() >= deadline:
            return v
        time.sleep(step)


def get(port, path, timeout=1.0):
    try:
        s, _, data = http_request("127.0.0.1", port, "GET", path, timeout=timeout)
        return s, data
    except (OSError, http.client.HTTPException):
        return 0, b""


def cluster(members):
    for _, (_, rest) in members.items():
        s, data = get(rest, "/cluster")
        if s == 200:
            return json.loads(data)["members"]
    return []


def leader(members):
    return next((m["name"] for m in cluster(members) if m["role"] == "leader"), None)


def replicas_streaming(members):
    return sum(1 for m in cluster(members)
               if m["role"] != "leader" and m.get("state") in ("running", "streaming"))


def up(replicas):
    tmp = tempfile.mkdtemp(prefix="millions-failover-")
    os.chmod(tmp, 0o755)
    path, web, members = topology(tmp, replicas)
    try:
        r = run(tmp, "up", path, "--detach")
    except BaseException:  # interrupted or timed out: stop what did start
        down(tmp, path)
        raise
    if r.returncode != 0:
        down(tmp, path)
        raise Failed(f"up failed: {r.stdout[-800:]} {r.stderr[-800:]}")
    return tmp, path, web, members


def down(tmp, path):
    r = run(tmp, "down", "--topology", path)
    if r.returncode == 0 and os.environ.get("BENCH_KEEP") != "1":
        shutil.rmtree(tmp, ignore_errors=True)
    elif r.returncode != 0:
        print(f"warning: down failed for {tmp}: {r.stderr[-400:]}", file=sys.stderr)


def ready(web, members, replicas):
    if not wait(lambda: replicas_streaming(members) == replicas and leader(members), 120, 0.2):
        raise Failed(f"{replicas} replicas not streaming within 120 s: {cluster(members)}")
    if not wait(lambda: get(web, "/readyz")[0] == 200, 60, 0.1):
        raise Failed("web1 not ready within 60 s")


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


class Traffic:
    """Writer and reader threads; each request recorded as (sent, answered, ok)."""

    def __init__(self, write, read=None):
        self.write, self.read = write, read
        self.writes, self.reads, self.crashes = [], [], []
        self.errors = collections.Counter()  # why writes failed, by kind
        self.stop = threading.Event()
        self.threads = []
        self.next_writer = 0

    def _loop(self, fn, out, k):
        try:
            for i in range(MAX_REQUESTS):
                if self.stop.is_set():
                    return
                t = time.time()
                ok = fn(k, i)
                out.append((t, time.time(), ok))
        except Exception as e:  # noqa: BLE001 -- any other exception fails the run, not silently
            self.crashes.append(f"{fn.__name__} {k}: {e!r}")

    def start(self, writers, readers=0):
        for _ in range(writers):
            self._spawn(self.write, self.writes, self.next_writer)
            self.next_writer += 1
        for k in range(readers):
            self._spawn(self.read, self.reads, k)

    def _spawn(self, fn, out, k):
        t = threading.Thread(target=self._loop, args=(fn, out, k), daemon=True)
        t.start()
        self.threads.append(t)

    def acks(self, after=0.0):
        return sum(1 for s, _, ok in list(self.writes) if ok and s >= after)

    def good_reads(self, after=0.0):
        return sum(1 for s, _, ok in list(self.reads) if ok and s >= after)

    def finish(self):
        self.stop.set()
        deadline = time.time() + WRITE_TIMEOUT_S + 10
        for t in self.threads:
            t.join(timeout=max(0.1, deadline - time.time()))
        stuck = sum(t.is_alive() for t in self.threads)
        if stuck:
            raise Failed(f"{stuck} load threads still running {WRITE_TIMEOUT_S + 10} s after stop")
        if self.crashes:
            raise Failed("load threads crashed: " + "; ".join(self.crashes))


class Promotion:
    """A cross-check of the logs: one thread per member but `old` asks GET /primary every POLL_S
    seconds. found: (member, end of its first 200, resolution), the resolution being the time
    from the start of that member's last negative answer (Patroni's REST API answers slowly
    while it promotes, so it is coarser than POLL_S)."""

    def __init__(self, members, old, deadline):
        self.found = None
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._poll, args=(n, rest, deadline), daemon=True)
                        for n, (_, rest) in members.items() if n != old]
        for t in self.threads:
            t.start()

    def _poll(self, name, rest, deadline):
        last_no = time.time()
        for _ in range(100_000):
            if self.found or time.time() >= deadline:
                return
            t = time.time()
            if get(rest, "/primary", timeout=1.0)[0] == 200:
                end = time.time()
                with self.lock:
                    if not self.found:
                        self.found = (name, end, end - last_no)
                return
            last_no = t
            time.sleep(POLL_S)

    def join(self, timeout):
        for t in self.threads:
            t.join(timeout=timeout)


def freeze(tmp, name):
    """The machine's death, at one instant: SIGSTOP to the member's postmaster, then to every
    process under it and under Patroni (PostgreSQL's children each lead a process group of
    their own, so a signal to the postmaster's group does not reach its backends, and a backend
    outlives its postmaster for a while: long enough to commit a write), then to Patroni.
    Returns (the time all were stopped, their pids)."""
    patroni, postmaster = member_pids(tmp, name)
    if not patroni or not postmaster:
        raise Failed(f"{name}: Patroni {patroni} or postmaster {postmaster} not found")
    signal_all([postmaster], signal.SIGSTOP)  # no new backend from here on
    doomed = tree([postmaster, patroni])
    signal_all(sorted(doomed - {patroni}), signal.SIGSTOP)
    signal_all([patroni], signal.SIGSTOP)
    # A signal is delivered when its process next runs: the kill is the moment all are stopped.
    stopped = wait(lambda: all(proc_state(p) in (None, "Z", "T", "t") for p in doomed) and
                   time.time(), 1.0, 0.001)
    if not stopped:
        running = [p for p in doomed if proc_state(p) not in (None, "Z", "T", "t")]
        signal_all(doomed, signal.SIGKILL)
        raise Failed(f"{name}: processes not stopped 1 s after SIGSTOP: {running} (killed)")
    return stopped, doomed


def kill_and_measure(tmp, path, members, traffic, readers):
    """Kills the primary once writes (and reads) flow; runs until a new primary is seen and
    AFTER_ACKS writes sent after the kill are acknowledged (or AFTER_KILL_S passes)."""
    if not wait(lambda: traffic.acks() >= WARM_ACKS and traffic.good_reads() >= WARM_ACKS * readers,
                60):
        raise Failed(f"load not flowing before the kill: {traffic.acks()} writes acknowledged, "
                     f"{traffic.good_reads()} good reads in 60 s")
    old = leader(members)
    if not old:
        raise Failed("no leader before the kill")
    # The kill: frozen at once (tk), then `millions chaos kill --hold` (the runner kills Patroni
    # and the postmaster and keeps the node down past the ttl), then SIGKILL to every frozen
    # process left (the backends). A write sent after tk cannot reach the old primary.
    t0 = time.time()
    tk, doomed = freeze(tmp, old)
    try:
        promo = Promotion(members, old, tk + AFTER_KILL_S)
        traffic.start(2)  # fresh writers: their first write is sent after the kill
        r = run(tmp, "chaos", "kill", old, "--hold", "120", "--topology", path, timeout=30)
        t1 = time.time()
    finally:
        signal_all(doomed, signal.SIGKILL)  # whatever happened: none of them may live on
    if r.returncode != 0:
        raise Failed(f"chaos kill {old} failed: {r.stdout} {r.stderr}")
    if not wait(lambda: all(proc_state(p) in (None, "Z") for p in doomed), 5.0, 0.01):
        raise Failed(f"{old}'s processes still there 5 s after SIGKILL: "
                     f"{[p for p in doomed if proc_state(p) not in (None, 'Z')]}")
    pg_gone = time.time()
    wait(lambda: promo.found and traffic.acks(after=tk) >= AFTER_ACKS,
         max(0.0, tk + AFTER_KILL_S - time.time()))
    promo.join(timeout=5)
    traffic.finish()
    kill_time(tmp, old)  # the runner did register the kill
    after = [e for s, e, ok in traffic.writes if ok and s >= tk]
    if not after:
        raise Failed(f"no write sent after the kill was acknowledged within {AFTER_KILL_S:.0f} s "
                     f"({sum(1 for s, _, ok in traffic.writes if s >= tk and not ok)} failed)")
    old_port = members[old][0]
    late = [(s - tk, e - tk) for s, e, ok in traffic.writes if ok == old_port and s >= tk]
    if late:
        raise Failed(f"the old primary {old} acknowledged {len(late)} writes sent after the kill "
                     f"(sent, answered s after it: {late[:5]})")
    logged = promotion_from_logs(tmp, members, old, tk)
    if not promo.found or not logged:
        raise Failed(f"no new primary within {AFTER_KILL_S:.0f} s of the kill: polled "
                     f"{promo.found}, logs {logged}")
    if logged["member"] != promo.found[0]:
        raise Failed(f"the logs promoted {logged['member']}, GET /primary answered 200 on "
                     f"{promo.found[0]}")
    before = [e for _, e, ok in traffic.writes if ok and e <= tk]
    held = [(s, e, ok) for s, e, ok in traffic.writes if s < tk and e > tk]
    out = {
        "window_s": min(after) - tk,
        "promotion_s": logged["recovered"] - tk,
        "window_after_promotion_s": min(after) - logged["recovered"],
        "ready_s": logged["ready"] - tk,
        "leader_lock_s": logged["lock"] - tk,
        "lock_polled_s": promo.found[1] - tk,
        "poll_resolution_s": promo.found[2],
        "new_primary": logged["member"],
        "old_member_gone_s": pg_gone - tk,
        "gap_before_kill_s": tk - max(before) if before else float("nan"),
        "freeze_s": tk - t0,
        "chaos_call_s": t1 - tk,
        "acknowledged": sum(1 for _, _, ok in traffic.writes if ok),
        "failed_write_attempts": sum(1 for _, _, ok in traffic.writes if not ok),
        "held_writes_ok": sum(1 for _, _, ok in held if ok),
        "held_writes_failed": sum(1 for _, _, ok in held if not ok),
        "write_errors": dict(traffic.errors.most_common(4)),
    }
    if readers:
        pre = [(e - s, ok) for s, e, ok in traffic.reads if e <= tk]
        post = [(e - s, ok) for s, e, ok in traffic.reads if e > tk]
        for name, rs in (("before", pre), ("after", post)):
            lat = [d * 1000 for d, _ in rs]
            out[f"reads_{name}"] = len(rs)
            out[f"failed_reads_{name}"] = sum(1 for _, ok in rs if not ok)
            out[f"read_ms_{name}"] = [round(pct(lat, 0.5), 2), round(pct(lat, 0.99), 2),
                                      round(max(lat), 2) if lat else float("nan")]
    return out


def api(web, method, path, body=None, timeout=WRITE_TIMEOUT_S):
    try:
        return http_request("127.0.0.1", web, method, path, body, timeout=timeout)[0]
    except (OSError, http.client.HTTPException):  # a timed-out read is a failed read
        return 0


def ours():
    tmp, path, web, members = up(2)
    traffic = None
    try:
        ready(web, members, 2)
        ids = []
        for i in range(10):
            s, _, data = http_request("127.0.0.1", web, "POST", "/api/users",
                                      {"handle": f"reader{i}", "password": "password123"})
            if s != 201:
                raise Failed(f"set-up sign-up: {s} {data[:200]!r}")
            ids.append(json.loads(data)["id"])

        def writer(k, i):
            s = api(web, "POST", "/api/users", {"handle": f"w{k}x{i}", "password": "password123"})
            if s != 201:
                traffic.errors[str(s or "no answer")] += 1
            return s == 201

        def reader(k, i):
            uid = ids[(i + k) % len(ids)]
            return api(web, "GET", f"/api/users/{uid}/photos?limit=10",
                       timeout=READ_TIMEOUT_S) == 200

        traffic = Traffic(writer, reader)
        traffic.start(2, 3)
        return kill_and_measure(tmp, path, members, traffic, 3)
    finally:
        if traffic:
            traffic.stop.set()
        down(tmp, path)


def bare():
    tmp, path, web, members = up(2)
    traffic = None
    try:
        ready(web, members, 2)

        def connect():
            """The first member that takes a read-write session, each tried in turn. (libpq's own
            host list would stop at the first member that answers with an error, such as a
            replica restarted to follow the new primary that is replaying WAL from before the
            role existed: "role does not exist". That would hold this writer up for seconds
            after the promotion, and flatter us.)"""
            why = []
            for name, (port, _) in members.items():
                try:
                    c = psycopg2.connect(f"host=127.0.0.1 port={port} dbname=millions "
                                         "user=millions connect_timeout=2 passfile="
                                         f"{os.path.join(tmp, 'run', 'secrets', 'pgpass')} "
                                         "target_session_attrs=read-write options='-c "
                                         f"statement_timeout={WRITE_TIMEOUT_S * 1000}'")
                    c.autocommit = True
                    return c
                except psycopg2.Error as e:
                    line = (str(e).strip().splitlines() or [repr(e)])[0]
                    why.append(f"{name}: {line.split(' failed: ', 1)[-1][:80]}")
            raise psycopg2.OperationalError("; ".join(why))

        setup = connect()
        setup.cursor().execute("CREATE TABLE IF NOT EXISTS bench_ledger(id BIGSERIAL PRIMARY KEY)")
        setup.close()
        conns = {}

        def writer(k, i):
            try:
                if conns.get(k) is None:
                    conns[k] = connect()
                conns[k].cursor().execute("INSERT INTO bench_ledger DEFAULT VALUES")
                return conns[k].info.port  # which member took it (true: acknowledged)
            except psycopg2.Error as e:
                traffic.errors[" ".join(str(e).split())[:240] or repr(e)] += 1
                if conns.get(k) is not None:
                    conns[k].close()
                conns[k] = None
                time.sleep(BARE_RETRY_S)
                return False

        traffic = Traffic(writer)
        traffic.start(2)
        try:
            return kill_and_measure(tmp, path, members, traffic, 0)
        finally:
            for c in conns.values():
                if c is not None:
                    c.close()
    finally:
        if traffic:
            traffic.stop.set()
        down(tmp, path)


def metric(web, prefix):
    _, _, data = http_request("127.0.0.1", web, "GET", "/metrics")
    return sum(float(line.rsplit(" ", 1)[1]) for line in data.decode().splitlines()
               if line.startswith(prefix))


def check_load(proc, out_path, what):
    """`millions load`'s summary, checked (benchlib.check_load_summary)."""
    tail = (proc.stdout + proc.stderr)[-1500:]
    return check_load_summary(proc.returncode, out_path, tail, what, Failed)


def reads(replicas, seconds, rnd):
    tmp, path, web, members = up(replicas)
    try:
        ready(web, members, replicas)
        out = os.path.join(tmp, "load.json")
        rep0 = metric(web, 'millions_db_queries_total{shard="0",member_role="replica"')
        pri0 = metric(web, 'millions_db_queries_total{shard="0",member_role="primary",kind="read"')
        proc = run(tmp, "load", "--target", f"http://127.0.0.1:{web}", "--users", "16",
                   "--duration", str(seconds), "--mix", "browse", "--json", out,
                   timeout=seconds + 180)
        rps, p99 = check_load(proc, out, f"reads, {replicas} replicas, round {rnd + 1}")
        return {"rps": rps, "p99_ms": p99,
                "replica_reads": metric(web, 'millions_db_queries_total{shard="0",'
                                        'member_role="replica"') - rep0,
                "primary_reads": metric(web, 'millions_db_queries_total{shard="0",'
                                        'member_role="primary",kind="read"') - pri0}
    finally:
        down(tmp, path)


def spread(values, digits=2):
    """'median [min-max] spread%', the spread being (max - min) / median (bench/README.md)."""
    values = [v for v in values if v == v]
    if not values:
        return "-"
    m, lo, hi = statistics.median(values), min(values), max(values)
    sp = f" {(hi - lo) / m * 100:.0f}%" if m else ""
    return f"{m:.{digits}f} [{lo:.{digits}f}-{hi:.{digits}f}]{sp}"


def failover_phase():
    res = {"ours": [], "bare": []}
    for rnd in range(ROUNDS):
        for name in (("ours", "bare") if rnd % 2 == 0 else ("bare", "ours")):
            r = ours() if name == "ours" else bare()
            res[name].append(r)
            print(f"  round {rnd + 1} {name}: {json.dumps(r)}", flush=True)
    print(f"\nkill -9 of the primary, ttl {TTL} s, loop_wait {LOOP_WAIT} s, synchronous mode; "
          f"{ROUNDS} rounds, median [min-max]")
    print("  times in s from the kill (every process of the old primary's member stopped at once "
          "with SIGSTOP, then killed).\n  window: to the first acknowledged write sent after the "
          "kill.\n  From the new primary's log (1 ms): "
          "promotion = PostgreSQL's 'archive recovery complete' (writes possible from about\n"
          "  then), ready = its 'ready to accept connections', leader lock = Patroni's 'promoted "
          "self to leader' (logged at the end\n  of its cycle). Lock polled: the first 200 from "
          f"GET /primary, asked every {POLL_S} s per member; its resolution beside it.")
    cols = [("window", "window_s", 3), ("promotion", "promotion_s", 3),
            ("window after promotion", "window_after_promotion_s", 3),
            ("ready", "ready_s", 3), ("leader lock", "leader_lock_s", 3),
            ("lock polled", "lock_polled_s", 3), ("poll resolution", "poll_resolution_s", 3),
            ("old member killed (gone)", "old_member_gone_s", 3),
            ("failed write attempts", "failed_write_attempts", 0),
            ("writes held through, ok", "held_writes_ok", 0),
            ("writes held through, failed", "held_writes_failed", 0)]
    for label, key, digits in cols:
        print(f"  {label:<28} ours {spread([r[key] for r in res['ours']], digits):<28} "
              f"bare {spread([r[key] for r in res['bare']], digits)}")
    for when in ("before", "after"):
        fr = spread([r[f"failed_reads_{when}"] for r in res["ours"]], 0)
        n = spread([r[f"reads_{when}"] for r in res["ours"]], 0)
        lat = [spread([r[f"read_ms_{when}"][i] for r in res["ours"]], 1) for i in range(3)]
        print(f"  ours reads {when:<6} the kill: {n} reads, {fr} failed (timeout "
              f"{READ_TIMEOUT_S:.0f} s); ms p50 {lat[0]}, p99 {lat[1]}, max {lat[2]}")
    for key, what in (("window_s", "window"), ("window_after_promotion_s",
                                                  "window after promotion")):
        diffs = [a[key] - b[key] for a, b in zip(res["ours"], res["bare"])]
        print(f"  {what} ours - bare, per round: {' '.join(f'{d:+.3f}' for d in diffs)} s, "
              f"median {statistics.median(diffs):+.3f} s")
    print("  (goal: window within 1 s of bare. The window holds Patroni's own promotion, which "
          f"varies by up to loop_wait ({LOOP_WAIT} s)\n  with where in its cycle the kill falls; "
          "the window after promotion is the part the client's data layer adds.)\n", flush=True)


def reads_phase():
    counts = [1, 2, 3]
    res = {n: [] for n in counts}
    for rnd in range(ROUNDS):
        for n in counts[rnd % 3:] + counts[:rnd % 3]:
            r = reads(n, SECONDS, rnd)
            res[n].append(r)
            print(f"  round {rnd + 1} {n} replica(s): {json.dumps(r)}", flush=True)
    print(f"\nread-heavy load (--mix browse, 16 users, {SECONDS} s) by replica count, "
          f"{ROUNDS} rotated rounds, median [min-max]")
    for n in counts:
        print(f"  {n} replica(s): successes/s {spread([r['rps'] for r in res[n]], 0)}, "
              f"p99 ms {spread([r['p99_ms'] for r in res[n]])}, replica reads "
              f"{spread([r['replica_reads'] for r in res[n]], 0)}, primary reads "
              f"{spread([r['primary_reads'] for r in res[n]], 0)}", flush=True)


if __name__ == "__main__":
    bindir = copy_binary()
    try:
        if "failover" in PHASES:
            failover_phase()
        if "reads" in PHASES:
            reads_phase()
    except Failed as e:
        print(f"\nFAILED: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    finally:
        shutil.rmtree(bindir, ignore_errors=True)
