"""bench/queue: the NATS JetStream job queue (web nodes publish, `millions serve worker` processes
run the jobs) beside the design it replaces, the PostgreSQL queue (a topology without
[[nats.node]]: the web node writes the job to a table, and worker threads inside a web node
claim it), in the same run, on the same machine.

Each run starts from a fresh PostgreSQL (and a fresh nats-server for NATS): one web node `web1`
takes every POST of parts 1 and 3. Worker threads, the same count on both sides, each part
saying how many: NATS, that many `millions serve worker` processes of `[workers] threads = 1`;
PostgreSQL, a second web node `web2` with `[workers] threads` = that many (web1 has 0 there).

1. Accepted jobs/s at the API: ACCEPT_CLIENTS processes, each on one keep-alive connection,
   POST /api/photos/{id}/edits until ACCEPT_JOBS are accepted in all (or ACCEPT_SECONDS pass),
   on small photos (SMALL x SMALL pixels, one per client), ops rotating over the four below.
   Every answer must be 202. No worker runs a job meanwhile: the workers were started and found
   ready before, then stopped with SIGSTOP. CPU per accepted job: web1's, and beside it the
   queue's back end (PostgreSQL's postmaster and backends; for NATS also nats-server).
   Then the workers are resumed (SIGCONT) and the time until all are done gives small jobs/s:
   with tiny images, what the queue itself costs per job.
2. End-to-end latency by op on a SIZE x SIZE PNG (1 MP by default): rotate 90, grayscale, blur
   sigma 2, resize to half, LAT_JOBS each, interleaved (after one of each not counted), one job
   at a time on an otherwise idle system, LAT_WORKERS worker threads. Latency is the job row's
   finished_ms - created_ms (server clocks, 1 ms): from acceptance (the row, then the publish)
   to `done`. NATS: posted to
   web1, run by the worker processes; PostgreSQL: posted to web2, whose own threads are woken at
   once (jobs of another web node would wait up to its 200 ms poll).
3. Jobs/s drained with each worker count in DRAIN_WORKERS (1 2 4; rotated each round): the
   workers are started and found ready, stopped (SIGSTOP), DRAIN_JOBS jobs on the big image are
   accepted as in part 1, the workers are resumed all at once (SIGCONT), and the drain time runs
   from there to the last job's finished_ms (no process start-up in it, nor in the CPU).
   Printed beside it: CPU per job of the worker processes (NATS) or of web2 (PostgreSQL), of
   the queue's back end, the cores the workers kept busy, and the whole machine's busy share
   (/proc/stat, which counts whatever else runs on it): what limits the drain.

ROUNDS rounds; each runs both designs, the order rotated each round; per design the median over
rounds, [min-max] and the spread ((max-min)/median), and ratios NATS/PostgreSQL as the median of
the per-round ratios with their range. The run fails (exit 1, `bench: FAIL: ...`) on any answer
to a POST that is not 202, a job that ends `failed` or is not `done` within DRAIN_TIMEOUT, a job
row missing or extra, or a process under test that exits (or does not exit 0 when stopped).
BENCH_SELFTEST=1 posts the edits of part 1 to a photo that does not exist (404): the run must
exit 1; if it got 202s it exits 3, the check not exercised.
Loopback only; every wait bounded. Environment: ROUNDS (3), ACCEPT_JOBS (600), ACCEPT_CLIENTS
(4), ACCEPT_SECONDS (60), SMALL (100), SIZE (1000), LAT_JOBS (10), LAT_WORKERS (2), DRAIN_JOBS
(40), DRAIN_WORKERS ("1 2 4"), DRAIN_TIMEOUT (120), DESIGNS ("nats pg"), BENCH_KEEP=1."""
import os
import sys

# This file is named queue.py: its directory must not shadow the standard library's `queue`
# (which multiprocessing imports).
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import http.client  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import queue as _stdlib_queue  # noqa: E402,F401  (cached before the bench dir joins the path)
import time  # noqa: E402

sys.path.append(_here)  # after the standard library: for benchlib
from benchlib import cpu_delta, cpu_of, fmt, postgres_pids, ratio, run_main  # noqa: E402

sys.path.insert(0, os.path.join(_here, "..", "tests", "integration"))
from harness import (NatsServer, PgServer, WebNode, WorkerNode, bearer, binary,  # noqa: E402
                     free_port, node, png, web_topology)

ROUNDS = int(os.environ.get("ROUNDS", "3"))
ACCEPT_JOBS = int(os.environ.get("ACCEPT_JOBS", "600"))
ACCEPT_CLIENTS = int(os.environ.get("ACCEPT_CLIENTS", "4"))
ACCEPT_SECONDS = float(os.environ.get("ACCEPT_SECONDS", "60"))
SMALL = int(os.environ.get("SMALL", "100"))
SIZE = int(os.environ.get("SIZE", "1000"))
LAT_JOBS = int(os.environ.get("LAT_JOBS", "10"))
LAT_WORKERS = int(os.environ.get("LAT_WORKERS", "2"))
DRAIN_JOBS = int(os.environ.get("DRAIN_JOBS", "40"))
DRAIN_WORKERS = [int(x) for x in os.environ.get("DRAIN_WORKERS", "1 2 4").split()]
DRAIN_TIMEOUT = float(os.environ.get("DRAIN_TIMEOUT", "120"))
DESIGNS = os.environ.get("DESIGNS", "nats pg").split()
SELFTEST = os.environ.get("BENCH_SELFTEST") == "1"
KEEP = os.environ.get("BENCH_KEEP") == "1"
CORES = os.cpu_count() or 1
NAMES = {"nats": "NATS JetStream", "pg": "PostgreSQL queue"}
OP_NAMES = ["rotate90", "grayscale", "blur2", "resize_half"]
WEB = {"threads": 2, "blocking_threads": 4}


def ops_for(i, side):
    """The i-th job's ops, rotating over the four."""
    return [[{"op": "rotate", "degrees": 90}], [{"op": "grayscale"}],
            [{"op": "blur", "sigma": 2}],
            [{"op": "resize", "width": side // 2, "height": side // 2}]][i % 4]


class Failed(Exception):
    pass


tmp = tempfile.mkdtemp(prefix="millions-queuebench-")
os.chmod(tmp, 0o755)
# A copy of the binary under test, so that a rebuild during the run cannot change it.
_bin = os.path.join(tmp, "millions")
shutil.copy2(os.path.realpath(binary()), _bin)
# The libvips module the binary loads from beside itself (src/media/media.cc).
_module = os.path.join(os.path.dirname(os.path.realpath(binary())), "millions-media-vips.so")
if os.path.exists(_module):
    shutil.copy2(_module, os.path.join(os.path.dirname(_bin), "millions-media-vips.so"))
os.environ["MILLIONS_BIN"] = _bin


# --- CPU accounting -----------------------------------------------------------------------------

def machine_ticks():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


# --- statistics ---------------------------------------------------------------------------------

def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * len(s) + 0.5)) - 1))]


# --- a psql session kept open (one backend; its CPU is left out of PostgreSQL's) ---------------

class Psql:
    def __init__(self, port):
        self.proc = subprocess.Popen(
            ["/usr/lib/postgresql/15/bin/psql", "-qAtX",
             f"host=127.0.0.1 port={port} user=millions dbname=millions"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            bufsize=1)
        self.backend = int(self.query("SELECT pg_backend_pid()")[0][0])

    def query(self, sql):
        self.proc.stdin.write(sql.rstrip().rstrip(";") + ";\n\\echo __END__\n")
        self.proc.stdin.flush()
        rows = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise Failed(f"psql exited: {rows}")
            line = line.rstrip("\n")
            if line == "__END__":
                break
            if line.startswith(("ERROR:", "FATAL:")):
                raise Failed(f"psql: {line} in {sql[:200]}")
            rows.append(line.split("|"))
        return rows

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- HTTP clients -------------------------------------------------------------------------------

class Client:
    """One keep-alive connection."""

    def __init__(self, port, token):
        self.port, self.hdrs = port, {**bearer(token), "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(self, method, path, body=None):
        self.conn.request(method, path, body=body, headers=self.hdrs)
        r = self.conn.getresponse()
        data = r.read()
        if r.getheader("Connection", "").lower() == "close":
            self.conn.close()
        return r.status, data

    def close(self):
        self.conn.close()


def post_jobs(args):
    """One accepting client (a process of its own): posts its share until `quota` are accepted
    or `deadline`; stops at the first answer that is not 202. Returns what it saw."""
    port, token, photo, first, step, quota, deadline, side = args
    out = {"ids": [], "bad": None, "lat": [], "t0": time.time(), "t1": None}
    c = Client(port, token)
    t_cpu = os.times()
    try:
        i = first
        while len(out["ids"]) < quota and time.time() < deadline:
            body = json.dumps({"ops": ops_for(i, side)}).encode()
            t = time.perf_counter()
            try:
                status, data = c.request("POST", f"/api/photos/{photo}/edits", body)
            except (OSError, http.client.HTTPException) as e:
                out["bad"] = f"connection error: {e!r}"
                break
            out["lat"].append(time.perf_counter() - t)
            if status != 202:
                out["bad"] = f"HTTP {status}: {data[:200]!r}"
                break
            out["ids"].append(json.loads(data)["id"])
            i += step
    finally:
        c.close()
        out["t1"] = time.time()
        e = os.times()
        out["cpu"] = (e.user - t_cpu.user) + (e.system - t_cpu.system)
    return out


def accept(port, token, photos, count, side, what):
    """ACCEPT_CLIENTS processes post `count` jobs in all. Returns (ids, seconds, POST latencies,
    client CPU seconds); raises Failed on any answer that is not 202."""
    n = max(1, min(ACCEPT_CLIENTS, count))
    deadline = time.time() + ACCEPT_SECONDS
    shares = [count // n + (1 if i < count % n else 0) for i in range(n)]
    args = [(port, token, photos[i % len(photos)], i, n, shares[i], deadline, side)
            for i in range(n)]
    with multiprocessing.get_context("fork").Pool(n) as pool:
        res = pool.map(post_jobs, args)
    bad = [r["bad"] for r in res if r["bad"]]
    if bad:
        raise Failed(f"{what}: an edit was not accepted (202): {bad[0]}"
                     f" ({len(bad)} of {n} clients stopped on one)")
    ids = [i for r in res for i in r["ids"]]
    if not ids:
        raise Failed(f"{what}: no job accepted in {ACCEPT_SECONDS} s")
    secs = max(r["t1"] for r in res) - min(r["t0"] for r in res)
    return ids, secs, [x for r in res for x in r["lat"]], sum(r["cpu"] for r in res)


# --- one design, one round ----------------------------------------------------------------------

class Run:
    """The processes of one design in one round, all stopped by close()."""

    def __init__(self, design, rnd):
        self.design, self.rnd = design, rnd
        self.dir = tempfile.mkdtemp(prefix=f"{design}-{rnd}-", dir=tmp)
        self.pg = self.nats = self.psql = None
        self.web1 = None
        self.workers = []  # the processes running jobs now (worker nodes, or web2)
        self.done_nodes = []
        self.expected = 0  # jobs accepted so far in this run

    def what(self, part):
        return f"{NAMES[self.design]}, round {self.rnd + 1}, {part}"

    def start(self, small_png, big_png):
        self.pg = PgServer().start()
        ports = {"web1": free_port(), "web2": free_port()}
        if self.design == "nats":
            self.nats = NatsServer().start()
            wports = [free_port() for _ in range(max(DRAIN_WORKERS + [LAT_WORKERS]))]
            self.topo = web_topology(
                os.path.join(self.dir, "topology.toml"), self.pg.port, [ports["web1"]], web=WEB,
                name="queuebench",
                extra={"cache": {"ttl_ms": 1000},
                       "nats": [node("nats1", self.nats.port, admin=self.nats.monitor)],
                       "worker": [node(f"worker{i + 1}", p) for i, p in enumerate(wports)]})
            self.worker_ports = wports
        else:
            self.topos = {}
            for t in {0, LAT_WORKERS, *DRAIN_WORKERS}:
                path = web_topology(os.path.join(self.dir, f"topology-{t}.toml"), self.pg.port,
                                    [ports["web1"], ports["web2"]], web=WEB, name="queuebench",
                                    extra={"queue": {"lease_ms": 30000},
                                           "cache": {"ttl_ms": 1000}})
                text = open(path).read().replace("[workers]\nthreads = 1\n",
                                                 f"[workers]\nthreads = {t}\n")
                if f"[workers]\nthreads = {t}\n" not in text:
                    raise Failed("could not set [workers] threads in the topology")
                open(path, "w").write(text)
                self.topos[t] = path
            self.topo = self.topos[0]
            self.web2_port = ports["web2"]
        self.web1 = WebNode(self.topo, "web1", ports["web1"]).start()
        self.psql = Psql(self.pg.port)
        s, _, _ = self.web1.json("POST", "/api/users", {"handle": "bencher",
                                                        "password": "password123"})
        s2, _, sess = self.web1.json("POST", "/api/sessions", {"handle": "bencher",
                                                               "password": "password123"})
        if s != 201 or s2 != 201:
            raise Failed(f"{self.what('set-up')}: sign-up {s}, log-in {s2}")
        self.token = sess["token"]
        self.small, self.big = [], []
        for img, out in ((small_png, self.small), (big_png, self.big)):
            for _ in range(ACCEPT_CLIENTS):
                s, _, photo = self.web1.json("POST", "/api/photos?caption=bench", img,
                                             {**bearer(self.token), "Content-Type": "image/png"})
                if s != 201:
                    raise Failed(f"{self.what('set-up')}: upload answered {s}: {photo}")
                out.append(photo["id"])

    # The workers: started, found ready, paused; resumed all at once; stopped.
    def start_workers(self, threads):
        if self.design == "nats":
            self.workers = [WorkerNode(self.topo, f"worker{i + 1}", self.worker_ports[i])
                            for i in range(threads)]
        else:
            self.workers = [WebNode(self.topos[threads], "web2", self.web2_port)]
        for w in self.workers:
            w.start()
        for w in self.workers:
            w.proc.send_signal(signal.SIGSTOP)

    def resume_workers(self):
        for w in self.workers:
            w.proc.send_signal(signal.SIGCONT)

    def stop_workers(self):
        for w in self.workers:
            w.proc.send_signal(signal.SIGCONT)
            rc = w.stop()
            self.done_nodes.append(w)
            if rc != 0:
                raise Failed(f"{self.what('workers')}: {w.name} exited {rc} when stopped:\n"
                             + open(w.log_path, errors="replace").read()[-1500:])
        self.workers = []

    def check_alive(self, part):
        for n in [self.web1] + self.workers:
            if n.proc.poll() is not None:
                raise Failed(f"{self.what(part)}: {n.name} exited {n.proc.returncode}:\n"
                             + open(n.log_path, errors="replace").read()[-1500:])
        if self.nats and self.nats.proc.poll() is not None:
            raise Failed(f"{self.what(part)}: nats-server exited {self.nats.proc.returncode}")

    def pids(self):
        """(web1, workers, back end): PostgreSQL without our psql session, and nats-server."""
        back = postgres_pids(self.pg, skip={self.psql.backend})
        if self.nats:
            back.append(self.nats.proc.pid)
        return [self.web1.proc.pid], [w.proc.pid for w in self.workers], back

    def snapshot(self):
        web, workers, back = self.pids()
        return cpu_of(web), cpu_of(workers), cpu_of(back), machine_ticks(), time.time()

    def accept_batch(self, photos, count, side, part):
        """Jobs accepted while the workers are paused; CPU per accepted job."""
        if SELFTEST:
            photos = ["1"]  # no such photo: 404
        c0 = self.snapshot()
        ids, secs, lat, client_cpu = accept(self.web1.port, self.token, photos, count, side,
                                            self.what(part))
        c1 = self.snapshot()
        self.check_alive(part)
        self.expected += len(ids)
        n = len(ids)
        return ids, {"jobs": n, "per_s": n / secs,
                     "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3,
                     "web_us": cpu_delta(c0[0], c1[0]) * 1e6 / n,
                     "back_us": cpu_delta(c0[2], c1[2]) * 1e6 / n,
                     "client_us": client_cpu * 1e6 / n}

    def counts(self):
        (done, failed, total, last), = self.psql.query(
            "SELECT count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status ="
            " 'failed'), count(*), coalesce(max(finished_ms), 0) FROM jobs")
        return int(done), int(failed), int(total), int(last)

    def fail_if_failed(self, part, failed):
        if failed:
            rows = self.psql.query("SELECT id, error FROM jobs WHERE status = 'failed' LIMIT 3")
            raise Failed(f"{self.what(part)}: {failed} job(s) ended failed: {rows}")

    def drain(self, ids, part):
        """Resumes the paused workers; waits until every job accepted so far is done. Returns
        jobs/s from the resume to the last finished_ms, and CPU per job."""
        c0 = self.snapshot()
        t0_ms = int(time.time() * 1000)
        self.resume_workers()
        deadline = time.time() + DRAIN_TIMEOUT
        while True:
            done, failed, total, last = self.counts()
            self.fail_if_failed(part, failed)
            if done == self.expected:
                break
            self.check_alive(part)
            if time.time() > deadline:
                raise Failed(f"{self.what(part)}: {self.expected - done} of {len(ids)} jobs not"
                             f" done within {DRAIN_TIMEOUT:.0f} s")
            time.sleep(0.05)
        c1 = self.snapshot()
        if total != self.expected:
            raise Failed(f"{self.what(part)}: {total} job rows, {self.expected} accepted")
        (n,), = self.psql.query(f"SELECT count(*) FROM jobs WHERE status = 'done' AND id IN "
                                f"({','.join(ids)})")
        if int(n) != len(ids):
            raise Failed(f"{self.what(part)}: {n} of the {len(ids)} accepted jobs done")
        secs = max(last - t0_ms, 1) / 1000
        k = len(ids)
        busy = (c1[3][0] - c0[3][0]) / max(c1[3][1] - c0[3][1], 1) * CORES
        workers_cpu = cpu_delta(c0[1], c1[1])
        ours = workers_cpu + cpu_delta(c0[0], c1[0]) + cpu_delta(c0[2], c1[2])
        return {"jobs": k, "per_s": k / secs, "secs": secs,
                "worker_us": workers_cpu * 1e6 / k,
                "back_us": cpu_delta(c0[2], c1[2]) * 1e6 / k,
                "web_us": cpu_delta(c0[0], c1[0]) * 1e6 / k,
                "worker_cores": workers_cpu / (c1[4] - c0[4]),
                "ours_cores": ours / (c1[4] - c0[4]), "machine_cores": busy}

    def latency(self):
        """One job at a time, LAT_JOBS per op, interleaved, after one of each not counted (a
        warm-up); {op: [ms]} from the rows."""
        port = self.web1.port if self.design == "nats" else self.web2_port
        c = Client(port, self.token)
        ids = []
        try:
            for i in range(4 + LAT_JOBS * 4):
                body = json.dumps({"ops": ops_for(i, SIZE)}).encode()
                status, data = c.request("POST", f"/api/photos/{self.big[0]}/edits", body)
                if status != 202:
                    raise Failed(f"{self.what('latency')}: an edit answered {status}: "
                                 f"{data[:200]!r}")
                job = json.loads(data)["id"]
                if i >= 4:
                    ids.append((OP_NAMES[i % 4], job))
                self.expected += 1
                deadline = time.time() + 30
                while True:
                    status, data = c.request("GET", f"/api/jobs/{job}")
                    st = json.loads(data).get("status") if status == 200 else None
                    if st == "done":
                        break
                    if st == "failed" or status != 200:
                        raise Failed(f"{self.what('latency')}: job {job}: {status} {data[:300]!r}")
                    self.check_alive("latency")
                    if time.time() > deadline:
                        raise Failed(f"{self.what('latency')}: job {job} not done in 30 s")
                    time.sleep(0.005)
        finally:
            c.close()
        rows = dict((r[0], int(r[1])) for r in self.psql.query(
            "SELECT id, finished_ms - created_ms FROM jobs WHERE id IN "
            f"({','.join(j for _, j in ids)})"))
        out = {op: [] for op in OP_NAMES}
        for op, j in ids:
            out[op].append(rows[j])
        return out

    def close(self):
        for n in self.workers + [self.web1]:
            if n and n.proc and n.proc.poll() is None:
                n.proc.send_signal(signal.SIGCONT)
                n.stop()
        if self.psql:
            self.psql.close()
        if self.nats:
            self.nats.kill()
        if self.pg:
            self.pg.stop()
        if not KEEP:
            for d in [self.pg and self.pg.dir, self.nats and self.nats.dir, self.dir] + \
                    [n.tmp for n in self.workers + self.done_nodes + [self.web1] if n]:
                if d:
                    shutil.rmtree(d, ignore_errors=True)


def run_design(design, rnd, small_png, big_png, drain_order):
    r = Run(design, rnd)
    try:
        r.start(small_png, big_png)
        out = {}
        # 1. Accepted jobs/s (workers paused), then the small jobs drained.
        r.start_workers(LAT_WORKERS)
        ids, out["accept"] = r.accept_batch(r.small, ACCEPT_JOBS, SMALL, "accept")
        if SELFTEST:
            raise SystemExit(3)
        out["small"] = r.drain(ids, "small jobs drained")
        # 2. Latency, one job at a time, the same workers.
        out["lat"] = r.latency()
        r.stop_workers()
        # 3. Drain of the big jobs by worker count.
        out["drain"] = {}
        for w in drain_order:
            r.start_workers(w)
            ids, acc = r.accept_batch(r.big, DRAIN_JOBS, SIZE, f"accept for {w} workers")
            d = r.drain(ids, f"drain with {w} workers")
            d["accept"] = acc
            out["drain"][w] = d
            r.stop_workers()
        r.check_alive("end")
        return out
    finally:
        r.close()


def show_round(design, rnd, o):
    a, s = o["accept"], o["small"]
    print(f"  round {rnd + 1} {NAMES[design]:<17} accept {a['per_s']:7.0f}/s "
          f"(POST p50 {a['p50_ms']:.1f} p99 {a['p99_ms']:.1f} ms; web1 {a['web_us']:.0f} us/job, "
          f"back end {a['back_us']:.0f}); small drain {s['per_s']:6.1f}/s "
          f"(workers {s['worker_us']:.0f} us/job)", flush=True)
    print("      latency p50 ms: " + ", ".join(
        f"{op} {statistics.median(v):.0f}" for op, v in o["lat"].items()) + "; drain: " + ", ".join(
        f"{w}w {d['per_s']:.1f}/s ({d['worker_us'] / 1e3:.0f} ms CPU/job)"
        for w, d in sorted(o["drain"].items())), flush=True)


def report(res):
    ds = [d for d in DESIGNS if res[d]]
    print(f"\nbench/queue: {ROUNDS} round(s), designs {', '.join(NAMES[d] for d in ds)} in "
          f"rotated order, each run on a fresh PostgreSQL (and nats-server); {CORES} cores, "
          "shared by every process (clients, web node, workers, PostgreSQL, nats-server). "
          "median [min-max] spread ((max-min)/median) over rounds.")
    print(f"Equal worker threads: NATS = N `serve worker` processes of [workers] threads = 1; "
          f"PostgreSQL = one web node with [workers] threads = N. Web node [web] threads = "
          f"{WEB['threads']}, blocking_threads = {WEB['blocking_threads']} on both.")
    print(f"\n(a) accepted jobs/s: {ACCEPT_JOBS} edits of {SMALL}x{SMALL} photos, "
          f"{ACCEPT_CLIENTS} client processes on keep-alive connections, every answer 202, "
          f"workers paused; CPU us per accepted job of the web node and of the back end "
          f"(PostgreSQL; + nats-server for NATS), and of the Python clients:")
    for d in ds:
        a = [o["accept"] for o in res[d]]
        print(f"  {NAMES[d]:<17} {fmt([x['per_s'] for x in a]):<28} POST p50 "
              f"{fmt([x['p50_ms'] for x in a], 2)} ms, p99 {fmt([x['p99_ms'] for x in a], 2)} ms; "
              f"web {fmt([x['web_us'] for x in a])} us, back end {fmt([x['back_us'] for x in a])}"
              f" us, clients {statistics.median([x['client_us'] for x in a]):.0f} us")
    print(f"\n    small jobs drained/s ({LAT_WORKERS} worker threads, the jobs above: the "
          "queue's own cost per job):")
    for d in ds:
        s = [o["small"] for o in res[d]]
        print(f"  {NAMES[d]:<17} {fmt([x['per_s'] for x in s], 1):<28} workers "
              f"{fmt([x['worker_us'] for x in s])} us/job, back end "
              f"{fmt([x['back_us'] for x in s])} us/job")
    print(f"\n(b) end-to-end latency ms (row created -> done, server clocks), {SIZE}x{SIZE} PNG, "
          f"one job at a time, {LAT_JOBS} per op per round, {LAT_WORKERS} worker threads; "
          f"per round p50 and p99 (of {LAT_JOBS} samples: about the max), then over rounds:")
    for op in OP_NAMES:
        for d in ds:
            p50 = [statistics.median(o["lat"][op]) for o in res[d]]
            p99 = [pct(o["lat"][op], 99) for o in res[d]]
            print(f"  {op:<12} {NAMES[d]:<17} p50 {fmt(p50):<22} p99 {fmt(p99)}")
    print(f"\n(c) jobs/s drained, {DRAIN_JOBS} jobs on the {SIZE}x{SIZE} PNG (ops rotating), "
          "accepted while the workers were paused, timed from their resume to the last "
          "finished_ms; CPU us per job (workers; back end; web1); cores kept busy by the "
          "workers, by all of ours (workers, web1, back end) and by everything on the machine "
          f"(of {CORES}, /proc/stat):")
    for w in DRAIN_WORKERS:
        for d in ds:
            x = [o["drain"][w] for o in res[d]]
            wc = statistics.median([y["worker_cores"] for y in x])
            mc = statistics.median([y["machine_cores"] for y in x])
            oc = statistics.median([y["ours_cores"] for y in x])
            if mc >= 0.9 * CORES:
                limit = "the machine's cores" + (
                    f" ({mc - oc:.2f} of them taken by other processes)"
                    if mc - oc >= 0.1 * CORES else "")
            elif wc >= 0.85 * min(w, CORES):
                limit = f"the {w} worker thread(s), each busy"
            else:
                limit = "neither cores nor workers full: waits (queue, database, I/O)"
            print(f"  {w} worker(s) {NAMES[d]:<17} {fmt([y['per_s'] for y in x], 1):<24} "
                  f"workers {fmt([y['worker_us'] for y in x])} us/job, back end "
                  f"{statistics.median([y['back_us'] for y in x]):.0f}, web1 "
                  f"{statistics.median([y['web_us'] for y in x]):.0f}; cores: workers {wc:.2f}, "
                  f"all of ours {oc:.2f}, machine {mc:.2f}: limited by {limit}")
    if "nats" in ds and "pg" in ds:
        def r(get):
            return ratio([get(o) for o in res["nats"]], [get(o) for o in res["pg"]])
        print("\nNATS / PostgreSQL (median of the per-round ratios [min-max]; a range covering "
              "1.00 is 'about equal'):")
        print(f"  accepted jobs/s {r(lambda o: o['accept']['per_s'])}, web CPU per accepted job "
              f"{r(lambda o: o['accept']['web_us'])}, back-end CPU per accepted job "
              f"{r(lambda o: o['accept']['back_us'])}")
        print(f"  small jobs drained/s {r(lambda o: o['small']['per_s'])}, worker CPU per small "
              f"job {r(lambda o: o['small']['worker_us'])}")
        for op in OP_NAMES:
            print(f"  latency {op:<12} p50 {r(lambda o: statistics.median(o['lat'][op]))}, p99 "
                  f"{r(lambda o: pct(o['lat'][op], 99))}")
        for w in DRAIN_WORKERS:
            print(f"  drain jobs/s, {w} worker(s) {r(lambda o: o['drain'][w]['per_s'])}, worker "
                  f"CPU per job {r(lambda o: o['drain'][w]['worker_us'])}")


def main():
    print(f"bench/queue: making the PNGs ({SIZE}x{SIZE} and {SMALL}x{SMALL})", flush=True)
    big_png, small_png = png(SIZE, SIZE), png(SMALL, SMALL, seed=7)
    res = {d: [] for d in DESIGNS}
    for rnd in range(ROUNDS):
        order = DESIGNS[rnd % len(DESIGNS):] + DESIGNS[:rnd % len(DESIGNS)]
        drain_order = DRAIN_WORKERS[rnd % len(DRAIN_WORKERS):] + \
            DRAIN_WORKERS[:rnd % len(DRAIN_WORKERS)]
        for d in order:
            o = run_design(d, rnd, small_png, big_png, drain_order)
            res[d].append(o)
            show_round(d, rnd, o)
    report(res)


run_main(main, Failed, SELFTEST, "the edits of a missing photo were accepted",
         lambda: None if KEEP else shutil.rmtree(tmp, ignore_errors=True))
