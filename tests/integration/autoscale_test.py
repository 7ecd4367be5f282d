"""The runner's autoscaler under `millions up` (docs/autoscale.md), with short intervals and
cool-downs: (1) a burst of edit jobs makes it add a worker, and once the backlog is gone and the
cool-down has passed it removes it, back to min; (2) a rising `millions load` through the
balancer makes it add a web node with no failed request, and when the heavy load stops it
removes it, again with no failed request under a light load. Each scaling is in the decision
list with its reason. `down` leaves nothing running."""
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

from harness import (Checks, admin_auth, bearer, binary, free_port, http_request, node, parse_json,
                     png, topology, wait_for)

tmp = tempfile.mkdtemp(prefix="millions-autoscale-")
os.chmod(tmp, 0o755)  # engines run as another user under a root runner
topo = os.path.join(tmp, "topology.toml")
lb_port = free_port()
topology(
    topo, name="autoscaletest", up=tmp,
    web={"threads": 1, "blocking_threads": 2, "node": [node("web1"), node("web2")]},
    # Checks every 0.3 s, out after two: a draining node (withdraw 1.5 s) leaves before it stops.
    lb={"threads": 1, "check_interval_ms": 300, "fall": 2, "rise": 1, "slow_start_ms": 2000,
        "node": [node("lb1", lb_port, admin=free_port())]},
    http={"withdraw_ms": 1500},
    postgres={"pool_size": 4, "node": [node("pg1", rest=free_port())]},
    nats=[node("nats1", admin=free_port())],
    worker=[node("worker1"), node("worker2")],
    workers={"threads": 1},
    # The web tier scales on CPU (and requests in flight): browsing answers from L1 in well under
    # a millisecond, so a web node's load shows in its CPU long before in its requests in flight
    # or its p99 (p99 is left out: on two shared cores it depends on whatever else runs).
    autoscale={
        "worker": {"enabled": True, "min": 2, "max": 3, "interval_ms": 500, "cooldown_ms": 4000,
                   "backlog_per_worker": 3, "oldest_age_ms": 5000},
        "web": {"enabled": True, "min": 2, "max": 3, "interval_ms": 500, "cooldown_ms": 5000,
                "in_flight_per_node": 4, "cpu": 0.15, "p99_ms": 0},
    })
c = Checks()


def run(*args, timeout=180):
    return subprocess.run([binary(), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=tmp)


def status():
    out = run("status", "--json", "--topology", topo, timeout=30)
    return json.loads(out.stdout) if out.returncode == 0 else None


def running(role):
    st = status()
    return sorted(n["name"] for n in st["nodes"] if n["role"] == role and
                  n["state"] == "running") if st else []


def autoscale():
    admin = open(topo).read().split('admin = "127.0.0.1:')[1].split('"')[0]
    s, _, body = http_request("127.0.0.1", int(admin), "GET", "/api/autoscale",
                              headers=admin_auth(os.path.join(tmp, "run")))
    return parse_json(body) if s == 200 else {}


def decisions(tier):
    return [(d["from"], d["to"], d["reason"], d["error"]) for d in autoscale().get("decisions", [])
            if d["tier"] == tier]


def api(method, path, body=None, headers=None):
    s, _, data = http_request("127.0.0.1", lb_port, method, path, body, headers)
    return s, parse_json(data)


def load(users, seconds, out, *extra):
    """`millions load` through the balancer; any failed request makes it exit 1."""
    out["proc"] = run("load", "--target", f"http://127.0.0.1:{lb_port}", "--users", str(users),
                      "--duration", str(seconds), "--mix", "browse", "--max-errors", "0", *extra,
                      timeout=seconds + 60)


t0 = time.time()
try:
    r = run("up", topo, "--detach")
    c.eq(r.returncode, 0, "up --detach: " + (r.stdout + r.stderr)[-500:])
    print(f"up took {time.time() - t0:.1f} s")
    c.eq(running("worker"), ["worker1", "worker2"], "two workers at start")
    c.eq(running("web"), ["web1", "web2"], "two web nodes at start")

    # (1) A burst of edits: 150 jobs on two one-thread workers is a backlog far over 3/worker.
    s, _ = api("POST", "/api/users", {"handle": "burst", "password": "password123"})
    s, sess = api("POST", "/api/sessions", {"handle": "burst", "password": "password123"})
    token = sess["token"]
    s, _, body = http_request("127.0.0.1", lb_port, "POST", "/api/photos", png(256, 256),
                              {"Content-Type": "image/png", **bearer(token)})
    photo = parse_json(body)
    c.eq(s, 201, f"photo uploaded: {photo}")
    ops = [{"op": "resize", "width": 512, "height": 512}, {"op": "blur", "sigma": 3},
           {"op": "sharpen", "sigma": 1}]
    accepted = []

    def post(n):
        for _ in range(n):
            st, job = api("POST", f"/api/photos/{photo['id']}/edits", {"ops": ops}, bearer(token))
            if st == 202:
                accepted.append(job["id"])

    posters = [threading.Thread(target=post, args=(25,)) for _ in range(6)]
    for p in posters:
        p.start()
    for p in posters:
        p.join()
    c.eq(len(accepted), 150, "every edit accepted")
    c.check(wait_for(lambda: len(running("worker")) == 3, 40, 0.3),
            f"a third worker added: {running('worker')}")
    up = [d for d in decisions("worker") if d[:2] == (2, 3)]
    c.check(up and "backlog" in up[0][2] and not up[0][3], f"the decision says why: {up}")
    c.check(wait_for(lambda: autoscale().get("worker", {}).get("backlog") == 0, 90, 0.5),
            f"the backlog is gone: {autoscale().get('worker')}")
    c.check(wait_for(lambda: len(running("worker")) == 2, 30, 0.5),
            f"back to two workers after the cool-down: {running('worker')}")
    down = [d for d in decisions("worker") if d[:2] == (3, 2)]
    c.check(down and "below half of every bound" in down[0][2], f"the removal says why: {down}")
    jobs = [api("GET", f"/api/jobs/{j}", headers=bearer(token))[1] for j in accepted]
    c.eq(sum(1 for j in jobs if j and j.get("status") == "done"), 150, "every job done")
    print(f"burst done at {time.time() - t0:.1f} s")

    # (2) A rising load: 32 users browsing as fast as they can keep each web node's CPU far
    # above 0.15 of a core (about 0.4 alone on two cores).
    # The burst's posts may have loaded the web tier too: it starts from two nodes, and only the
    # decisions made from here on count.
    c.check(wait_for(lambda: len(running("web")) == 2, 20, 0.3), f"two web nodes: {running('web')}")
    before = len(decisions("web"))
    heavy = {}
    th = threading.Thread(target=load, args=(32, 15, heavy))
    th.start()
    seen = []

    def web_added():
        seen.append(autoscale().get("web"))
        return len(running("web")) == 3

    ok = wait_for(web_added, 30, 0.3)
    c.check(ok,
            f"a third web node added under load: {running('web')}; samples: {seen[-3:]}")
    th.join()
    c.eq(heavy["proc"].returncode, 0,
         "no failed request while the node joins: " + heavy["proc"].stdout[-600:])
    up = [d for d in decisions("web")[before:] if d[:2] == (2, 3)]
    c.check(up and "cpu" in up[0][2], f"the decision says why: {up}")
    # The heavy load ends: under a light one (20 requests/s) the node added is drained and
    # removed.
    light = {}
    th = threading.Thread(target=load, args=(2, 14, light, "--rate", "20", "--connections", "4"))
    th.start()
    c.check(wait_for(lambda: len(running("web")) == 2, 14, 0.3),
            f"back to two web nodes: {running('web')}")
    th.join()
    c.eq(light["proc"].returncode, 0,
         "no failed request while the node drains: " + light["proc"].stdout[-600:])
    c.check(any(d[:2] == (3, 2) for d in decisions("web")[before:]),
            f"removal recorded: {decisions('web')}")
    print(f"web done at {time.time() - t0:.1f} s")
    for d in autoscale().get("decisions", []):
        print(f"  {d['ts']} {d['tier']} {d['from']} -> {d['to']}: {d['reason']} {d['error']}")
finally:
    c.eq(run("down", "--topology", topo, timeout=120).returncode, 0, "down")

    def left():
        return subprocess.run(["pgrep", "-f", tmp], capture_output=True, text=True).stdout.split()

    wait_for(lambda: not left(), 5)
    c.eq(left(), [], "nothing left running")
    shutil.rmtree(tmp, ignore_errors=True)
c.finish()
