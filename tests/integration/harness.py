"""Helpers for the multi-process tests: start the real binary on a free loopback port with its
own data directory, talk HTTP to it, and stop it. Python's standard library only."""
import base64
import http.client
import http.server
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def binary():
    return os.environ.get("MILLIONS_BIN", os.path.join(ROOT, "build", "millions"))


_ports_given = set()


def secret(run_dir, name):
    """A credential `millions up` generated into RUN/secrets (docs/credentials.md)."""
    with open(os.path.join(run_dir, "secrets", name)) as f:
        return f.read().strip()

def etcd_shardmap(etcd_port, run_dir, path, body):
    """A call to etcd's JSON gateway (/v3/PATH) as the `shardmap` user `millions up` made."""
    def post(p, b, token=None):
        req = urllib.request.Request(f"http://127.0.0.1:{etcd_port}/v3/{p}",
                                     json.dumps(b).encode(), method="POST")
        if token:
            req.add_header("Authorization", token)
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    token = post("auth/authenticate",
                 {"name": "shardmap", "password": secret(run_dir, "etcd_shardmap")})["token"]
    return post(path, body, token)


def etcd_get_json(etcd_port, run_dir, key):
    """The JSON value of `key` in etcd, read as the `shardmap` user; None when absent."""
    kvs = etcd_shardmap(etcd_port, run_dir, "kv/range",
                        {"key": base64.b64encode(key.encode()).decode()}).get("kvs", [])
    return json.loads(base64.b64decode(kvs[0]["value"])) if kvs else None



def patroni_auth(run_dir):
    """The Authorization header for Patroni's REST API writes (docs/credentials.md)."""
    import base64
    token = base64.b64encode(f"millions:{secret(run_dir, 'patroni_rest')}".encode()).decode()
    return {"Authorization": "Basic " + token}


def pg_env(run_dir):
    """The environment for psql (or any libpq client) against `up`'s PostgreSQL: the run's
    passfile, which holds the superuser's (postgres) and the application role's passwords."""
    return {**os.environ, "PGPASSFILE": os.path.join(run_dir, "secrets", "pgpass")}


def free_port():
    """A free loopback port, never one this process was given before: the kernel may hand out
    the same free port twice, and two servers of one test must not collide."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def png(width, height, gray=False, seed=0):
    """A valid PNG of a gradient, made with zlib only."""
    channels = 1 if gray else 3
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            if gray:
                rows.append((x * 7 + y * 3 + seed) & 255)
            else:
                rows += bytes(((x * 5 + seed) & 255, (y * 9) & 255, (x + y) & 255))

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0 if gray else 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(rows)))
            + chunk(b"IEND", b""))


def png_bomb(side=20000):
    """A tiny PNG that claims side x side 1-bit pixels: a decompression bomb."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()

    def chunk(kind, d):
        c = struct.pack(">I", len(d)) + kind + d
        return c + struct.pack(">I", zlib.crc32(kind + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


# --- Topologies: every test and bench writes its topology file with topology(), never TOML text.

_ADDRESS_KEYS = ("listen", "admin", "rest", "peer_listen", "tls_listen")


def addr(port):
    return f"127.0.0.1:{port}"


def node(name, port=None, **keys):
    """One [[ROLE.node]] table: `listen` on port (a free one when None); the other address keys
    (admin, rest, peer_listen, tls_listen) given as ports become loopback addresses too."""
    out = {"name": name, "listen": addr(port or free_port())}
    for k, v in keys.items():
        out[k] = addr(v) if k in _ADDRESS_KEYS and isinstance(v, int) else v
    return out


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML for {v!r}")


def _is_table_array(v):
    return isinstance(v, (list, tuple)) and v and all(isinstance(x, dict) for x in v)


def _toml_table(name, table, out):
    """[name] with its keys, then its sub-tables, then its arrays of tables ([[name.node]])."""
    keys = {k: v for k, v in table.items() if not isinstance(v, dict) and not _is_table_array(v)}
    if keys or not table:
        out.append(f"[{name}]")
        out += [f"{k} = {_toml_value(v)}" for k, v in keys.items()]
    for k, v in table.items():
        if isinstance(v, dict):
            _toml_table(f"{name}.{k}", v, out)
    for k, v in table.items():
        if _is_table_array(v):
            for item in v:
                out.append(f"[[{name}.{k}]]")
                out += [f"{ik} = {_toml_value(iv)}" for ik, iv in item.items()]


def _merge(base, over):
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def topology_text(name=None, up=None, **sections):
    """The TOML of a test topology. Each keyword is a table: a dict (its keys, sub-tables as
    dicts, nodes as a "node" list of node() tables) or a list (the nodes alone), e.g.
    `web={"threads": 1, "node": [node("web1")]}, lb=[node("lb1", admin=free_port())]`.
    name: the [deployment] and one [[dc]]. up: the directory under which `millions up` keeps its
    state ([runner] run_dir, on a free admin port, and one [etcd] member on free ports unless
    etcd= says otherwise); runner= and etcd= tables are merged over those.
    A topology with web nodes (web=, or node= for `single`) gets a generous sign-up throttle
    ([auth] signup_per_minute) unless auth= is given: tests sign up many users from 127.0.0.1,
    as no real client does; log-in throttling keeps its defaults."""
    tables = {}
    if ("web" in sections or "node" in sections) and "auth" not in sections:
        tables["auth"] = {"signup_per_minute": 100000}
    if name:
        tables["deployment"] = {"name": name}
        tables["dc"] = [{"name": "dc1"}]
    if up:
        tables["runner"] = {"run_dir": f"{up}/run", "admin": addr(free_port())}
        tables["etcd"] = {"listen": addr(free_port()), "peer_listen": addr(free_port())}
    for k, v in sections.items():
        v = {"node": list(v)} if isinstance(v, (list, tuple)) else v
        if k == "etcd" and "node" in v:
            tables.pop("etcd", None)  # members of its own instead of the single one
        tables[k] = _merge(tables.get(k, {}), v)
    out = []
    for k, v in tables.items():
        if _is_table_array(v):
            for item in v:
                out.append(f"[[{k}]]")
                out += [f"{ik} = {_toml_value(iv)}" for ik, iv in item.items()]
        else:
            _toml_table(k, v, out)
    return "\n".join(out) + "\n"


def topology(path, **kw):
    """Writes topology_text(**kw) to path; returns path."""
    with open(path, "w") as f:
        f.write(topology_text(**kw))
    return path


def web_lb():
    """Two one-thread web nodes behind one balancer (checking every 0.5 s), on free ports: the
    web= and lb= tables of a topology for `millions up`, as keywords of topology()."""
    return {"web": {"threads": 1, "blocking_threads": 4, "node": [node("web1"), node("web2")]},
            "lb": {"threads": 1, "check_interval_ms": 500,
                   "node": [node("lb1", admin=free_port())]}}


def single_topology(path, header_timeout_ms=10000):
    """A topology for `millions single` (its [node] on any port: --port says which)."""
    return topology(path, node={"name": "test", "listen": "127.0.0.1:0", "threads": 2,
                                "blocking_threads": 4},
                    http={"header_timeout_ms": header_timeout_ms, "drain_timeout_ms": 5000},
                    cache={"policy": "lru", "ttl_ms": 2000}, workers={"threads": 2})


class Server:
    def __init__(self, data_dir=None, header_timeout_ms=10000):
        self.tmp = tempfile.mkdtemp(prefix="millions-test-")
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.topology = os.path.join(self.tmp, "topology.toml")
        single_topology(self.topology, header_timeout_ms)
        self.port = None
        self.proc = None
        self.log_path = os.path.join(self.tmp, "server.log")

    def start(self):
        self.port = free_port()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [binary(), "single", "--topology", self.topology, "--port", str(self.port),
             "--data", self.data_dir],
            stdout=subprocess.DEVNULL, stderr=self.log)
        return self.wait_ready("server", 20)

    def request(self, method, path, body=None, headers=None, timeout=30):
        return http_request("127.0.0.1", self.port, method, path, body, headers, timeout)

    def json(self, method, path, body=None, headers=None):
        status, hdrs, data = self.request(method, path, body, headers)
        return status, hdrs, parse_json(data)

    def wait_ready(self, what, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(what + " exited: " + open(self.log_path).read()[-2000:])
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(what + " not ready: " + open(self.log_path).read()[-2000:])

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode if self.proc else None


def http_request(host, port, method, path, body=None, headers=None, timeout=30, source=None):
    """One request on a fresh connection: (status, lower-cased headers, body bytes). source: the
    local address to connect from (any of 127.0.0.0/8 works on loopback), as another client."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


def parse_json(data):
    try:
        return json.loads(data) if data else None
    except ValueError:
        return data


class Checks:
    """Counts checks and prints the closing 'N passed, N failed' line."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL:", what, file=sys.stderr)
        return cond

    def eq(self, got, want, what):
        return self.check(got == want, f"{what}: got {got!r}, want {want!r}")

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed else 0)


def bearer(token):
    return {"Authorization": "Bearer " + token}


def admin_auth(run_dir):
    """The header that opens the runner's admin API: its token from RUN_DIR/admin.token."""
    with open(os.path.join(run_dir, "admin.token")) as f:
        return bearer(f.read().strip())


def signup_login(srv, handle, password="password123"):
    s, _, user = srv.json("POST", "/api/users", {"handle": handle, "password": password})
    assert s == 201, (s, user)
    s, h, sess = srv.json("POST", "/api/sessions", {"handle": handle, "password": password})
    assert s == 201, (s, sess)
    return user, sess, h


def wait_job(srv, token, job_id, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s, _, job = srv.json("GET", f"/api/jobs/{job_id}", headers=bearer(token))
        if s == 200 and job["status"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    return None


PG_BIN = "/usr/lib/postgresql/15/bin"


class PgServer:
    """A throwaway PostgreSQL on a free loopback port (as `postgres` when we are root)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="millions-pg-")
        self.port = free_port()
        self.as_ = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_:
            subprocess.run(["chown", "postgres", self.dir], check=True)

    def _run(self, args):
        subprocess.run(self.as_ + args, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.STDOUT)

    def start(self):
        data = os.path.join(self.dir, "data")
        if not os.path.exists(data):
            self._run([PG_BIN + "/initdb", "-D", data, "-A", "trust", "-U", "millions", "-E", "UTF8",
                       "--no-sync"])
        self._run([PG_BIN + "/pg_ctl", "-D", data, "-l", os.path.join(self.dir, "log"), "-w",
                   "-t", "30", "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
                   "start"])
        out = subprocess.run([PG_BIN + "/psql", f"host=127.0.0.1 port={self.port} user=millions dbname=postgres",
                              "-qAt", "-c", "SELECT 1 FROM pg_database WHERE datname='millions'"],
                             check=True, capture_output=True).stdout
        if not out.strip():
            subprocess.run([PG_BIN + "/psql", f"host=127.0.0.1 port={self.port} user=millions dbname=postgres",
                            "-qAt", "-c", "CREATE DATABASE millions"], check=True, capture_output=True)
        return self

    def stop(self):
        try:
            self._run([PG_BIN + "/pg_ctl", "-D", os.path.join(self.dir, "data"), "-m", "fast", "-w",
                       "stop"])
        except subprocess.CalledProcessError:
            pass


class WebNode(Server):
    """`millions serve web --config TOPOLOGY --node NAME`, on the port its topology gives."""

    def __init__(self, topology, name, port):
        super().__init__()
        self.topology = topology
        self.name = name
        self.fixed_port = port

    def start(self):
        self.port = self.fixed_port
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([binary(), "serve", "web", "--config", self.topology,
                                      "--node", self.name], stdout=subprocess.DEVNULL,
                                     stderr=self.log)
        return self.wait_ready(self.name)


class WorkerNode(WebNode):
    """`millions serve worker --config TOPOLOGY --node NAME`: ready when its listener's /readyz
    answers 200."""

    def start(self):
        self.port = self.fixed_port
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([binary(), "serve", "worker", "--config", self.topology,
                                      "--node", self.name], stdout=subprocess.DEVNULL,
                                     stderr=self.log)
        return self.wait_ready(self.name)


class NatsServer:
    """A throwaway nats-server with JetStream (file storage in its own directory) on free
    loopback ports; `restart` keeps the ports and the store."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="millions-nats-")
        self.port = free_port()
        self.monitor = free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["nats-server", "-js", "-sd", os.path.join(self.dir, "store"), "-a", "127.0.0.1",
             "-p", str(self.port), "-m", str(self.monitor), "-l", os.path.join(self.dir, "log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if http_request("127.0.0.1", self.monitor, "GET", "/healthz", timeout=2)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("nats-server did not start: " + open(os.path.join(self.dir, "log")).read())

    def jsz(self):
        """JetStream's view: {stream name: messages} from the monitor's /jsz."""
        s, _, data = http_request("127.0.0.1", self.monitor, "GET", "/jsz?streams=true", timeout=5)
        out = {}
        for acc in parse_json(data).get("account_details", []) or []:
            for st in acc.get("stream_detail", []) or []:
                out[st["name"]] = st["state"]["messages"]
        return out

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait()

    def restart(self):
        self.kill()
        return self.start()


class RedisServer:
    """A throwaway redis-server on a free loopback port with its own directory. `aof=True` runs
    it as the timeline store does under `up` (appendonly, everysec, noeviction, no snapshots);
    `replica_of` (a RedisServer) makes it that one's replica. `kill` is SIGKILL; `start` again
    keeps the port and the directory, so an AOF is reloaded."""

    def __init__(self, name="redis", aof=False, replica_of=None):
        self.name = name
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"millions-{name}-")
        self.aof = aof
        self.replica_of = replica_of
        self.proc = None

    def start(self, timeout=15):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--dir", self.dir, "--protected-mode", "no"]
        if self.aof:
            args += ["--appendonly", "yes", "--appendfsync", "everysec",
                     "--maxmemory-policy", "noeviction"]
        else:
            args += ["--appendonly", "no", "--maxmemory", "16mb",
                     "--maxmemory-policy", "allkeys-lru"]
        # A primary starts a replica's full sync at once (Redis waits 5 s by default).
        args += ["--repl-diskless-sync-delay", "0"]
        if self.replica_of:
            args += ["--replicaof", "127.0.0.1", str(self.replica_of.port)]
        self.proc = subprocess.Popen(args, stdout=open(os.path.join(self.dir, "log"), "ab"),
                                     stderr=subprocess.STDOUT)
        if wait_for(lambda: self.cli("PING").strip() == "PONG", timeout, 0.05):
            return self
        raise RuntimeError(f"{self.name} did not start: " + open(os.path.join(self.dir, "log")).read())

    def cli(self, *args):
        try:
            r = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True,
                               text=True, timeout=30)
        except subprocess.TimeoutExpired:
            return ""
        return r.stdout

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait()


def web_topology(path, pg_port, web_ports, web=None, name="test", extra=None):
    """A topology for `serve web` nodes web1.. on one PostgreSQL (no runner): `web` the keys of
    [web], `extra` the further tables (instead of the default [queue] and [cache])."""
    web = {"threads": 2, "blocking_threads": 4, **(web or {}),
           "node": [node(f"web{i + 1}", p) for i, p in enumerate(web_ports)]}
    if extra is None:
        extra = {"queue": {"lease_ms": 5000}, "cache": {"ttl_ms": 1000}}
    return topology(path, name=name, web=web,
                    postgres={"database": "millions", "user": "millions",
                              "node": [node("pg1", pg_port)]},
                    workers={"threads": 1}, **extra)


class Worker(threading.Thread):
    """A thread that keeps the exception that ended it, instead of dying with a traceback on
    stderr that no check reads: `error` is that traceback, None while it runs or when its
    target returned. A daemon, so that a stuck worker cannot keep the test from exiting."""

    def __init__(self, target, *args, name=None):
        super().__init__(target=target, args=args, name=name, daemon=True)
        self.error = None

    def run(self):
        try:
            super().run()
        except BaseException:  # noqa: B902 - every way out is reported
            self.error = traceback.format_exc()
            print(f"thread {self.name} died:\n{self.error}", file=sys.stderr, flush=True)


def worker_faults(threads, timeout=60):
    """Joins the workers (within timeout seconds in all) and lists what went wrong: a worker
    still running, or the exception that ended one. Empty when every worker returned."""
    deadline = time.time() + timeout
    faults = []
    for t in threads:
        t.join(max(0.0, deadline - time.time()))
        if t.is_alive():
            faults.append(f"{t.name}: still running after {timeout} s")
        elif getattr(t, "error", None):
            faults.append(f"{t.name}: {t.error.strip().splitlines()[-1]}")
    return faults


class RecordingHTTPServer(http.server.ThreadingHTTPServer):
    """A test backend whose handler exceptions are kept in `errors` (socketserver would print
    them and carry on), served by a Worker (`serve()`), so a check can ask whether it failed."""

    daemon_threads = True

    def __init__(self, handler):
        super().__init__(("127.0.0.1", 0), handler)
        self.errors = []
        self.worker = None

    def handle_error(self, request, client_address):
        self.errors.append(traceback.format_exc())
        super().handle_error(request, client_address)

    def serve(self):
        self.worker = Worker(self.serve_forever, name=f"backend:{self.server_address[1]}")
        self.worker.start()
        return self

    def faults(self):
        """Handler exceptions, and the serving thread's own, as a list of their last lines."""
        out = [e.strip().splitlines()[-1] for e in self.errors]
        if self.worker and self.worker.error:
            out.append(self.worker.error.strip().splitlines()[-1])
        return out


def wait_for(cond, timeout, step=0.1):
    """cond()'s first true value within timeout seconds, polling every step; else None."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return None
