"""Credentials on every engine (docs/credentials.md): `millions up` with PostgreSQL under Patroni,
etcd, a Redis cache node, the timeline store (a primary and its replica), NATS, a web node and a
worker. Each engine refuses a client without credentials (one attempt each), the service works
with them (sign-up, upload, an edit job done by the worker), the secrets are files 0600, and no
secret appears in a node's log or in `status --json`."""
import base64
import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time

from harness import (Checks, bearer, binary, free_port, http_request, node, parse_json,
                     patroni_auth, pg_env, png, secret, topology, wait_for)

PSQL = "/usr/lib/postgresql/15/bin/psql"

tmp = tempfile.mkdtemp(prefix="millions-creds-")
os.chmod(tmp, 0o755)  # engines run as another user under a root runner
run_dir = os.path.join(tmp, "run")
topo = os.path.join(tmp, "topology.toml")
web_port, pg_port, rest_port = free_port(), free_port(), free_port()
redis_port, tl_ports = free_port(), (free_port(), free_port())
nats_port, etcd_port = free_port(), free_port()
topology(topo, name="credstest", up=tmp,
         etcd={"listen": f"127.0.0.1:{etcd_port}", "peer_listen": f"127.0.0.1:{free_port()}"},
         web={"threads": 1, "blocking_threads": 2, "node": [node("web1", web_port)]},
         postgres={"pool_size": 4, "node": [node("pg1", pg_port, rest=rest_port)]},
         redis=[node("redis1", redis_port)],
         timeline={"maxmemory": "32mb",
                   "node": [node("timeline1", tl_ports[0]), node("timeline2", tl_ports[1])]},
         nats={"node": [node("nats1", nats_port, admin=free_port())]},
         worker=[node("worker1")], workers={"threads": 1})
c = Checks()


def run(*args, timeout=180, **kw):
    return subprocess.run([binary(), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=tmp, **kw)


def psql(conninfo, sql, env=None):
    return subprocess.run([PSQL, conninfo, "-Atc", sql], capture_output=True, text=True,
                          timeout=30, env=env or {k: v for k, v in os.environ.items()
                                                  if not k.startswith("PG")})


def redis_cli(port, *args, user=None, password=None):
    """redis-cli's answer; the password through REDISCLI_AUTH, never on its command line."""
    env = {k: v for k, v in os.environ.items() if k != "REDISCLI_AUTH"}
    argv = ["redis-cli", "-p", str(port)]
    if user:
        argv += ["--user", user]
        env["REDISCLI_AUTH"] = password
    r = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=10, env=env)
    return (r.stdout + r.stderr).strip()


def status():
    st = run("status", "--json", "--topology", topo, timeout=30)
    return json.loads(st.stdout) if st.returncode == 0 else None


def row(name):
    return next((n for n in (status() or {"nodes": []})["nodes"] if n["name"] == name), None)


def etcd(path, body, token=None):
    """POST to etcd's JSON gateway: (status, parsed body)."""
    s, _, data = http_request("127.0.0.1", etcd_port, "POST", "/v3/" + path, body,
                              {"Authorization": token} if token else None, timeout=10)
    return s, parse_json(data) or {}


def b64(s):
    return base64.b64encode(s.encode()).decode()


def nats(*lines, user=None, password=None):
    """A NATS client's session in the text protocol: CONNECT (with a user when given), the
    lines, then PING; what the server said until PONG or an error closed it."""
    with socket.create_connection(("127.0.0.1", nats_port), timeout=5) as s:
        f = s.makefile("rb")
        f.readline()  # INFO
        connect = {"verbose": False, "pedantic": False}
        if user:
            connect.update(user=user, **{"pass": password})
        wire = "CONNECT " + json.dumps(connect) + "\r\n" + "".join(l + "\r\n" for l in lines)
        s.sendall((wire + "PING\r\n").encode())
        out = []
        while True:
            line = f.readline().decode().strip()
            out.append(line)
            if not line or line == "PONG" or "Authorization Violation" in line:
                return "\n".join(out)


def web(method, path, body=None, headers=None):
    s, _, data = http_request("127.0.0.1", web_port, method, path, body, headers)
    return s, parse_json(data)


try:
    t0 = time.time()
    r = run("up", topo, "--detach")
    c.eq(r.returncode, 0, "up --detach: " + (r.stdout + r.stderr)[-800:])
    print(f"up took {time.time() - t0:.1f} s", flush=True)

    # --- the secrets: a directory only the runner's user reads, files 0600 --------------------
    sdir = os.path.join(run_dir, "secrets")
    c.eq(stat.S_IMODE(os.stat(sdir).st_mode), 0o700, "secrets/ is 0700")
    names = sorted(os.listdir(sdir))
    c.check({"pg_superuser", "pg_replication", "pg_app", "pgpass", "pgpass.app"} <= set(names),
            f"the run's secrets: {names}")
    for name in names:
        c.eq(stat.S_IMODE(os.stat(os.path.join(sdir, name)).st_mode), 0o600, f"{name} is 0600")
    secrets = {n: secret(run_dir, n) for n in names if not n.startswith("pgpass")}
    c.check(all(len(v) == 64 for v in secrets.values()), "each secret is 256 bits (64 hex)")
    c.eq(stat.S_IMODE(os.stat(os.path.join(run_dir, "pg1", "patroni.yml")).st_mode), 0o600,
         "Patroni's configuration (passwords inside) is 0600")

    # --- PostgreSQL: no password, no session; the app's role is no superuser ------------------
    base = f"host=127.0.0.1 port={pg_port} dbname=millions"
    for user in ("postgres", "millions", "replicator"):
        p = psql(f"{base} user={user}", "SELECT 1")
        c.check(p.returncode != 0 and "password" in p.stderr,
                f"psql as {user} without a password is refused: {p.stderr.strip()[:200]}")
    p = psql(f"{base} user=millions password=wrong", "SELECT 1")
    c.check(p.returncode != 0 and "password authentication failed" in p.stderr,
            f"a wrong password is refused: {p.stderr.strip()[:200]}")
    p = psql(f"{base} user=millions", "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
             "WHERE rolname = current_user", env=pg_env(run_dir))
    c.eq((p.returncode, p.stdout.strip()), (0, "f|f|f"),
         f"the app's role logs in with its passfile and is no superuser: {p.stderr[:200]}")
    p = psql(f"{base} user=postgres", "SELECT nspname FROM pg_namespace n JOIN pg_roles r ON "
             "r.oid = n.nspowner WHERE r.rolname = 'millions' UNION ALL SELECT 'db:' || "
             "pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'millions'",
             env=pg_env(run_dir))
    c.eq(sorted(p.stdout.split()), ["db:postgres", "public"],
         f"the app's role owns only its schema, the database is the superuser's: {p.stderr}")
    p = psql(f"{base} user=postgres", "SELECT DISTINCT auth_method FROM pg_hba_file_rules",
             env=pg_env(run_dir))
    c.eq(p.stdout.split(), ["scram-sha-256"], f"pg_hba asks SCRAM of everyone: {p.stderr}")

    # --- Redis: the default user is off; the cache's user may not administer -----------------
    for name, port in (("redis1", redis_port), ("timeline1", tl_ports[0])):
        out = redis_cli(port, "PING")
        c.check(out.startswith("NOAUTH"), f"{name}: PING without AUTH is refused: {out[:120]}")
    cache = {"user": "cache", "password": secrets.get("redis_cache", "")}
    c.eq(redis_cli(redis_port, "PING", **cache), "PONG", "the cache's user answers PING")
    # (DEBUG is off in Redis 7 for everyone; SHUTDOWN would stop the node were it allowed.)
    for cmd in (["CONFIG", "GET", "maxmemory"], ["SHUTDOWN", "NOSAVE"], ["ACL", "LIST"]):
        out = redis_cli(redis_port, *cmd, **cache)
        c.check(out.startswith("NOPERM"), f"the cache's user may not run {cmd[0]}: {out[:120]}")
    tl = {"user": "timeline", "password": secrets.get("redis_timeline", "")}
    out = redis_cli(tl_ports[0], "FLUSHALL", **tl)
    c.check(out.startswith("NOPERM"), f"the timeline's user may not FLUSHALL: {out[:120]}")
    c.check(wait_for(lambda: (row("timeline2") or {}).get("link") == "up", 20, 0.3),
            "the timeline replica authenticates to its primary (link up)")

    # --- etcd: no user, no keys; Patroni's user reads its own keys only ---------------------
    s, body = etcd("kv/range", {"key": b64("/service/"), "range_end": b64("/service0")})
    c.check(s != 200 and "user name is empty" in json.dumps(body),
            f"etcd refuses a range without a user: {s} {str(body)[:160]}")
    s, body = etcd("auth/authenticate", {"name": "patroni", "password": "wrong"})
    c.check(s != 200, f"etcd refuses a wrong password: {s}")
    s, body = etcd("auth/authenticate", {"name": "patroni", "password": secrets.get("etcd_patroni")})
    etcd_token = body.get("token")
    c.check(s == 200 and etcd_token, f"Patroni's etcd user logs in: {s} {str(body)[:160]}")
    s, body = etcd("kv/range", {"key": b64("/service/millions/leader")}, etcd_token)
    c.check(s == 200 and body.get("count") == "1", f"and reads the leader key: {s} {body}")
    s, body = etcd("kv/range", {"key": b64("/elsewhere")}, etcd_token)
    c.check(s != 200 and "permission denied" in json.dumps(body),
            f"but nothing outside its prefix: {s} {str(body)[:160]}")

    # --- NATS: no user, no connection; the web nodes' user cannot take a job ------------------
    out = nats()
    c.check("Authorization Violation" in out, f"NATS refuses a client without a user: {out}")
    out = nats("PUB $JS.API.CONSUMER.MSG.NEXT.MILLIONS_JOBS.workers _INBOX.x 1", "1",
               user="web", password=secrets.get("nats_web"))
    c.check("Permissions Violation for Publish" in out and out.endswith("PONG"),
            f"the web nodes' user may not take a job: {out}")

    # --- Patroni's REST API: writes need its user ---------------------------------------------
    switchover = {"leader": "pg1"}
    s, _, _ = http_request("127.0.0.1", rest_port, "POST", "/switchover", switchover, timeout=10)
    c.eq(s, 401, "Patroni refuses a switchover without credentials")
    s, _, _ = http_request("127.0.0.1", rest_port, "PATCH", "/config", {"pause": True},
                           timeout=10)
    c.eq(s, 401, "and a configuration change")
    s, _, data = http_request("127.0.0.1", rest_port, "POST", "/switchover", switchover,
                              patroni_auth(run_dir), timeout=10)
    c.check(s not in (401, 403, 200),
            f"with them it is considered (one member: nothing to switch to): {s} {data[:120]}")
    s, _, _ = http_request("127.0.0.1", rest_port, "GET", "/cluster", timeout=10)
    c.eq(s, 200, "reads stay open (the data layer and the runner's checks)")

    # --- the service works with its credentials ----------------------------------------------
    s, _ = web("POST", "/api/users", {"handle": "cred_user", "password": "password123"})
    c.eq(s, 201, "sign up through the web node")
    s, sess = web("POST", "/api/sessions", {"handle": "cred_user", "password": "password123"})
    c.eq(s, 201, "log in")
    token = (sess or {}).get("token", "")
    s, photo = web("POST", "/api/photos?caption=creds", png(40, 30),
                   {**bearer(token), "Content-Type": "image/png"})
    c.eq(s, 201, "upload through the web node")
    c.check(((row("redis1") or {}).get("keys") or 0) >= 1,
            "the web node filled the cache through its ACL user")
    s, job = web("POST", f"/api/photos/{(photo or {}).get('id')}/edits",
                 {"ops": [{"op": "grayscale"}]}, bearer(token))
    c.eq(s, 202, "an edit is queued (NATS, as the web nodes' user)")

    def finished():
        s, j = web("GET", f"/api/jobs/{(job or {}).get('id')}", headers=bearer(token))
        return j if s == 200 and j and j.get("status") in ("done", "failed") else None

    done = wait_for(finished, 30, 0.2)
    c.eq((done or {}).get("status"), "done", "the worker takes it and writes its result")

    # --- the runner's own REST write: the chaos matrix restarts PostgreSQL through Patroni -----
    out = os.path.join(tmp, "matrix.json")
    p = run("chaos", "matrix", "--faults", "restart:postgres-primary", "--seconds", "3",
            "--json", out, "--topology", topo, timeout=240)
    try:
        rows = json.load(open(out))["rows"]
    except (OSError, ValueError, KeyError):
        rows = []
    c.check(p.returncode == 0 and len(rows) == 1 and not rows[0]["failed"] and
            rows[0]["lost"] == 0, f"restart:postgres-primary through Patroni's REST API "
            f"(authenticated): {p.stdout[-400:]} {p.stderr[-400:]}")

    # --- no secret in any log or in status --------------------------------------------------
    st = run("status", "--json", "--topology", topo, timeout=30)
    c.eq(st.returncode, 0, "status --json")
    texts = {"status --json": st.stdout + st.stderr}
    logs = os.path.join(run_dir, "logs")
    for name in os.listdir(logs):
        with open(os.path.join(logs, name), errors="replace") as f:
            texts[name] = f.read()
    with open(os.path.join(run_dir, "runner.log"), errors="replace") as f:
        texts["runner.log"] = f.read()
    leaks = [(where, name) for where, text in texts.items() for name, value in secrets.items()
             if value in text]
    c.eq(leaks, [], f"no secret in {sorted(texts)}")
finally:
    d = run("down", "--topology", topo, timeout=120)
    c.eq(d.returncode, 0, "down")
    shutil.rmtree(tmp, ignore_errors=True)
c.finish()
