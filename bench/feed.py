"""bench/feed: the home feed read from timelines (feed fan-out: a Redis timeline store written by
fan-out jobs that `millions serve worker` processes take from NATS) beside the feed read from
the database (a join over follows and photos, its first page cached per user), in the same run,
on the same machine.

Designs, the same processes but for the timeline store:
  db        one web node `web1` ([web] threads = 2, blocking_threads = 4), PostgreSQL,
            nats-server with JetStream and one worker process: no [[timeline.node]], so the feed
            is store.Feed, cached per user (L1 key f:<user>, invalidated for the owner's
            followers on upload).
  timeline  the same plus a timeline store: one redis-server with its AOF (appendonly,
            everysec, noeviction), as `up` runs it (REPLICA=1 adds a replica); posts become
            fan-out jobs (stream MILLIONS_FANOUT) run by the worker ([timeline] fanout_threads
            = FANOUT_THREADS).
Both run the default cache settings (docs/topology.md: a first feed page lives 10 s, a photo
300 s, the first page of a user's photos 30 s, a session 60 s) and no cache nodes.

Workload. USERS users; each follows FOLLOWS others drawn at random (seed SEED) and the CELEBS
celebrities (users 0.., followed by everyone); `[timeline] celebrity_followers` is set between
the largest follower count of the others and USERS - 1, so that exactly the celebrities count
as celebrities (their posts are merged at read time, not fanned out). The users, their sessions
and the follows are made once, through the API, on a template PostgreSQL; each design in each
round starts from a copy of its data directory (the same user ids and tokens, no photos) and
fresh nats-server, redis-server, web node and worker. Then, per design and round:
  1. build: every user reads their feed once (empty; timelines built empty, sessions cached).
  2. posts: POSTS uploads of small PNGs, one at a time, captions s0.., by the celebrities first
     and then by users drawn at random (seed SEED): the same posts in the same order on both
     designs. Then the fan-out is waited for (timeline: the worker's done fan-out jobs, timeline
     writes and celebrity posts equal to what the graph says, backlog 0) and until 5.5 s have
     passed since step 1 (a web node remembers the set of celebrities for 5 s).
  3. check: every user's feed, read once: cold reads (the posts invalidated the cached feeds;
     new photos not yet cached). Each answer must hold the photo ids the model says (the 20
     newest posts by the users followed, newest first), and its bytes, photo and user ids
     replaced by captions and user numbers and created_at blanked, must equal the first
     design's: the same bytes on both sides.
  4. reads (measured): CLIENTS client processes, each on one keep-alive connection, READS feed
     reads in all (or READ_SECONDS), each of a user drawn at random (seed per client: the same
     users on both designs), with that user's token.
  5. mixed (measured): the same, and after every WRITE_EVERY feed reads a client uploads a post
     by a random user: with no writes a database feed is served from its cache and never
     reaches the database. Then the fan-out is waited for and every user's feed checked
     against the model again (here the order of posts made at once by two clients is theirs,
     so the bytes are not compared across designs, only each with its own model).
Printed per design and phase: feed reads/s, p50/p99 ms, database queries per feed (the web
node's millions_db_queries_total, every member role and kind; in the mixed phase the uploads'
own queries are in it, and the worker's, for the fan-out, are printed apart), CPU us per
request (feed read or post) of the web node, PostgreSQL (postmaster and backends), redis-server,
the worker and nats-server, and of the Python clients; and the timeline design's timeline reads
by result. ROUNDS rounds, the order of the designs rotated each round; median [min-max] spread
((max-min)/median) over rounds; ratios timeline/db as the median of per-round ratios with their
range.

The run fails (exit 1, `bench: FAIL: ...`) on any answer other than 200 to a feed read or 201 to
an upload, a socket error or a closed keep-alive connection, an answer that differs from the
model or from the other design, a fan-out job failed or not done within SETTLE_TIMEOUT, a
timeline read that found the store unavailable (the feed then comes from the database, which
would pass the database off as the timeline), a post fanned out inline (its publish failed), or
a process under test that exits (or does not exit 0 when stopped). BENCH_SELFTEST=1 makes the
clients of step 4 read with a bad token (401): the run must exit 1; it exits 3 if they got 200s.
Loopback only; every wait bounded. Environment: ROUNDS (3), USERS (200), FOLLOWS (20), CELEBS
(2), POSTS (400), READS (20000), READ_SECONDS (60), CLIENTS (4), WRITE_EVERY (50),
FANOUT_THREADS (1), REPLICA (0), SEED (1), SETTLE_TIMEOUT (60), DESIGNS ("db timeline"),
BENCH_SELFTEST=1, BENCH_KEEP=1."""
import os
import sys

# bench/queue.py is in this file's directory: that directory must not shadow the standard
# library's `queue` (which multiprocessing imports).
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import array  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import multiprocessing.pool  # noqa: E402,F401  (imports the standard library's queue)
import random  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

sys.path.append(_here)  # after the standard library: for benchlib
from benchlib import cpu_delta, cpu_of, fmt, postgres_pids, ratio, run_main  # noqa: E402

sys.path.insert(0, os.path.join(_here, "..", "tests", "integration"))
from harness import (NatsServer, PgServer, RedisServer, WebNode, WorkerNode,  # noqa: E402
                     bearer, binary, free_port, http_request, node, png, web_topology)

ROUNDS = int(os.environ.get("ROUNDS", "3"))
USERS = int(os.environ.get("USERS", "200"))
FOLLOWS = int(os.environ.get("FOLLOWS", "20"))
CELEBS = int(os.environ.get("CELEBS", "2"))
POSTS = int(os.environ.get("POSTS", "400"))
READS = int(os.environ.get("READS", "20000"))
READ_SECONDS = float(os.environ.get("READ_SECONDS", "60"))
CLIENTS = int(os.environ.get("CLIENTS", "4"))
WRITE_EVERY = int(os.environ.get("WRITE_EVERY", "50"))
FANOUT_THREADS = int(os.environ.get("FANOUT_THREADS", "1"))
REPLICA = os.environ.get("REPLICA", "0") == "1"
SEED = int(os.environ.get("SEED", "1"))
SETTLE_TIMEOUT = float(os.environ.get("SETTLE_TIMEOUT", "60"))
DESIGNS = os.environ.get("DESIGNS", "db timeline").split()
SELFTEST = os.environ.get("BENCH_SELFTEST") == "1"
KEEP = os.environ.get("BENCH_KEEP") == "1"
CORES = os.cpu_count() or 1
NAMES = {"db": "database feed", "timeline": "timelines"}
WEB = {"threads": 2, "blocking_threads": 4}
PAGE = 20  # GET /api/feed's default limit, the page that is cached or read from a timeline
CELEB_CACHE_S = 5.5  # a web node remembers the set of celebrities 5 s (TimelineOptions)
GROUPS = ["web", "pg", "redis", "worker", "nats"]


class Failed(Exception):
    pass


tmp = tempfile.mkdtemp(prefix="millions-feedbench-")
os.chmod(tmp, 0o755)
# A copy of the binary under test, so that a rebuild during the run cannot change it.
_bin = os.path.join(tmp, "millions")
shutil.copy2(os.path.realpath(binary()), _bin)
# The libvips module the binary loads from beside itself (src/media/media.cc).
_module = os.path.join(os.path.dirname(os.path.realpath(binary())), "millions-media-vips.so")
if os.path.exists(_module):
    shutil.copy2(_module, os.path.join(os.path.dirname(_bin), "millions-media-vips.so"))
os.environ["MILLIONS_BIN"] = _bin


# --- statistics ---------------------------------------------------------------------------------

def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * len(s) + 0.5)) - 1))] if s else 0.0


def machine_ticks():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


# --- a small keep-alive HTTP/1.1 client (http.client costs several times its CPU per request) --

HEADER_END = re.compile(rb"\r\n\r\n")
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.I)
CONN_CLOSE = re.compile(rb"\r\nconnection:[ \t]*close", re.I)


class Conn:
    """One keep-alive connection; raises OSError on a socket error, a closed connection, or an
    answer without Content-Length."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def roundtrip(self, request):
        self.sock.sendall(request)
        buf = self.buf
        while True:
            m = HEADER_END.search(buf)
            if m:
                break
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            buf += chunk
        head, rest = buf[:m.start()], buf[m.end():]
        cl = CONTENT_LENGTH.search(head)
        if not cl:
            raise ConnectionError(f"an answer without Content-Length: {head[:200]!r}")
        n = int(cl.group(1))
        while len(rest) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection mid-answer")
            rest += chunk
        self.buf = rest[n:]
        if CONN_CLOSE.search(head):
            raise ConnectionError("the server closed the keep-alive connection")
        return int(head[9:12]), rest[:n]

    def close(self):
        self.sock.close()


def get_feed_request(token):
    return (f"GET /api/feed HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}"
            "\r\n\r\n").encode()


def post_request(token, caption, body):
    return (f"POST /api/photos?caption={caption} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: image/png\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def post_png(k):
    """A small PNG of its own for post k (a media key of its own)."""
    return png(8 + k // 256, 8, seed=k % 256)


# The clients are forked: they find the requests here.
FEED_REQS = []
TOKENS = []


def client(args):
    """One client process on one keep-alive connection: `reads` feed reads of users drawn with
    `seed`; with `write_every`, after each such count of reads a post by a random user. Stops at
    the first failure or at `deadline`. Returns what it saw."""
    idx, port, reads, write_every, deadline, seed, tag = args
    rng = random.Random(seed)
    out = {"lat": array.array("d"), "post_lat": array.array("d"), "posts": [], "bad": None,
           "bytes": 0, "reads": 0}
    c0 = os.times()
    out["t0"] = time.time()
    conn = None
    try:
        conn = Conn(port)
        for i in range(reads):
            if i % 64 == 0 and time.time() > deadline:
                break
            u = rng.randrange(len(FEED_REQS))
            t = time.perf_counter()
            status, body = conn.roundtrip(FEED_REQS[u])
            out["lat"].append(time.perf_counter() - t)
            if status != 200:
                out["bad"] = f"a feed read answered {status}: {body[:200]!r}"
                break
            out["bytes"] += len(body)
            out["reads"] += 1
            if write_every and (i + 1) % write_every == 0:
                owner = rng.randrange(len(TOKENS))
                j = len(out["posts"])
                img = png(9 + idx, 8 + j // 256, seed=j % 256)
                t = time.perf_counter()
                status, body = conn.roundtrip(post_request(TOKENS[owner], f"m{tag}c{idx}n{j}", img))
                out["post_lat"].append(time.perf_counter() - t)
                if status != 201:
                    out["bad"] = f"an upload answered {status}: {body[:200]!r}"
                    break
                out["posts"].append((int(json.loads(body)["id"]), owner))
    except (OSError, ValueError, KeyError) as e:
        out["bad"] = f"socket error: {e!r}"
    finally:
        if conn:
            conn.close()
        out["t1"] = time.time()
        c1 = os.times()
        out["cpu"] = (c1.user - c0.user) + (c1.system - c0.system)
    return out


# --- the users, their sessions and follows: made once, copied per run -------------------------

class Graph:
    def __init__(self):
        rng = random.Random(SEED)
        self.celebs = list(range(min(CELEBS, USERS)))
        self.following = []
        for u in range(USERS):
            others = [v for v in range(USERS) if v != u and v not in self.celebs]
            self.following.append(sorted(set(rng.sample(others, min(FOLLOWS, len(others))))
                                         | {c for c in self.celebs if c != u}))
        self.followers = [0] * USERS
        for u in range(USERS):
            for v in self.following[u]:
                self.followers[v] += 1
        normal = max([self.followers[u] for u in range(USERS) if u not in self.celebs] or [0])
        if self.celebs and normal >= USERS - 1:
            raise Failed(f"FOLLOWS={FOLLOWS} gives a user {normal} followers: as many as a "
                         f"celebrity's {USERS - 1}; lower FOLLOWS or raise USERS")
        # More followers than this is a celebrity: exactly the users followed by everyone.
        self.threshold = (normal + USERS - 1) // 2 if self.celebs else USERS
        owners = rng.choices(range(USERS), k=max(0, POSTS - len(self.celebs)))
        self.post_owners = (self.celebs + owners)[:POSTS]
        self.following_sets = [set(f) for f in self.following]

    def expected_fanout(self, owners):
        """(timeline writes, celebrity posts) that posts by these owners make."""
        writes = celeb = 0
        for o in owners:
            if self.followers[o] > self.threshold:
                celeb += 1
            else:
                writes += self.followers[o]
        return writes, celeb

    def feed(self, u, posts):
        """The model's feed of user u: the PAGE newest of posts [(id, owner)] by users followed."""
        f = self.following_sets[u]
        return sorted((p for p, o in posts if o in f), reverse=True)[:PAGE]


def parallel(n, fn, items):
    """fn over items on n threads (the calls wait on the server); raises the first error."""
    items = list(items)
    errors, out = [], [None] * len(items)
    lock = threading.Lock()
    nxt = [0]

    def run():
        while not errors:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(items):
                return
            try:
                out[i] = fn(items[i])
            except Exception as e:  # noqa: BLE001 - carried to the caller
                errors.append(e)
    ts = [threading.Thread(target=run, daemon=True) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    return out


def make_template(graph):
    """A PostgreSQL with the users, their sessions and the follows, stopped: its data directory
    is copied for every run. Returns (data dir, user ids, tokens)."""
    pg = PgServer().start()
    port = free_port()
    topo = web_topology(os.path.join(tmp, "template.toml"), pg.port, [port], web=WEB,
                        name="feedbench", extra={})
    web = WebNode(topo, "web1", port).start()
    try:
        def user(u):
            body = {"handle": f"feeder{u}", "password": "password123"}
            s, _, d = http_request("127.0.0.1", port, "POST", "/api/users", body)
            if s != 201:
                raise Failed(f"template: sign-up of user {u} answered {s}: {d[:200]!r}")
            s, _, d = http_request("127.0.0.1", port, "POST", "/api/sessions", body)
            if s != 201:
                raise Failed(f"template: log-in of user {u} answered {s}: {d[:200]!r}")
            sess = json.loads(d)
            return int(sess["user_id"]), sess["token"]
        t0 = time.time()
        users = parallel(4, user, range(USERS))
        ids, tokens = [u for u, _ in users], [t for _, t in users]
        t1 = time.time()

        def follow(pair):
            u, v = pair
            s, _, d = http_request("127.0.0.1", port, "POST", f"/api/users/{ids[v]}/follow",
                                   headers=bearer(tokens[u]))
            if s != 204:
                raise Failed(f"template: follow {u} -> {v} answered {s}: {d[:200]!r}")
        parallel(4, follow, [(u, v) for u in range(USERS) for v in graph.following[u]])
        print(f"  template: {USERS} sign-ups and log-ins in {t1 - t0:.1f} s (argon2id), "
              f"{sum(len(f) for f in graph.following)} follows in {time.time() - t1:.1f} s",
              flush=True)
    finally:
        rc = web.stop()
        pg.stop()
    if rc != 0:
        raise Failed(f"template: web1 exited {rc} when stopped")
    return os.path.join(pg.dir, "data"), ids, tokens, pg.dir


# --- metrics ------------------------------------------------------------------------------------

METRIC = re.compile(r"^([a-z_]+)(\{[^}]*\})? ([0-9.eE+-]+|NaN|[+-]Inf)$")


def scrape(port):
    """{name: {labels: value}} of a node's /metrics."""
    try:
        s, _, data = http_request("127.0.0.1", port, "GET", "/metrics", timeout=10)
    except OSError as e:
        raise Failed(f"GET /metrics on port {port}: {e!r}")
    if s != 200:
        raise Failed(f"GET /metrics on {port} answered {s}")
    out = {}
    for line in data.decode().splitlines():
        m = METRIC.match(line)
        if m:
            out.setdefault(m.group(1), {})[m.group(2) or ""] = float(m.group(3))
    return out


def msum(metrics, name, label=None):
    return sum(v for k, v in metrics.get(name, {}).items() if label is None or label in k)


# --- one design, one round ----------------------------------------------------------------------

class Run:
    """The processes of one design in one round, all stopped by close()."""

    def __init__(self, design, rnd, graph, template):
        self.design, self.rnd, self.g = design, rnd, graph
        self.template_data, self.ids, self.tokens = template
        self.label = {str(i).encode(): f'"u{u}"'.encode() for u, i in enumerate(self.ids)}
        self.dir = tempfile.mkdtemp(prefix=f"{design}-{rnd}-", dir=tmp)
        self.pg = self.nats = self.web = self.worker = None
        self.redis = []
        self.posts = []  # (photo id, owner) of every post so far, as the uploads answered

    def what(self, part):
        return f"{NAMES[self.design]}, round {self.rnd + 1}, {part}"

    def start(self):
        self.pg = PgServer()
        subprocess.run(["cp", "-a", self.template_data, os.path.join(self.pg.dir, "data")],
                       check=True)
        self.pg.start()
        self.nats = NatsServer().start()
        web_port, worker_port = free_port(), free_port()
        timeline = {"celebrity_followers": self.g.threshold, "fanout_threads": FANOUT_THREADS}
        if self.design == "timeline":
            self.redis = [RedisServer("timeline1", aof=True).start()]
            if REPLICA:
                self.redis.append(RedisServer("timeline2", aof=True,
                                              replica_of=self.redis[0]).start())
            timeline["node"] = [node(f"timeline{i + 1}", r.port)
                                for i, r in enumerate(self.redis)]
        topo = web_topology(
            os.path.join(self.dir, "topology.toml"), self.pg.port, [web_port], web=WEB,
            name="feedbench",
            extra={"nats": [node("nats1", self.nats.port, admin=self.nats.monitor)],
                   "worker": [node("worker1", worker_port)], "timeline": timeline})
        self.web = WebNode(topo, "web1", web_port).start()
        self.worker = WorkerNode(topo, "worker1", worker_port).start()

    def check_alive(self, part):
        for n in (self.web, self.worker):
            if n.proc.poll() is not None:
                raise Failed(f"{self.what(part)}: {n.name} exited {n.proc.returncode}:\n"
                             + open(n.log_path, errors="replace").read()[-1500:])
        for name, p in [("nats-server", self.nats.proc)] + [(r.name, r.proc) for r in self.redis]:
            if p.poll() is not None:
                raise Failed(f"{self.what(part)}: {name} exited {p.returncode}")

    def snapshot(self):
        pids = {"web": [self.web.proc.pid], "pg": postgres_pids(self.pg),
                "redis": [r.proc.pid for r in self.redis], "worker": [self.worker.proc.pid],
                "nats": [self.nats.proc.pid]}
        return {"cpu": {g: cpu_of(p) for g, p in pids.items()}, "web": scrape(self.web.port),
                "worker": scrape(self.worker.port), "machine": machine_ticks(), "t": time.time()}

    def delta(self, s0, s1, requests, feeds, part):
        """CPU us per request by group; database queries per feed; timeline reads by result."""
        d = {"cpu_us": {g: cpu_delta(s0["cpu"][g], s1["cpu"][g]) * 1e6 / max(requests, 1)
                        for g in GROUPS}}
        q = msum(s1["web"], "millions_db_queries_total") - msum(s0["web"],
                                                                  "millions_db_queries_total")
        wq = msum(s1["worker"], "millions_db_queries_total") - msum(
            s0["worker"], "millions_db_queries_total")
        reads = msum(s1["web"], "millions_db_queries_total", 'kind="read"') - msum(
            s0["web"], "millions_db_queries_total", 'kind="read"')
        d["db_per_feed"], d["db_reads_per_feed"] = q / max(feeds, 1), reads / max(feeds, 1)
        d["db_queries"], d["worker_db_queries"] = q, wq
        d["tl"] = {r: msum(s1["web"], "millions_timeline_reads_total", f'"{r}"')
                   - msum(s0["web"], "millions_timeline_reads_total", f'"{r}"')
                   for r in ("hit", "rebuilt", "deep", "unavailable")}
        if self.design == "timeline":
            if d["tl"]["unavailable"]:
                raise Failed(f"{self.what(part)}: {d['tl']['unavailable']:.0f} timeline reads "
                             "found the store unavailable (served from the database)")
            inline = msum(s1["web"], "millions_fanout_inline_total")
            if inline:
                raise Failed(f"{self.what(part)}: {inline:.0f} posts fanned out inline (their "
                             "publish to the fan-out stream failed)")
        secs = s1["t"] - s0["t"]
        busy = (s1["machine"][0] - s0["machine"][0]) / max(s1["machine"][1] - s0["machine"][1],
                                                            1) * CORES
        ours = sum(cpu_delta(s0["cpu"][g], s1["cpu"][g]) for g in GROUPS)
        d["machine_cores"], d["ours_cores"] = busy, ours / max(secs, 1e-9)
        d["client_cores"], d["other_cores"] = 0.0, busy - d["ours_cores"]
        return d

    def one(self, conn, u):
        status, body = conn.roundtrip(get_feed_request(self.tokens[u]))
        if status != 200:
            raise Failed(f"{self.what('feed read')}: user {u}'s feed answered {status}: "
                         f"{body[:200]!r}")
        return body

    def build(self):
        """Step 1: every user's feed once (empty)."""
        conn = Conn(self.web.port)
        try:
            for u in range(USERS):
                body = self.one(conn, u)
                if json.loads(body)["items"]:
                    raise Failed(f"{self.what('build')}: user {u}'s feed is not empty: "
                                 f"{body[:200]!r}")
        finally:
            conn.close()
        self.built_at = time.time()

    def make_posts(self):
        """Step 2: the posts, one at a time; (posts/s, web DB queries per post, CPU)."""
        s0 = self.snapshot()
        conn = Conn(self.web.port)
        self.captions = {}
        try:
            for k, owner in enumerate(self.g.post_owners):
                status, body = conn.roundtrip(post_request(self.tokens[owner], f"s{k}",
                                                           post_png(k)))
                if status != 201:
                    raise Failed(f"{self.what('posts')}: upload {k} answered {status}: "
                                 f"{body[:200]!r}")
                pid = int(json.loads(body)["id"])
                self.posts.append((pid, owner))
                self.captions[str(pid).encode()] = f'"s{k}"'.encode()
        finally:
            conn.close()
        s1 = self.snapshot()
        n = max(len(self.g.post_owners), 1)
        d = self.delta(s0, s1, n, n, "posts")
        d["per_s"] = n / (s1["t"] - s0["t"])
        return d

    def settle(self, part):
        """Waits for the fan-out of every post so far (timeline design); seconds waited."""
        t0 = time.time()
        if self.design != "timeline":
            return 0.0
        writes, celeb = self.g.expected_fanout(o for _, o in self.posts)
        deadline = t0 + SETTLE_TIMEOUT
        while True:
            m = scrape(self.worker.port)
            done = msum(m, "millions_fanout_jobs_total", '"done"')
            failed = msum(m, "millions_fanout_jobs_total", '"failed"')
            if failed:
                raise Failed(f"{self.what(part)}: {failed:.0f} fan-out jobs failed")
            got = (done, msum(m, "millions_fanout_writes_total"),
                   msum(m, "millions_fanout_celebrity_posts_total"),
                   msum(m, "millions_fanout_backlog"))
            if got == (len(self.posts), writes, celeb, 0):
                self.lag = msum(m, "millions_fanout_lag_seconds")
                return time.time() - t0
            self.check_alive(part)
            if time.time() > deadline:
                raise Failed(f"{self.what(part)}: fan-out not done in {SETTLE_TIMEOUT:.0f} s: "
                             f"(done jobs, writes, celebrity posts, backlog) = {got}, want "
                             f"{(len(self.posts), writes, celeb, 0)}")
            time.sleep(0.05)

    def canonical(self, body):
        """The answer's bytes with photo ids as captions, user ids as u<N>, created_at blank."""
        def sub(m):
            i = m.group(1)
            return self.captions.get(i) or self.label.get(i) or b'"?' + i + b'"'
        body = re.sub(rb'"created_at":"[^"]*"', b'"created_at":""', body)
        return re.sub(rb'"(\d+)"', sub, body)

    def check(self, part):
        """Every user's feed against the model; (canonical answers, a delta of the pass)."""
        s0 = self.snapshot()
        conn = Conn(self.web.port)
        bodies, wrong, lat = [], [], []
        try:
            for u in range(USERS):
                t = time.perf_counter()
                body = self.one(conn, u)
                lat.append(time.perf_counter() - t)
                got = [int(x["id"]) for x in json.loads(body)["items"]]
                want = self.g.feed(u, self.posts)
                if got != want:
                    wrong.append((u, got, want))
                bodies.append(body)
        finally:
            conn.close()
        s1 = self.snapshot()
        if wrong:
            u, got, want = wrong[0]
            cap = {p: self.captions.get(str(p).encode(), str(p).encode()).decode()
                   for p in set(got) | set(want)}
            raise Failed(f"{self.what(part)}: {len(wrong)} of {USERS} feeds differ from the "
                         f"model; user {u}: got {[cap[p] for p in got]}, want "
                         f"{[cap[p] for p in want]}")
        d = self.delta(s0, s1, USERS, USERS, part)
        d["p50_ms"], d["p99_ms"] = pct(lat, 50) * 1e3, pct(lat, 99) * 1e3
        d["bytes"] = sum(len(b) for b in bodies) / USERS
        return [self.canonical(b) for b in bodies], d

    def measured(self, part, write_every):
        """Steps 4 and 5: CLIENTS processes, READS feed reads in all."""
        global FEED_REQS, TOKENS
        tokens = ["selftest-bad-token"] * USERS if SELFTEST else self.tokens
        FEED_REQS = [get_feed_request(t) for t in tokens]
        TOKENS = self.tokens
        n = max(1, CLIENTS)
        shares = [READS // n + (1 if i < READS % n else 0) for i in range(n)]
        deadline = time.time() + READ_SECONDS
        tag = f"{self.rnd}{part[0]}"
        args = [(i, self.web.port, shares[i], write_every, deadline,
                 SEED * 1000 + i + (500 if write_every else 0), tag) for i in range(n)]
        with multiprocessing.get_context("fork").Pool(n) as pool:
            s0 = self.snapshot()
            res = pool.map(client, args)
            try:
                s1, scrape_error = self.snapshot(), None
            except Failed as e:
                s1, scrape_error = None, e
        bad = [r["bad"] for r in res if r["bad"]]
        if bad:
            try:
                self.check_alive(part)
                dead = ""
            except Failed as e:
                dead = f"; {str(e).split(': ', 1)[1]}"
            raise Failed(f"{self.what(part)}: {bad[0]} ({len(bad)} of {n} clients stopped on "
                         f"one){dead}")
        self.check_alive(part)
        if scrape_error:
            raise scrape_error
        reads = sum(r["reads"] for r in res)
        posts = [p for r in res for p in r["posts"]]
        if not reads:
            raise Failed(f"{self.what(part)}: no feed read in {READ_SECONDS:.0f} s")
        secs = max(r["t1"] for r in res) - min(r["t0"] for r in res)
        for pid, owner in posts:
            self.posts.append((pid, owner))
        lat = [x for r in res for x in r["lat"]]
        plat = [x for r in res for x in r["post_lat"]]
        d = self.delta(s0, s1, reads + len(posts), reads, part)
        d["other_cores"] -= sum(r["cpu"] for r in res) / (s1["t"] - s0["t"])
        d.update({"reads": reads, "posts": len(posts), "per_s": reads / secs,
                  "posts_per_s": len(posts) / secs, "secs": secs,
                  "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3,
                  "post_p50_ms": pct(plat, 50) * 1e3, "post_p99_ms": pct(plat, 99) * 1e3,
                  "client_us": sum(r["cpu"] for r in res) * 1e6 / (reads + len(posts)),
                  "client_cores": sum(r["cpu"] for r in res) / (s1["t"] - s0["t"]),
                  "bytes": sum(r["bytes"] for r in res) / reads})
        return d

    def close(self):
        rcs = []
        for n in (self.worker, self.web):
            if n and n.proc and n.proc.poll() is None:
                rcs.append((n.name, n.stop()))
        for r in reversed(self.redis):
            r.kill()
        if self.nats:
            self.nats.kill()
        if self.pg:
            self.pg.stop()
        if not KEEP:
            for d in [self.pg and self.pg.dir, self.nats and self.nats.dir, self.dir] + \
                    [r.dir for r in self.redis] + [n.tmp for n in (self.web, self.worker) if n]:
                if d:
                    shutil.rmtree(d, ignore_errors=True)
        return rcs


def run_design(design, rnd, graph, template, reference):
    r = Run(design, rnd, graph, template)
    ok = False
    try:
        r.start()
        out = {}
        r.build()
        out["posts"] = r.make_posts()
        out["posts"]["settle_s"] = r.settle("fan-out of the posts")
        out["posts"]["lag_s"] = getattr(r, "lag", 0.0)
        wait = r.built_at + CELEB_CACHE_S - time.time()
        if wait > 0:
            time.sleep(wait)
        bodies, out["cold"] = r.check("first reads after the posts")
        if reference.get("bodies") is None:
            reference["bodies"], reference["from"] = bodies, r.what("check")
        else:
            diff = [u for u in range(USERS) if bodies[u] != reference["bodies"][u]]
            if diff:
                u = diff[0]
                raise Failed(f"{r.what('check')}: {len(diff)} of {USERS} answers differ from "
                             f"those of {reference['from']} (ids as captions); user {u}:\n  "
                             f"{bodies[u][:600]!r}\n  {reference['bodies'][u][:600]!r}")
        out["reads"] = r.measured("reads", 0)
        if SELFTEST:
            raise SystemExit(3)
        out["mixed"] = r.measured("mixed", WRITE_EVERY)
        out["mixed"]["settle_s"] = r.settle("fan-out of the mixed phase's posts")
        r.check("feeds after the mixed phase")
        r.check_alive("end")
        ok = True
        return out
    except (OSError, RuntimeError) as e:  # a refused or reset connection, a node not ready
        if r.web and r.worker and r.web.proc and r.worker.proc:
            r.check_alive("a request")  # names the process that exited, if one did
        raise Failed(f"{r.what('a request')}: {e!r}")
    finally:
        rcs = r.close()
        bad = [(name, rc) for name, rc in rcs if rc != 0]
        if ok and bad:
            raise Failed(f"{r.what('stop')}: {bad[0][0]} exited {bad[0][1]} when stopped")


# --- output -------------------------------------------------------------------------------------

def show_round(design, rnd, o):
    p, c = o["posts"], o["cold"]
    print(f"  round {rnd + 1} {NAMES[design]:<13} posts {p['per_s']:.0f}/s (web DB queries "
          f"{p['db_per_feed']:.1f}/post, fan-out done {p['settle_s']:.2f} s after the last); "
          f"first reads {c['db_per_feed']:.2f} DB queries/feed", flush=True)
    for name in ("reads", "mixed"):
        d = o[name]
        extra = f", {d['posts']} posts" if d["posts"] else ""
        c = d["cpu_us"]
        print(f"      {name}: {d['per_s']:,.0f} feeds/s (p50 {d['p50_ms']:.2f} p99 "
              f"{d['p99_ms']:.2f} ms{extra}), {d['db_per_feed']:.3f} DB queries/feed; CPU us/req "
              f"web {c['web']:.0f}, PG {c['pg']:.0f}, redis {c['redis']:.0f}, worker "
              f"{c['worker']:.0f}, nats {c['nats']:.0f}, clients {d['client_us']:.0f}; cores "
              f"busy: machine {d['machine_cores']:.2f}, others {d['other_cores']:.2f}",
              flush=True)


def med(xs, key, digits=0):
    return f"{statistics.median([key(x) for x in xs]):,.{digits}f}"


def report(res, graph):
    ds = [d for d in DESIGNS if res[d]]
    print(f"\nbench/feed: {ROUNDS} round(s), designs {', '.join(NAMES[d] for d in ds)} in "
          "rotated order, each from a copy of the same template database (users, sessions, "
          "follows) with fresh nats-server, redis-server, web node and worker; "
          f"{CORES} cores shared by every process (clients, web node, worker, PostgreSQL, "
          "nats-server, redis-server). median [min-max] spread ((max-min)/median) over rounds.")
    print(f"Workload: {USERS} users, each following {FOLLOWS} others and the "
          f"{len(graph.celebs)} celebrities (followed by all; celebrity_followers = "
          f"{graph.threshold}); {POSTS} posts before measuring; {READS} feed reads (GET "
          f"/api/feed, {PAGE} items) by {CLIENTS} client processes on keep-alive connections, "
          f"of random users; mixed: a post after every {WRITE_EVERY} reads per client. One web "
          f"node ([web] threads = {WEB['threads']}, blocking_threads = "
          f"{WEB['blocking_threads']}), one worker (fanout_threads = {FANOUT_THREADS}), default "
          "cache TTLs; timeline store: one redis-server with AOF"
          f"{' and a replica' if REPLICA else ''}.")
    size = {d: statistics.median([o["cold"]["bytes"] for o in res[d]]) for d in ds}
    print("Answers: every user's feed held the model's photo ids after the posts and after the "
          "mixed phase, on every run; after the posts, the same bytes on both designs (ids as "
          "captions); mean feed answer " + ", ".join(f"{NAMES[d]} {size[d]:,.0f} bytes"
                                                    for d in ds) + ".")
    for phase, title in (("reads", "feed reads, no writes"),
                         ("mixed", f"feed reads, a post after every {WRITE_EVERY} per client")):
        own, req = (" (the uploads' own included)", "feed read or post") \
            if phase == "mixed" else ("", "feed read")
        print(f"\n({phase}) {title}. DB queries: the web node's per feed read{own}, and of them "
              f"reads; CPU us per request ({req}) by process:")
        for d in ds:
            x = [o[phase] for o in res[d]]
            total = [sum(y["cpu_us"][g] for g in GROUPS) for y in x]
            print(f"  {NAMES[d]:<13} feeds/s {fmt([y['per_s'] for y in x])}; p50 "
                  f"{med(x, lambda y: y['p50_ms'], 2)} ms, p99 {fmt([y['p99_ms'] for y in x], 2)}"
                  f" ms; DB queries/feed {fmt([y['db_per_feed'] for y in x], 3)} (reads "
                  f"{med(x, lambda y: y['db_reads_per_feed'], 3)})")
            print(f"  {'':<13} CPU us/req: web {fmt([y['cpu_us']['web'] for y in x])}, PG "
                  f"{med(x, lambda y: y['cpu_us']['pg'])}, redis "
                  f"{med(x, lambda y: y['cpu_us']['redis'])}, worker "
                  f"{med(x, lambda y: y['cpu_us']['worker'])}, nats "
                  f"{med(x, lambda y: y['cpu_us']['nats'])}; all servers {fmt(total)}; clients "
                  f"{med(x, lambda y: y['client_us'])}")
            if phase == "mixed":
                print(f"  {'':<13} posts {med(x, lambda y: y['posts'])} "
                      f"({med(x, lambda y: y['posts_per_s'], 1)}/s, p50 "
                      f"{med(x, lambda y: y['post_p50_ms'], 1)} p99 "
                      f"{med(x, lambda y: y['post_p99_ms'], 1)} ms); the worker's DB queries "
                      f"{med(x, lambda y: y['worker_db_queries'] / max(y['posts'], 1), 1)}/post;"
                      f" fan-out done {med(x, lambda y: y['settle_s'], 2)} s after the phase")
            if d == "timeline":
                tl = {k: sum(y["tl"][k] for y in x) for k in ("hit", "rebuilt", "deep")}
                print(f"  {'':<13} timeline reads, all rounds: {tl['hit']:.0f} hits, "
                      f"{tl['rebuilt']:.0f} rebuilt, {tl['deep']:.0f} deep, 0 unavailable")
            print(f"  {'':<13} cores busy: servers {med(x, lambda y: y['ours_cores'], 2)}, "
                  f"clients {med(x, lambda y: y['client_cores'], 2)}, other processes "
                  f"{med(x, lambda y: y['other_cores'], 2)}, machine "
                  f"{med(x, lambda y: y['machine_cores'], 2)} of {CORES}")
    print("\nSet-up of each run (not measured as above): the posts, one at a time, and the first "
          "read of every feed after them:")
    for d in ds:
        p = [o["posts"] for o in res[d]]
        c = [o["cold"] for o in res[d]]
        print(f"  {NAMES[d]:<13} posts/s {fmt([y['per_s'] for y in p])}, web DB queries "
              f"{med(p, lambda y: y['db_per_feed'], 1)}/post, web CPU "
              f"{med(p, lambda y: y['cpu_us']['web'])} us/post; fan-out done "
              f"{med(p, lambda y: y['settle_s'], 2)} s after the last post; first reads "
              f"{med(c, lambda y: y['db_per_feed'], 2)} DB queries/feed, p50 "
              f"{med(c, lambda y: y['p50_ms'], 2)} ms")
    if "db" in ds and "timeline" in ds:
        def r(get):
            return ratio([get(o) for o in res["timeline"]], [get(o) for o in res["db"]])

        def total(o, phase):
            return sum(o[phase]["cpu_us"][g] for g in GROUPS)
        print("\ntimeline / db (median of the per-round ratios [min-max]; a range covering 1.00 "
              "is 'about equal'):")
        for ph in ("reads", "mixed"):
            q = {d: statistics.median([o[ph]["db_per_feed"] for o in res[d]]) for d in ds}
            print(f"  {ph}: feeds/s {r(lambda o: o[ph]['per_s'])}, p50 "
                  f"{r(lambda o: o[ph]['p50_ms'])}, p99 {r(lambda o: o[ph]['p99_ms'])}; CPU per "
                  f"request: web {r(lambda o: o[ph]['cpu_us']['web'])}, PG "
                  f"{r(lambda o: o[ph]['cpu_us']['pg'])}, all servers "
                  f"{r(lambda o: total(o, ph))}; DB queries per feed {q['timeline']:.3f} "
                  f"against {q['db']:.3f}")


def main():
    graph = Graph()
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"bench/feed: load average {' '.join(load)} on {CORES} cores; making the template "
          f"({USERS} users, {sum(len(f) for f in graph.following)} follows)", flush=True)
    t = time.time()
    try:
        data, ids, tokens, tdir = make_template(graph)
    except (OSError, RuntimeError) as e:
        raise Failed(f"template: {e!r}")
    print(f"  template made in {time.time() - t:.1f} s", flush=True)
    template = (data, ids, tokens)
    res = {d: [] for d in DESIGNS}
    reference = {}
    try:
        for rnd in range(ROUNDS):
            order = DESIGNS[rnd % len(DESIGNS):] + DESIGNS[:rnd % len(DESIGNS)]
            for d in order:
                o = run_design(d, rnd, graph, template, reference)
                res[d].append(o)
                show_round(d, rnd, o)
    finally:
        if not KEEP:
            shutil.rmtree(tdir, ignore_errors=True)
    report(res, graph)


run_main(main, Failed, SELFTEST, "the feed reads with a bad token were answered 200",
         lambda: None if KEEP else shutil.rmtree(tmp, ignore_errors=True))
