"""`millions up` on a test topology (2 web nodes, 1 PostgreSQL under Patroni with etcd): one
session works through both web nodes, a killed web node is restarted, a killed database member
comes back with its data, `down` then `up` keeps everything, and `down` leaves nothing running."""
import json
import os
import subprocess
import tempfile
import time

from harness import (Checks, bearer, binary, free_port, http_request, node, parse_json, png,
                     topology, wait_for)


def _request(host, port, method, path, body=None, headers=None):
    status, _, data = http_request(host, port, method, path, body, headers)
    return status, parse_json(data)


tmp = tempfile.mkdtemp(prefix="millions-up-")
os.chmod(tmp, 0o755)
web_ports = [free_port(), free_port()]
topo = os.path.join(tmp, "topology.toml")
topology(topo, name="uptest", up=tmp,
         web={"threads": 1, "blocking_threads": 2,
              "node": [node("web1", web_ports[0]), node("web2", web_ports[1])]},
         postgres={"pool_size": 4, "node": [node("pg1", rest=free_port())]},
         redis=[node("redis1")], workers={"threads": 1})

c = Checks()


def up():
    p = subprocess.Popen([binary(), "up", topo, "--detach"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, cwd=tmp)
    out = p.communicate(timeout=180)[0].decode()
    return p.returncode, out


def status():
    out = subprocess.run([binary(), "status", "--json", "--topology", topo], capture_output=True,
                         timeout=30)
    return json.loads(out.stdout) if out.returncode == 0 else None


def node(st, name):
    return next((n for n in st["nodes"] if n["name"] == name), None)


def wait_running(name, old_pid, timeout=60):
    def restarted():
        st = status()
        n = st and node(st, name)
        return n if n and n["state"] == "running" and n["pid"] not in (0, old_pid) else None

    return wait_for(restarted, timeout, 0.3)


def down():
    return subprocess.run([binary(), "down", "--topology", topo], capture_output=True,
                          timeout=120).returncode


t0 = time.time()
rc, out = up()
c.eq(rc, 0, "up --detach: " + out[-500:])
print(f"up took {time.time() - t0:.1f} s")
try:
    st = status()
    c.check(st is not None, "status --json answers")
    roles = sorted(n["role"] for n in st["nodes"])
    c.eq(roles, ["etcd", "patroni", "postgres", "redis", "web", "web"], "every node listed")
    c.check(all(n["state"] == "running" for n in st["nodes"]), f"all running: {st['nodes']}")
    pgn = next(n for n in st["nodes"] if n["role"] == "postgres")
    c.eq(pgn.get("db_role"), "primary", "postgres is primary")
    c.check(pgn["pid"] > 0, "postmaster pid known")
    for key in ("public", "dashboard"):
        c.check(key in st["endpoints"], f"endpoint {key}")

    # The admin API's token (docs/security.md): made by up, 0600, printed once by the caller of
    # `up --detach`, and refused when missing, wrong or sent from another site.
    run_dir = os.path.join(tmp, "run")
    tok_path = os.path.join(run_dir, "admin.token")
    admin_token = open(tok_path).read().strip()
    c.eq((len(admin_token), oct(os.stat(tok_path).st_mode & 0o777)), (64, "0o600"),
         "RUN_DIR/admin.token: 256 bits as hex, mode 0600")
    c.check(f"#token={admin_token}" in out, "up --detach prints the dashboard URL with the token")
    admin_port = int(st["endpoints"]["dashboard"].rsplit(":", 1)[1].strip("/"))
    c.check(admin_token not in json.dumps(st), "the token is not in status --json")
    s, body = _request("127.0.0.1", admin_port, "GET", "/api/status")
    c.eq((s, body and body["error"]["code"]), (401, "unauthenticated"), "no token: 401")
    s, _ = _request("127.0.0.1", admin_port, "GET", "/api/status", headers=bearer("0" * 64))
    c.eq(s, 401, "a wrong token: 401")
    s, _ = _request("127.0.0.1", admin_port, "POST", "/api/down")
    c.eq(s, 401, "down without the token: 401")
    s, body = _request("127.0.0.1", admin_port, "POST", "/api/nodes/web1/kill",
                       headers={**bearer(admin_token), "Origin": "http://evil.example"})
    c.eq((s, body and body["error"]["code"]), (403, "cross_site"), "a cross-site request: 403")
    s, _ = _request("127.0.0.1", admin_port, "POST", "/api/down",
                    headers={**bearer(admin_token), "Sec-Fetch-Site": "cross-site"})
    c.eq(s, 403, "Sec-Fetch-Site: cross-site: 403")
    s, _ = _request("127.0.0.1", admin_port, "GET", "/api/status", headers=bearer(admin_token))
    c.eq(s, 200, "the token opens the admin API")
    s, _ = _request("127.0.0.1", admin_port, "GET", "/")
    c.eq(s, 200, "the dashboard's page itself needs no token (it asks for it)")

    w1, w2 = ("127.0.0.1", web_ports[0]), ("127.0.0.1", web_ports[1])
    s, _ = _request(*w1, "POST", "/api/users", {"handle": "erin", "password": "password123"})
    c.eq(s, 201, "sign up via web1")
    s, sess = _request(*w1, "POST", "/api/sessions", {"handle": "erin", "password": "password123"})
    token = sess["token"]
    s, me = _request(*w2, "GET", "/api/me", headers=bearer(token))
    c.eq((s, me and me.get("handle")), (200, "erin"), "web1's session on web2")
    s, photo = _request(*w2, "POST", "/api/photos", png(40, 30),
                        {**bearer(token), "Content-Type": "image/png"})
    c.eq(s, 201, "upload via web2")
    s, job = _request(*w1, "POST", f"/api/photos/{photo['id']}/edits",
                      {"ops": [{"op": "grayscale"}]}, bearer(token))
    c.eq(s, 202, "edit via web1")

    # `millions seed`: synthetic users by COPY, who then log in and show their rows through the
    # API like any user; a second run adds nothing and says so.
    seed = [binary(), "seed", "--users", "3000", "--follows", "5", "--photos", "1", "--topology",
            topo]
    p = subprocess.run(seed, capture_output=True, text=True, timeout=120, cwd=tmp)
    c.eq(p.returncode, 0, "seed: " + p.stdout + p.stderr[-300:])
    c.check("seeded 3000 users" in p.stdout, "seed says how many: " + p.stdout)
    s, sess42 = _request(*w1, "POST", "/api/sessions", {"handle": "seed42", "password": "seeded-user"})
    c.eq(s, 201, "a seeded user logs in with the printed password")
    seeded = [_request(*w2, "GET", f"/api/users/by-handle/seed{i}")[1] for i in range(30)]
    c.check(all(u and u.get("handle", "").startswith("seed") for u in seeded), "seeded users read")
    c.check(sum(u["following"] for u in seeded) > 0 and any(u["followers"] for u in seeded),
            f"follow counts: {[(u['following'], u['followers']) for u in seeded[:5]]}")
    with_photo = next((u for u in seeded if u["photos"] > 0), None)
    c.check(with_photo is not None, "some seeded users have photos")
    if with_photo:
        s, page = _request(*w1, "GET", f"/api/users/{with_photo['id']}/photos")
        c.eq((s, len(page["items"])), (200, with_photo["photos"]), "their photo list")
        url = page["items"][0]["url"]
        s, hdrs, data = http_request(*w1, "GET", url)
        c.eq((s, data[:4]), (200, b"\x89PNG"), f"the seeded photo's image {url}")
    p = subprocess.run(seed, capture_output=True, text=True, timeout=120, cwd=tmp)
    c.check(p.returncode == 0 and "seeded 0 users" in p.stdout and "already there" in p.stdout,
            "seed again: nothing twice: " + p.stdout)

    old = node(status(), "web1")["pid"]
    subprocess.run([binary(), "chaos", "kill", "web1", "--topology", topo], check=True,
                   capture_output=True)
    n = wait_running("web1", old)
    c.check(n is not None, "killed web1 is restarted")
    c.check(any("web1: killed by signal 9" in e["text"] for e in status()["events"]),
            "the death is in the event log")
    s, me = _request(*w1, "GET", "/api/me", headers=bearer(token))
    c.eq(s, 200, "web1 serves again")

    rn = node(status(), "redis1")
    c.check(rn.get("keys", 0) >= 1 and rn.get("maxmemory_bytes", 0) > 0,
            f"status shows the cache node's keys and memory bound: {rn}")
    old = rn["pid"]
    subprocess.run([binary(), "chaos", "kill", "redis1", "--topology", topo], check=True,
                   capture_output=True)
    c.check(wait_running("redis1", old) is not None, "killed cache node redis1 is restarted")
    s, me = _request(*w2, "GET", "/api/me", headers=bearer(token))
    c.eq(s, 200, "sessions still work: the cache node's loss is a miss")

    old = node(status(), "pg1")["pid"]
    subprocess.run([binary(), "chaos", "kill", "pg1", "--topology", topo], check=True,
                   capture_output=True)
    c.check(wait_running("pg1", old) is not None, "killed Patroni member restarted")
    s = wait_for(lambda: _request(*w2, "GET", "/api/me", headers=bearer(token))[0] == 200, 60,
                 0.5)
    c.check(s, "the database is back with the session")
    st = status()
    c.eq(node(st, "pg1-pg")["state"], "running", "postgres running again")

    # Scale the web tier at run time: a third node joins and serves; scaling back drains it.
    p = subprocess.run([binary(), "scale", "web", "3", "--topology", topo], capture_output=True,
                       text=True, timeout=120)
    c.eq(p.returncode, 0, "scale web 3: " + p.stderr)
    st = status()
    web3 = next((n for n in st["nodes"] if n["role"] == "web" and n["name"] not in ("web1", "web2")),
                None)
    c.check(web3 is not None and web3["state"] == "running", f"a third web node runs: {web3}")
    if web3:
        host, port = web3["address"].rsplit(":", 1)
        s, me = _request(host, int(port), "GET", "/api/me", headers=bearer(token))
        c.eq(s, 200, "the new node serves the same session")
    p = subprocess.run([binary(), "scale", "web", "2", "--topology", topo], capture_output=True,
                       text=True, timeout=120)
    c.eq(p.returncode, 0, "scale web 2")
    c.eq(sorted(n["name"] for n in status()["nodes"] if n["role"] == "web"), ["web1", "web2"],
         "back to two web nodes")

    c.eq(down(), 0, "down")
    c.check(status() is None, "runner gone after down")
    leaked = []
    for root, _, files in os.walk(run_dir):
        for f in files:
            path = os.path.join(root, f)
            if f.endswith(".log") or root.endswith("logs"):
                with open(path, "rb") as fh:
                    if admin_token.encode() in fh.read():
                        leaked.append(path)
    c.eq(leaked, [], "the admin token is in no log")
    # This time into a file, as a log would take it: the token's file is named, not the token.
    out_path = os.path.join(tmp, "up2.out")
    with open(out_path, "w") as f:
        rc = subprocess.run([binary(), "up", topo, "--detach"], stdout=f, stderr=subprocess.STDOUT,
                            cwd=tmp, timeout=180).returncode
    out = open(out_path).read()
    c.eq(rc, 0, "second up over existing data: " + out[-300:])
    c.check(admin_token not in out and tok_path in out,
            f"up's output into a file names the token's file, never the token: {out[-300:]}")
    c.eq(open(tok_path).read().strip(), admin_token, "the second up reuses the token")
    s, me = _request(*w1, "GET", "/api/me", headers=bearer(token))
    c.eq((s, me and me.get("photos")), (200, 1), "user, session and photo kept across down/up")
    def job_status():
        s, j = _request(*w1, "GET", f"/api/jobs/{job['id']}", headers=bearer(token))
        return j.get("status") if s == 200 else s

    wait_for(lambda: job_status() == "done", 30, 0.3)
    c.eq(job_status(), "done", "the job kept and done")
finally:
    c.eq(down(), 0, "final down")

    def left():
        return subprocess.run(["pgrep", "-f", tmp], capture_output=True, text=True).stdout.split()

    # `down` returns when the runner's admin API stops answering; the runner process itself
    # may still be on its way out.
    wait_for(lambda: not left(), 5)
    c.eq(left(), [], "nothing left running")
c.finish()
