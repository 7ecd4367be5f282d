"""bench/cache: what the cache tier buys, in the same run on this machine.

1. A read-heavy Zipf load (`millions load --mix browse`) on two web nodes over one PostgreSQL,
   four ways: no cache at all (L1 of size 0, no cache nodes), L1 only, L2 only (two Redis cache
   nodes, L1 of size 0), and L1 with L2. Each run starts from a fresh PostgreSQL and fresh web
   nodes, and the Redis nodes are flushed (FLUSHALL, then checked empty) before it, so no mode
   inherits another's cache. ROUNDS rounds, the order of the modes rotated each round; per mode
   the median and the spread (min-max) of successes/s, p99 and database reads/s (the web nodes'
   millions_db_queries_total{kind="read"}). Any non-2xx answer, connection error, error count
   or non-zero exit from `millions load` fails the run.
2. L2 GET throughput on one Redis node, ours against redis-benchmark, reading the same keys and
   getting the same bytes. First we SET key:000000000000 .. key:<KEYS-1> (the names
   redis-benchmark's __rand_int__ expands to: 12 digits, zero-padded) to the same 216-byte value
   a web node stores (a 16-byte header and a rendered user of 200 bytes), and check them. Then:
     ours: bench/l2_bench, 50 threads each waiting for its answer, all sharing RedisL2's one
       pipelined connection: at most 50 GETs in flight on one connection, written together
       whenever they queue up behind a write in flight.
     redis-benchmark -c 1 -P 50 GET key:__rand_int__: one connection, 50 GETs in flight, the
       mode that matches ours and the one the ratio divides by. It is the upper bound of that
       mode: its batches are always full, ours only as full as the threads keep them.
     redis-benchmark -c 50 GET key:__rand_int__: 50 connections, one GET in flight on each,
       unpipelined (the figure the notes used to divide by), printed beside it.
   Every GET must be a hit: l2_bench exits 1 on any miss, error or value of another size; for
   both tools the server's keyspace_misses and total_error_replies must not move and its
   keyspace_hits must grow by at least the GETs counted. redis-benchmark runs one thread (its
   default); l2_bench runs 50 caller threads and one io thread. Both get a warm-up that is not
   measured, and redis-benchmark's request count is sized to last as long as ours. Printed: the
   median and spread of GETs/s over ROUNDS rotated rounds, and CPU microseconds per GET of the
   client process and of redis-server.
Loopback only; every phase bounded in time. Exits 1 on any failed check.

Environment: ROUNDS (3), DURATION (12, seconds per load run), USERS (32), L2_SECONDS (5),
L2_THREADS (50), KEYS (1000), PHASES ("modes,l2")."""
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import shutil
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from benchlib import check_load_summary, cpu_delta, cpu_of, cpu_seconds, postgres_pids  # noqa: E402,E501
from harness import (PgServer, WebNode, binary, free_port, http_request, node,  # noqa: E402
                     web_topology)

ROUNDS = int(os.environ.get("ROUNDS", "3"))
SECONDS = int(os.environ.get("DURATION", "12"))
USERS = int(os.environ.get("USERS", "32"))
L2_SECONDS = int(os.environ.get("L2_SECONDS", "5"))
L2_THREADS = int(os.environ.get("L2_THREADS", "50"))
KEYS = int(os.environ.get("KEYS", "1000"))
PHASES = set(os.environ.get("PHASES", "modes,l2").split(","))
MODES = ["off", "l1", "l2", "l1+l2"]
# A value as Tiered stores it: "<expiry ms>:<version>:" and a rendered user of about 200 bytes.
VALUE = b"9999999999999:1:" + b"x" * 200
assert len(VALUE) == 216

# build/<preset>/src/cmd/millions -> build/<preset>
build_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(binary()))))
L2_BENCH = os.environ.get("L2_BENCH", os.path.join(build_dir, "bench", "l2_bench"))
tmp = tempfile.mkdtemp(prefix="millions-cachebench-")
os.chmod(tmp, 0o755)
# Copies of the binaries under test, so that a rebuild during the run cannot change them.
for _src, _env in ((binary(), "MILLIONS_BIN"), (L2_BENCH, None)):
    if os.path.exists(_src):
        _dst = os.path.join(tmp, os.path.basename(_src))
        shutil.copy2(os.path.realpath(_src), _dst)
        if _env:
            os.environ[_env] = _dst
        else:
            L2_BENCH = _dst


class Failed(Exception):
    pass


# --- a few Redis commands over RESP, standard library only -----------------------------------

class Redis:
    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Failed("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Failed("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise Failed("redis error: " + rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise Failed(f"bad RESP reply {line[:40]!r}")

    def pipeline(self, cmds):
        out = b""
        for args in cmds:
            args = [a if isinstance(a, bytes) else str(a).encode() for a in args]
            out += b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
        self.sock.sendall(out)
        return [self._reply() for _ in cmds]

    def call(self, *args):
        return self.pipeline([args])[0]

    def info(self):
        text = self.call("INFO", "stats").decode()
        return {k: int(v) for k, v in re.findall(r"^(\w+):(\d+)\r?$", text, re.M)}


def redis_server(port):
    return subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save",
                             "", "--appendonly", "no", "--maxmemory", "64mb",
                             "--maxmemory-policy", "allkeys-lru", "--dir", tmp],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_redis(port, proc, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise Failed(f"redis-server on {port} exited with {proc.returncode}")
        try:
            r = Redis(port, timeout=1)
            try:
                if r.call("PING") == "PONG":
                    return
            finally:
                r.close()
        except (OSError, Failed):
            pass
        time.sleep(0.02)
    raise Failed(f"redis-server on {port} not answering after {timeout} s")


def flush_all(ports):
    """FLUSHALL every node, then check that each holds no key."""
    for p in ports:
        r = Redis(p)
        try:
            r.call("FLUSHALL")
            n = r.call("DBSIZE")
        finally:
            r.close()
        if n != 0:
            raise Failed(f"redis on {p} holds {n} keys after FLUSHALL")


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def spread(values):
    """(median, min, max, spread): the spread is (max - min) / median in percent, as
    bench/README.md's rule states it."""
    m = statistics.median(values)
    return m, min(values), max(values), (max(values) - min(values)) / m * 100 if m else 0.0


def fmt(values, digits=0):
    m, lo, hi, sp = spread(values)
    return f"{m:.{digits}f} [{lo:.{digits}f}-{hi:.{digits}f}] {sp:.0f}%"


# --- part 1: the four cache modes under the same load ----------------------------------------

def topology(path, ports, pg_port, cache):
    extra = {}
    if cache in ("off", "l2"):
        extra["cache"] = {"capacity_bytes": 0}
    if cache in ("l2", "l1+l2"):
        extra["redis"] = [node(f"redis{i + 1}", p) for i, p in enumerate(redis_ports)]
    web_topology(path, pg_port, ports, web={"threads": 1, "blocking_threads": 8}, extra=extra,
                 name="cachebench")

def metrics(nodes):
    """Summed over the web nodes: (database reads, HTTP requests answered)."""
    reads = requests = 0.0
    for n in nodes:
        _, _, data = http_request("127.0.0.1", n.port, "GET", "/metrics")
        for line in data.decode().splitlines():
            if line.startswith("millions_db_queries_total{") and 'kind="read"' in line:
                reads += float(line.rsplit(" ", 1)[1])
            elif line.startswith("millions_http_requests_total{"):
                requests += float(line.rsplit(" ", 1)[1])
    return reads, requests


def check_load(proc, out_path, log_path, what):
    """`millions load`'s summary, checked (benchlib.check_load_summary)."""
    tail = open(log_path, errors="replace").read()[-1500:]
    return check_load_summary(proc.returncode, out_path, tail, what, Failed)


def run_mode(cache, rnd):
    """One load run. Database reads/s and CPU per request are counted from the load's first
    progress line (its users' set-up, argon2id sign-ups, is over by then) to its end; the CPU is
    that of every process serving: both web nodes, PostgreSQL (postmaster and backends) and,
    where the mode uses them, both Redis nodes."""
    pg = PgServer().start()
    ports = [free_port(), free_port()]
    topo = os.path.join(tmp, f"topology-{cache}-{rnd}.toml")
    topology(topo, ports, pg.port, cache)
    nodes = [WebNode(topo, f"web{i + 1}", p) for i, p in enumerate(ports)]
    proc = None
    try:
        for n in nodes:
            n.start()
        out = os.path.join(tmp, f"load-{cache}-{rnd}.json")
        log = os.path.join(tmp, f"load-{cache}-{rnd}.log")
        targets = ",".join(f"http://127.0.0.1:{p}" for p in ports)
        served = [n.proc.pid for n in nodes] + ([s.pid for s in servers] if "l2" in cache else [])
        with open(log, "wb") as lf:
            proc = subprocess.Popen([binary(), "load", "--target", targets, "--users", str(USERS),
                                     "--duration", str(SECONDS), "--mix", "browse", "--json",
                                     out], stdout=lf, stderr=subprocess.PIPE)
            started = threading.Event()

            def pump():  # the load's stderr to the log, watching for its first progress line
                seen = b""
                while chunk := proc.stderr.read1(4096):
                    lf.write(chunk)
                    seen = (seen + chunk)[-256:]
                    if re.search(rb"\[\s*\d+s/\d+s\]", seen):
                        started.set()
            pumper = threading.Thread(target=pump, daemon=True)
            pumper.start()
            started.wait(timeout=SECONDS + 120)
            (q0, n0), c0, t0 = metrics(nodes), cpu_of(served + postgres_pids(pg)), time.time()
            try:
                proc.wait(timeout=SECONDS + 180)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            (q1, n1), c1, t1 = metrics(nodes), cpu_of(served + postgres_pids(pg)), time.time()
            pumper.join(timeout=10)
        if not started.is_set():
            raise Failed(f"cache {cache}, round {rnd + 1}: no progress line from millions load:\n"
                         + open(log, errors="replace").read()[-1500:])
        rps, p99 = check_load(proc, out, log, f"cache {cache}, round {rnd + 1}")
        return {"rps": rps, "p99_ms": p99, "db_reads_per_s": (q1 - q0) / (t1 - t0),
                "cpu_us_per_req": cpu_delta(c0, c1) * 1e6 / max(n1 - n0, 1)}
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        for n in nodes:
            n.stop()
        pg.stop()
        for d in [pg.dir] + [n.tmp for n in nodes]:
            shutil.rmtree(d, ignore_errors=True)


def modes():
    results = {m: [] for m in MODES}
    for rnd in range(ROUNDS):
        order = MODES[rnd % len(MODES):] + MODES[:rnd % len(MODES)]
        for cache in order:
            flush_all(redis_ports)
            r = run_mode(cache, rnd)
            results[cache].append(r)
            print(f"  round {rnd + 1} {cache:<6} {r['rps']:>9.0f} ok/s  p99 {r['p99_ms']:.2f} ms  "
                  f"db reads {r['db_reads_per_s']:.0f}/s  CPU {r['cpu_us_per_req']:.0f} us/req",
                  flush=True)
    print(f"\nread-heavy Zipf load (browse mix, {USERS} users, {SECONDS} s, two web nodes of one "
          f"io thread, one PostgreSQL), {ROUNDS} rounds in rotated order, Redis flushed before "
          "each run; median [min-max] spread ((max-min)/median); CPU us/req of the web nodes, "
          "PostgreSQL and the Redis nodes the mode uses:")
    print(f"{'cache':<7} {'successes/s':<26} {'p99 ms':<26} {'db reads/s':<20} CPU us/req")
    for c in MODES:
        print(f"{c:<7} {fmt([r['rps'] for r in results[c]]):<26} "
              f"{fmt([r['p99_ms'] for r in results[c]], 2):<26} "
              f"{fmt([r['db_reads_per_s'] for r in results[c]]):<20} "
              f"{fmt([r['cpu_us_per_req'] for r in results[c]])}")
    for what, key in (("successes/s", "rps"), ("database reads/s", "db_reads_per_s"),
                      ("CPU per request", "cpu_us_per_req")):
        ratios = [on[key] / off[key] if off[key] else float("inf")
                  for on, off in zip(results["l1+l2"], results["off"])]
        print(f"cache tier on/off, {what}: x{fmt(ratios, 3)} (per-round ratios)")


# --- part 2: L2 GETs, ours and redis-benchmark's, same keys and bytes ------------------------

def write_keys(port):
    r = Redis(port)
    try:
        r.call("FLUSHALL")
        for start in range(0, KEYS, 200):
            args = ["MSET"]
            for k in range(start, min(start + 200, KEYS)):
                args += [f"key:{k:012d}", VALUE]
            if r.call(*args) != "OK":
                raise Failed("MSET failed")
        n = r.call("DBSIZE")
        got = r.pipeline([["GET", f"key:{k:012d}"] for k in (0, KEYS // 2, KEYS - 1)])
    finally:
        r.close()
    if n != KEYS or any(v != VALUE for v in got):
        raise Failed(f"keys not written as meant: DBSIZE {n}, want {KEYS}")


def measured(port, server_pid, argv, what, count_of):
    """Runs argv; checks its exit code and that the server saw only hits, no misses and no error
    replies. Returns (result of count_of(stdout), gets, client CPU s, server CPU s)."""
    r = Redis(port)
    try:
        s0, c0, k0 = r.info(), cpu_seconds(server_pid), children_cpu()
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=L2_SECONDS + 120)
        s1, c1, k1 = r.info(), cpu_seconds(server_pid), children_cpu()
        dbsize = r.call("DBSIZE")
    finally:
        r.close()
    if proc.returncode != 0:
        raise Failed(f"{what}: exited {proc.returncode}: {proc.stdout[-800:]} {proc.stderr[-800:]}")
    if re.search(r"error", proc.stderr, re.I):
        raise Failed(f"{what}: errors reported: {proc.stderr[-800:]}")
    result, gets = count_of(proc.stdout)
    d = {k: s1.get(k, 0) - s0.get(k, 0)
         for k in ("keyspace_hits", "keyspace_misses", "total_error_replies")}
    if d["keyspace_misses"] or d["total_error_replies"] or d["keyspace_hits"] < gets or \
            dbsize != KEYS:
        raise Failed(f"{what}: not every GET was a hit: server saw {d}, {gets} GETs counted, "
                     f"{dbsize} keys (want {KEYS})")
    return result, gets, k1 - k0, c1 - c0


def l2_ours(port, pid):
    def parse(out):
        o = json.loads(out.strip().splitlines()[-1])
        if not o.get("ok") or o.get("misses") or o.get("errors") or o.get("wrong_value"):
            raise Failed(f"l2_bench: {o}")
        return o["gets_per_s"], o["all_hits"]
    return measured(port, pid, [L2_BENCH, str(port), str(L2_THREADS), str(L2_SECONDS), str(KEYS),
                                str(len(VALUE)), "1"], "l2_bench", parse)


def redis_benchmark(port, pid, opts, n):
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), *opts, "-n", str(n),
            "-r", str(KEYS), "--csv", "GET", "key:__rand_int__"]

    def parse(out):
        rows = [line for line in out.splitlines() if line.startswith('"GET key:')]
        if len(rows) != 1:
            raise Failed(f"redis-benchmark: unexpected output: {out[-400:]}")
        rps = float(rows[0].split(",")[1].strip('"'))
        return rps, n
    return measured(port, pid, argv, "redis-benchmark " + " ".join(opts), parse)


def l2():
    port, pid = redis_ports[0], servers[0].pid
    if not os.access(L2_BENCH, os.X_OK):
        raise Failed(f"{L2_BENCH} is missing: build the l2_bench target")
    write_keys(port)
    variants = {
        "ours": None,
        "rb -c 1 -P 50": ["-c", "1", "-P", str(L2_THREADS)],
        "rb -c 50": ["-c", str(L2_THREADS)],
    }
    # redis-benchmark runs a request count, not a time: size it from a warm-up run (not
    # measured) to last about as long as ours.
    size = {}
    for name, opts in variants.items():
        if opts:
            rps, _, _, _ = redis_benchmark(port, pid, opts, 20000)
            size[name] = max(20000, int(rps * L2_SECONDS))
    rows = {name: [] for name in variants}
    names = list(variants)
    for rnd in range(ROUNDS):
        for name in names[rnd % len(names):] + names[:rnd % len(names)]:
            if variants[name] is None:
                rps, gets, ccpu, scpu = l2_ours(port, pid)
            else:
                redis_benchmark(port, pid, variants[name], 20000)  # warm-up, not measured
                rps, gets, ccpu, scpu = redis_benchmark(port, pid, variants[name], size[name])
            rows[name].append((rps, ccpu * 1e6 / gets, scpu * 1e6 / gets))
            print(f"  round {rnd + 1} {name:<14} {rps:>10.0f} GETs/s  client "
                  f"{rows[name][-1][1]:6.2f} us/GET  redis-server {rows[name][-1][2]:5.2f} us/GET",
                  flush=True)
    print(f"\nL2 GETs on one Redis node ({KEYS} keys written first, {len(VALUE)}-byte values, "
          f"every GET a hit), {ROUNDS} rounds in rotated order; median [min-max] spread:")
    labels = {
        "ours": f"ours: l2_bench, {L2_THREADS} threads, 1 pipelined connection",
        "rb -c 1 -P 50": f"redis-benchmark -c 1 -P {L2_THREADS} (matching mode)",
        "rb -c 50": f"redis-benchmark -c {L2_THREADS} (unpipelined)",
    }
    for name in names:
        print(f"  {labels[name]:<52} {fmt([x[0] for x in rows[name]]):<26} CPU us/GET client "
              f"{fmt([x[1] for x in rows[name]], 2):<24} redis-server "
              f"{fmt([x[2] for x in rows[name]], 2)}")
    for peer in ("rb -c 1 -P 50", "rb -c 50"):
        tput = [a[0] / b[0] for a, b in zip(rows["ours"], rows[peer])]
        cpu = [(a[1] + a[2]) / (b[1] + b[2]) for a, b in zip(rows["ours"], rows[peer])]
        print(f"  ours / {labels[peer].split(' (')[0]}: GETs/s x{fmt(tput, 2)}, CPU per GET "
              f"(client + server) x{fmt(cpu, 2)} (per-round ratios)", flush=True)


redis_ports = [free_port(), free_port()]
servers = [redis_server(p) for p in redis_ports]
status = 0
try:
    for p, s in zip(redis_ports, servers):
        wait_redis(p, s)
    if "modes" in PHASES:
        modes()
    if "l2" in PHASES:
        l2()
except Failed as e:
    print(f"\nFAILED: {e}", file=sys.stderr, flush=True)
    status = 1
finally:
    for s in servers:
        s.kill()
        s.wait()
    if os.environ.get("BENCH_KEEP") != "1":
        shutil.rmtree(tmp, ignore_errors=True)
sys.exit(status)
