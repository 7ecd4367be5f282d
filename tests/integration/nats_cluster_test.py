"""`millions up` with a three-server NATS JetStream cluster (stream_replicas = 3) under the whole
job path (etcd, PostgreSQL under Patroni, a web node, a worker), and the timeline store (a Redis
primary with an AOF and its replica).
What it shows: the jobs stream is kept on three servers. The server leading it killed (kill -9)
and held down while three clients post edits: the queue keeps accepting jobs while it is down,
every accepted (202) job ends `done`, a job not accepted was refused with 503, and the server
comes back holding the stream. The first server of the topology killed and the web node
restarted while it is down: the web node starts on another (it is given every server) and jobs
are accepted. The timeline primary killed (kill -9) and restarted by the supervisor: a key
written before the kill is there again (its append-only file), and on its replica."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

from harness import (Checks, Worker, bearer, binary, free_port, http_request, node, parse_json,
                     png, secret, topology, wait_for, worker_faults)

# How long the killed nats-server stays down: past the new leader's election (nats-server 2.9
# elects within 4 to 9 s of losing the leader), with time to accept jobs after it.
HOLD_S = 14

tmp = tempfile.mkdtemp(prefix="millions-natscluster-")
os.chmod(tmp, 0o755)  # engines run as another user under a root runner
topo = os.path.join(tmp, "topology.toml")
web_port = free_port()
servers = [node(f"nats{i}", admin=free_port(), peer_listen=free_port()) for i in (1, 2, 3)]
timelines = [node("timeline1"), node("timeline2")]
topology(topo, name="natscluster", up=tmp,
         web={"threads": 1, "blocking_threads": 2, "node": [node("web1", web_port)]},
         postgres={"pool_size": 4, "node": [node("pg1", rest=free_port())]},
         nats={"stream_replicas": int(os.environ.get("NATS_REPLICAS", "3")), "node": servers},
         worker=[node("worker1")], workers={"threads": 2},
         timeline={"maxmemory": "32mb", "node": timelines})
c = Checks()


def run(*args, timeout=180):
    return subprocess.run([binary(), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=tmp)


def status():
    out = run("status", "--json", "--topology", topo, timeout=30)
    return json.loads(out.stdout) if out.returncode == 0 else None


def row(name):
    st = status()
    return next((n for n in st["nodes"] if n["name"] == name), None) if st else None


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def web(method, path, body=None, headers=None, timeout=30):
    s, _, data = http_request("127.0.0.1", web_port, method, path, body, headers, timeout)
    return s, parse_json(data)


def jobs_stream(server):
    """The jobs stream as `server`'s monitor reports it (config, cluster and state), or None."""
    try:
        s, _, data = http_request("127.0.0.1", port_of(server["admin"]), "GET",
                                  "/jsz?streams=true&config=true", timeout=3)
    except OSError:
        return None
    for acc in (parse_json(data) or {}).get("account_details", []) or []:
        for st in acc.get("stream_detail", []) or []:
            if st["name"] == "MILLIONS_JOBS":
                return st
    return None


def connected(name):
    """The servers a NATS client named `name` (a web node or a worker) is connected to."""
    out = []
    for server in servers:
        try:
            s, _, data = http_request("127.0.0.1", port_of(server["admin"]), "GET",
                                      "/connz?limit=1024", timeout=3)
        except OSError:
            continue
        conns = (parse_json(data) or {}).get("connections", []) or []
        if any(cn.get("name") == name for cn in conns):
            out.append(server["name"])
    return out


def redis(port, *argv):
    """One command to a Redis node over RESP, as the run's admin user (docs/credentials.md);
    its reply (a string, an int or a list of them)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        def encode(args):
            return f"*{len(args)}\r\n" + "".join(f"${len(str(a))}\r\n{a}\r\n" for a in args)

        auth = ("AUTH", "admin", secret(os.path.join(tmp, "run"), "redis_admin"))
        s.sendall((encode(auth) + encode(argv)).encode())
        f = s.makefile("rb")
        assert f.readline().startswith(b"+OK"), "AUTH as admin"

        def reply():
            line = f.readline().decode().rstrip("\r\n")
            kind, rest = line[0], line[1:]
            if kind in "+-":
                return rest
            if kind == ":":
                return int(rest)
            if kind == "$":
                return None if rest == "-1" else f.read(int(rest) + 2)[:-2].decode()
            return [reply() for _ in range(int(rest))]

        return reply()


def try_redis(port, *argv):
    try:
        return redis(port, *argv)
    except OSError:
        return None


try:
    t0 = time.time()
    r = run("up", topo, "--detach")
    c.eq(r.returncode, 0, "up --detach: " + (r.stdout + r.stderr)[-800:])
    print(f"up took {time.time() - t0:.1f} s", flush=True)
    st = status()
    by = {n["name"]: n for n in st["nodes"]}
    c.check(all(by[s["name"]]["state"] == "running" for s in servers), "three nats servers run")
    c.eq((by["timeline1"]["role"], by["timeline1"].get("db_role")), ("timeline", "primary"),
         "timeline1 is the store's primary")
    c.eq((by["timeline2"]["role"], by["timeline2"].get("db_role"), by["timeline2"].get("link")),
         ("timeline", "replica", "up"), "timeline2 its replica, linked")

    # A user, a photo and a first job: the web node has made the stream by now.
    s, _ = web("POST", "/api/users", {"handle": "nora", "password": "password123"})
    s, sess = web("POST", "/api/sessions", {"handle": "nora", "password": "password123"})
    token = sess["token"]
    s, photo = web("POST", "/api/photos?caption=c", png(40, 30),
                   {**bearer(token), "Content-Type": "image/png"})
    c.eq(s, 201, "upload")
    pid = photo["id"]
    edit = {"ops": [{"op": "rotate", "degrees": 90}]}

    def finished(job_id, wait_s):
        """The job once it has ended (a long poll of up to wait_s), else None."""
        try:
            s, job = web("GET", f"/api/jobs/{job_id}?wait_ms={int(wait_s * 1000)}",
                         headers=bearer(token), timeout=wait_s + 10)
        except OSError:
            return None
        return job if s == 200 and job["status"] in ("done", "failed") else None

    s, job = web("POST", f"/api/photos/{pid}/edits", edit, bearer(token))
    c.eq(s, 202, "an edit is accepted")
    c.eq((finished(job["id"], 20) or {}).get("status"), "done", "and done")

    # 1. The stream is kept on three servers: each reports it with three replicas.
    views = [jobs_stream(s) for s in servers]
    c.check(all(v is not None for v in views), "every server holds the jobs stream")
    c.eq([(v or {}).get("config", {}).get("num_replicas") for v in views], [3, 3, 3],
         "three replicas configured")
    cluster = next((v for v in views if v), {}).get("cluster", {})
    c.eq(1 + len(cluster.get("replicas", []) or []), 3, f"a leader and two replicas: {cluster}")
    leader = cluster.get("leader") or "nats1"

    def kill_under_posts(victim, hold_s, why, restart=None):
        """`victim` killed (kill -9) and held down hold_s while three clients post edits (and
        the node `restart` killed too, so that it starts while `victim` is down): jobs are
        accepted while it is down, a job not accepted was refused with 503, every accepted job
        ends done, and it comes back holding the stream."""
        accepted, refused, unreachable = [], [], []  # (job id, time accepted), status, error
        stop_posting = time.time() + hold_s + 4

        def post():
            while time.time() < stop_posting:
                try:
                    s, j = web("POST", f"/api/photos/{pid}/edits", edit, bearer(token),
                               timeout=15)
                except OSError as e:
                    unreachable.append(str(e))
                    time.sleep(0.05)
                    continue
                if s == 202:
                    accepted.append((j["id"], time.time()))
                else:
                    refused.append(s)
                time.sleep(0.05)

        posters = [Worker(post, name=f"poster{i}") for i in range(3)]
        for p in posters:
            p.start()
        time.sleep(1.5)
        old_pid = row(victim)["pid"]
        r = run("chaos", "kill", victim, "--hold", str(hold_s), "--topology", topo, timeout=30)
        c.eq(r.returncode, 0, f"chaos kill {victim}: " + r.stderr)
        killed_at = time.time()
        if restart:
            old_web = row(restart)["pid"]
            r = run("chaos", "kill", restart, "--topology", topo, timeout=30)
            c.eq(r.returncode, 0, f"chaos kill {restart}: " + r.stderr)
            c.check(wait_for(lambda: (lambda n: n and n["state"] == "running" and
                                      n["pid"] not in (0, old_web))(row(restart)), hold_s, 0.2),
                    f"{restart} restarted while {victim} is down")
        c.eq(worker_faults(posters, hold_s + 40), [], "the posters ran to the end")
        c.check(restart or not unreachable, f"the web node answered every post: {unreachable[:3]}")
        c.check(all(s == 503 for s in refused), f"a job not accepted was refused with 503: "
                f"{refused[:5]}")
        down = [j for j, at in accepted if killed_at + 1 < at < killed_at + hold_s]
        times = sorted(at for _, at in accepted)
        gap = max((b - a for a, b in zip(times, times[1:])), default=0)
        print(f"{victim} ({why}) killed: {len(accepted)} jobs accepted ({len(down)} while it "
              f"was down), {len(refused)} refused, {len(unreachable)} unanswered; the longest "
              f"time without an accepted job {gap:.1f} s", flush=True)
        c.check(len(down) >= 3, f"jobs accepted while {victim} ({why}) was down: {len(down)} "
                f"(accepted at {[round(at - killed_at, 1) for at in times][-40:]} s from the kill)")
        left = [j for j, _ in accepted]
        deadline = time.time() + 45
        while left and time.time() < deadline:
            left = [j for j in left if (finished(j, 2) or {}).get("status") != "done"]
        c.eq(len(left), 0, f"every accepted job done ({len(accepted)} accepted, "
             f"{len(refused)} refused, {len(left)} not done)")
        # It comes back: restarted by the supervisor, and holding the stream again.
        back = wait_for(lambda: (lambda n: n if n and n["state"] == "running" and
                                 n["pid"] not in (0, old_pid) else None)(row(victim)), 40, 0.3)
        c.check(back is not None, f"{victim} restarted and ready")

        def caught_up():
            seqs = [((jobs_stream(s) or {}).get("state") or {}).get("last_seq") for s in servers]
            return seqs if None not in seqs and len(set(seqs)) == 1 else None

        c.check(wait_for(caught_up, 20, 0.3), f"{victim} holds the stream up to the others' "
                f"last message: {[(jobs_stream(s) or {}).get('state') for s in servers]}")

    # 2. The stream's leader killed and held down past a new leader's election.
    kill_under_posts(leader, HOLD_S, "the stream's leader")

    # 3. The first server of the topology killed, and the web node restarted while it is down:
    # it was given every server, so it starts on another. (A client given the first server
    # alone would learn the others from it once connected: only a start shows the list.)
    c.eq(len(connected("web1")), 1, f"web1 has one NATS connection: {connected('web1')}")
    kill_under_posts(servers[0]["name"], 12, "the first server", restart="web1")
    c.check(wait_for(lambda: connected("web1"), 10, 0.3), "web1 connected again")

    # 4. The timeline store: a key written before its primary is killed survives (the AOF).
    p1, p2 = port_of(timelines[0]["listen"]), port_of(timelines[1]["listen"])
    c.eq(redis(p1, "ZADD", "tl:1", 0, "x"), 1, "a timeline entry written on the primary")
    c.check(wait_for(lambda: try_redis(p2, "ZRANGE", "tl:1", 0, -1) == ["x"], 5, 0.1),
            "and replicated")
    c.eq(redis(p2, "SET", "k", "v")[:9], "READONLY ", "the replica refuses writes")
    time.sleep(1.5)  # appendfsync everysec: past the next fsync
    old_pid = row("timeline1")["pid"]
    r = run("chaos", "kill", "timeline1", "--topology", topo, timeout=30)
    c.eq(r.returncode, 0, "chaos kill timeline1: " + r.stderr)
    back = wait_for(lambda: (lambda n: n if n and n["state"] == "running" and
                             n["pid"] not in (0, old_pid) else None)(row("timeline1")), 30, 0.2)
    c.check(back is not None, "timeline1 restarted")
    c.eq(try_redis(p1, "ZRANGE", "tl:1", 0, -1), ["x"], "the entry is back from the AOF")
    c.check(wait_for(lambda: (row("timeline2") or {}).get("link") == "up", 20, 0.3),
            "the replica linked to the restarted primary again")
    c.eq(try_redis(p2, "ZRANGE", "tl:1", 0, -1), ["x"], "and the replica still has it")
finally:
    c.eq(run("down", "--topology", topo, timeout=120).returncode, 0, "down")

    def left_running():
        return subprocess.run(["pgrep", "-f", tmp], capture_output=True, text=True).stdout.split()

    wait_for(lambda: not left_running(), 5)
    c.eq(left_running(), [], "nothing left running")
    # redis-server renames its process ("redis-server 127.0.0.1:PORT"): ask its port instead.
    c.eq([t["name"] for t in timelines if try_redis(port_of(t["listen"]), "PING") is not None],
         [], "no timeline node left running")
    shutil.rmtree(tmp, ignore_errors=True)
c.finish()
