"""`millions up` with [network] mode = "netns" (docs/deploy.md): every node in a network namespace
of its own with an address from 198.18.0.0/15. From the public namespace (where clients are) a
request through the balancer's public address works, and the web node, the database, the cache,
etcd and the balancer's admin listener are unreachable, even for a client that routes through
the router; from the machine (the operator) they answer. `down` removes every namespace and
link; `up` after the runner was killed adopts its nodes in the same namespaces, and `down` after
another crash removes them. Needs root (exits 77, skipped, without)."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from harness import Checks, binary, free_port, http_request, node, topology, wait_for

if os.geteuid() != 0:
    print("skipped: network namespaces need root")
    sys.exit(77)

# Runs in a namespace: a request through the balancer, then a connect to every private address.
PROBE = r"""
import http.client, json, socket, sys
args = json.loads(sys.argv[1])
out = {}
host, port = args["public"]
try:
    c = http.client.HTTPConnection(host, port, timeout=10)
    c.request("POST", "/api/users", body=json.dumps({"handle": args["handle"],
              "password": "password123"}), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    out["signup"] = r.status
    r.read()
    c.request("GET", "/api/users/by-handle/" + args["handle"])
    r = c.getresponse()
    out["lookup"] = [r.status, json.loads(r.read() or b"null")]
except OSError as e:
    out["signup"] = "error: %s" % e
for name, (h, p) in args["private"].items():
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((h, p))
        out[name] = "connected"
    except OSError as e:
        out[name] = type(e).__name__ + ": " + str(e)
    finally:
        s.close()
print(json.dumps(out))
"""

tmp = tempfile.mkdtemp(prefix="millions-netns-")
os.chmod(tmp, 0o755)
topo = os.path.join(tmp, "topology.toml")
lb_admin_port = free_port()
topology(topo, name="netns", up=tmp, network={"mode": "netns"},
         web={"threads": 1, "blocking_threads": 2, "node": [node("web1")]},
         postgres={"pool_size": 2, "node": [node("pg1", rest=free_port())]},
         redis=[node("redis1")],
         lb={"threads": 1, "check_interval_ms": 500, "node": [node("lb1", admin=lb_admin_port)]})
run_dir = os.path.join(tmp, "run")
c = Checks()


def up():
    p = subprocess.run([binary(), "up", topo, "--detach"], capture_output=True, timeout=180,
                       cwd=tmp)
    return p.returncode, (p.stdout + p.stderr).decode()


def status():
    p = subprocess.run([binary(), "status", "--json", "--topology", topo], capture_output=True,
                       timeout=30)
    return json.loads(p.stdout) if p.returncode == 0 else None


def down():
    return subprocess.run([binary(), "down", "--topology", topo], capture_output=True,
                          timeout=120)


def hostport(a):
    h, p = a.rsplit(":", 1)
    return [h, int(p)]


def probe(ns, args):
    p = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", PROBE, json.dumps(args)],
                       capture_output=True, timeout=60)
    return json.loads(p.stdout) if p.returncode == 0 else {"error": p.stderr.decode()}


def leftovers(rec):
    """What of the record still exists: namespaces and the machine's link."""
    names = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    left = [n for n in names if n.startswith(f"mn{rec['slot']}-")]
    if os.path.exists(f"/sys/class/net/{rec['link']}"):
        left.append(rec["link"])
    return left


t0 = time.time()
rc, out = up()
c.eq(rc, 0, "up --detach: " + out[-800:])
print(f"up took {time.time() - t0:.1f} s")
rec = json.load(open(os.path.join(run_dir, "netns.json")))
try:
    log = open(os.path.join(run_dir, "runner.log")).read()
    c.check("network    netns" in log, "up says it chose namespaces")
    st = status()
    addrs = {n["name"]: n["address"] for n in st["nodes"]}
    c.check(all(a.startswith("198.1") for a in addrs.values()),
            f"every node has an address from 198.18.0.0/15: {addrs}")
    public = st["endpoints"]["public"].split("//", 1)[1].rstrip("/")
    lb_admin = rec["hosts"]["lb1"]["priv"] + ":" + str(lb_admin_port)
    # The private side, as the nodes themselves were told.
    private = {"web1": addrs["web1"], "pg1": addrs["pg1"], "redis1": addrs["redis1"],
               "etcd": addrs["etcd"], "lb1 admin": lb_admin,
               # the balancer's own public address on the admin listener's port: refused
               "lb1 admin on its public address": f"{rec['hosts']['lb1']['pub']}:{lb_admin_port}"}
    private = {k: hostport(v) for k, v in private.items()}

    # From the machine (the operator's side) the private addresses answer: they are real.
    s, _, _ = http_request(*hostport(addrs["web1"]), "GET", "/readyz", timeout=5)
    c.eq(s, 200, "the machine reaches web1 at its private address")

    got = probe(rec["public_ns"], {"public": hostport(public), "handle": "nina",
                                   "private": private})
    c.eq(got.get("signup"), 201, f"sign-up through the balancer's public address: {got}")
    c.eq(got.get("lookup", [0, {}])[0], 200, "read back through the balancer")
    for name in private:
        c.check(got.get(name, "connected") != "connected",
                f"{name} unreachable from the public namespace: {got.get(name)}")

    # A client that routes the private range through the router is refused by it as well.
    subprocess.run(["ip", "-n", rec["public_ns"], "route", "add", rec["cidr"], "via",
                    rec["public_gateway"]], check=True)
    got = probe(rec["public_ns"], {"public": hostport(public), "handle": "omar",
                                   "private": private})
    c.eq(got.get("signup"), 201, "the balancer still answers")
    for name in private:
        c.check(got.get(name, "connected") != "connected",
                f"{name} unreachable even routed through the router: {got.get(name)}")
finally:
    d = down()
    c.eq(d.returncode, 0, "down: " + (d.stdout + d.stderr).decode()[-300:])
c.eq(wait_for(lambda: not leftovers(rec), 10) or leftovers(rec), True,
     "down leaves no namespace or link")
c.check(not os.path.exists(os.path.join(run_dir, "netns.json")), "down removes the record")


def kill_runner():
    runner = json.load(open(os.path.join(run_dir, "runner.json")))["pid"]
    os.kill(runner, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{runner}"), 10)


# After a crash: the runner killed, its nodes left running in their namespaces. A new `up`
# adopts them in the same namespaces; after a second crash, `down` stops them and removes the
# namespaces.
rc, out = up()
c.eq(rc, 0, "up again: " + out[-800:])
rec = json.load(open(os.path.join(run_dir, "netns.json")))
before = {n["name"]: n["pid"] for n in status()["nodes"]}
kill_runner()
c.check(bool(leftovers(rec)), "the killed runner left its namespaces")
rc, out = up()
c.eq(rc, 0, "up over a dead runner's namespaces: " + out[-800:])
c.eq(json.load(open(os.path.join(run_dir, "netns.json")))["slot"], rec["slot"],
     "the same slot is reused")
after = {n["name"]: n["pid"] for n in status()["nodes"]}
c.eq(after.get("web1"), before.get("web1"), "web1 adopted where it runs, in its namespace")
kill_runner()
d = down()
c.eq(d.returncode, 0, "down after the runner died: " + (d.stdout + d.stderr).decode()[-300:])
c.check(b"network namespaces" in d.stdout, "down says it removed the namespaces")
c.eq(wait_for(lambda: not leftovers(rec), 10) or leftovers(rec), True,
     "down after a crash leaves no namespace or link")
print(f"took {time.time() - t0:.1f} s")
c.finish()
