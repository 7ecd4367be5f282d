"""bench/cache: what the cache tier buys, in the same run on this machine.

1. A read-heavy Zipf load (`millions load --mix browse`) on two web nodes over one PostgreSQL,
   four ways: no cache at all (L1 of size 0, no cache nodes), L1 only, L2 only (two Redis cache
   nodes, L1 of size 0), and L1 with L2. For each: requests/s, p99, and database reads/s (the web nodes'
   millions_db_queries_total{kind="read"}).
2. L2 GET throughput: our client (bench/l2_bench: RedisL2 over the pipelined Asio connection,
   50 threads each waiting for its answer) against `redis-benchmark -t get -c 50` on the same
   Redis node, same value size, unpipelined and pipelined by 16.
Loopback only; every phase bounded in time (about 2.5 minutes in all)."""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from harness import PgServer, WebNode, binary, free_port, http_request, web_topology  # noqa: E402

SECONDS = int(os.environ.get("DURATION", "12"))
USERS = int(os.environ.get("USERS", "32"))
# build/<preset>/src/cmd/millions -> build/<preset>
build_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(binary()))))
tmp = tempfile.mkdtemp(prefix="millions-cachebench-")
os.chmod(tmp, 0o755)


def redis_server(port):
    return subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save",
                             "", "--appendonly", "no", "--maxmemory", "64mb",
                             "--maxmemory-policy", "allkeys-lru", "--dir", tmp],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def topology(path, ports, pg_port, cache):
    extra = ""
    if cache in ("off", "l2"):
        extra = "[cache]\ncapacity_bytes = 0\n"
    if cache in ("l2", "l1+l2"):
        extra += "".join(f'[[redis.node]]\nname = "redis{i + 1}"\nlisten = "127.0.0.1:{p}"\n'
                        for i, p in enumerate(redis_ports))
    web_topology(pg_port, ports, path, web="threads = 1\nblocking_threads = 8",
                 extra=extra, name="cachebench")


def db_reads(nodes):
    total = 0.0
    for n in nodes:
        _, _, data = http_request("127.0.0.1", n.port, "GET", "/metrics")
        for line in data.decode().splitlines():
            if line.startswith("millions_db_queries_total{") and 'kind="read"' in line:
                total += float(line.rsplit(" ", 1)[1])
    return total


def run(cache):
    pg = PgServer().start()
    ports = [free_port(), free_port()]
    topo = os.path.join(tmp, f"topology-{cache}.toml")
    topology(topo, ports, pg.port, cache)
    nodes = [WebNode(topo, f"web{i + 1}", p) for i, p in enumerate(ports)]
    try:
        for n in nodes:
            n.start()
        out = os.path.join(tmp, f"load-{cache}.json")
        targets = ",".join(f"http://127.0.0.1:{p}" for p in ports)
        q0, t0 = db_reads(nodes), time.time()
        subprocess.run([binary(), "load", "--target", targets, "--users", str(USERS),
                        "--duration", str(SECONDS), "--mix", "browse", "--json", out],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=SECONDS + 120)
        q1, t1 = db_reads(nodes), time.time()
        r = json.load(open(out))
        bad = sum(v for k, v in r["by_status"].items() if k == "conn_error" or k.startswith("5"))
        return {"rps": r["rps"], "p99_ms": r["p99_ms"], "db_reads_per_s": (q1 - q0) / (t1 - t0),
                "failed": bad}
    finally:
        for n in nodes:
            n.stop()
        pg.stop()


redis_ports = [free_port(), free_port()]
servers = [redis_server(p) for p in redis_ports]
try:
    time.sleep(0.5)
    results = {c: run(c) for c in ("off", "l1", "l2", "l1+l2")}
    print(f"\nread-heavy Zipf load (browse mix, {USERS} users, {SECONDS} s, two web nodes, "
          "one PostgreSQL):")
    print(f"{'cache':<8} {'req/s':>10} {'p99 ms':>8} {'db reads/s':>11} {'failed':>7}")
    for c, r in results.items():
        print(f"{c:<8} {r['rps']:>10.0f} {r['p99_ms']:>8.2f} {r['db_reads_per_s']:>11.0f} "
              f"{r['failed']:>7}")
    off, on = results["off"], results["l1+l2"]
    print(f"cache tier on/off: throughput x{on['rps'] / max(off['rps'], 1):.2f}, "
          f"database reads x{on['db_reads_per_s'] / max(off['db_reads_per_s'], 1):.3f}")

    # L2 GETs: ours and redis-benchmark's on the same node.
    port = redis_ports[0]
    ours = json.loads(subprocess.run([os.path.join(build_dir, "bench", "l2_bench"), str(port), "50",
                                      "5"], capture_output=True, text=True, timeout=60).stdout)
    def rb(*extra):
        out = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "get", "-c", "50", "-n",
                              "300000", "-r", "1000", "-d", "216", "-q", *extra],
                             capture_output=True, text=True, timeout=120).stdout
        m = re.findall(r"GET: ([0-9.]+) requests per second", out)
        return float(m[-1]) if m else 0.0
    plain, piped = rb(), rb("-P", "16")
    print(f"\nL2 GET throughput on one Redis node (216-byte values, 1000 keys):")
    print(f"  ours (l2_bench, 50 threads, one pipelined connection)  {ours['gets_per_s']:>10.0f}/s")
    print(f"  redis-benchmark -c 50                                  {plain:>10.0f}/s")
    print(f"  redis-benchmark -c 50 -P 16                            {piped:>10.0f}/s")
    print(f"  ratio ours/redis-benchmark -c 50: {ours['gets_per_s'] / max(plain, 1):.2f}")
finally:
    for s in servers:
        s.kill()
        s.wait()
