"""One topology over three hosts (docs/deploy.md, "Beyond one machine"), each host a runner of
its own on this machine: its own working directory (so its own RUN_DIR), its own admin port and
its own address. HOST_TEST_NETWORK says what stands in for the machines:
- netns: a network namespace per host (mht<pid>-h1, -h2, -h3, made and removed by this test),
  each with lo up and one veth on a bridge of the root namespace (mht<pid>br, 198.19.N.1/24, a
  /24 of 198.18.0.0/15 that no address or route here uses; the test reaches the hosts through
  it); the hosts are 198.19.N.11, .12, .13; no default route anywhere. Each runner and every
  CLI call for a host runs under `ip netns exec` its namespace, as on a machine of its own (the
  runners in the topology's loopback mode: they bind the given addresses), and each node must
  run in its host's namespace;
- loopback: the hosts are h1 127.0.0.1, h2 127.0.0.2, h3 127.0.0.3;
- auto (the default): netns when root and `ip netns add` works, else loopback. The test prints
  which it used; the namespaces, links and processes go in a finally block, also on failure.
The same file and commands as on real machines. h1 (dc1): etcd e1,
PostgreSQL pg1, the balancer; h2 (dc2): etcd e2, PostgreSQL pg2, the web node; h3 (dc3, the
witness site): etcd e3 alone.
- `up --host` naming no host fails listing the hosts; a host other than the first refuses to
  start without the first host's secrets;
- each `up --host H` starts that host's nodes only; etcd forms one cluster of three across the
  hosts, Patroni one primary and one streaming replica across h1 and h2;
- h1's status shows its own nodes and the others' as remote; a chaos action on another host's
  node is refused, naming that host;
- a write through the balancer on h1 reaches the web node on h2 and lands in the database;
- `down --host h1` (the loss of dc1) stops h1's nodes only: h2's keep running, etcd keeps a
  quorum (e2 and the witness e3), pg2 is or becomes the primary, and a write through the web
  node on h2 succeeds.
HOST_TEST_BREAK=witness puts e3 on h1 (dc1) instead: `up` warns, and the quorum check after
h1's loss must fail (a check that can fail)."""
import json
import os
import shutil
import subprocess
import tempfile
import time

from harness import Checks, binary, free_port, http_request, parse_json, topology, wait_for

BREAK = os.environ.get("HOST_TEST_BREAK", "")
tmp = tempfile.mkdtemp(prefix="millions-hosts-")
os.chmod(tmp, 0o755)
DC = {"h1": "dc1", "h2": "dc2", "h3": "dc3"}


def netns_works():
    if os.geteuid() != 0 or not shutil.which("ip"):
        return False
    name = f"mht{os.getpid()}-probe"
    if subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode != 0:
        return False
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return True


NETWORK = os.environ.get("HOST_TEST_NETWORK", "auto")
if NETWORK == "auto":
    NETWORK = "netns" if netns_works() else "loopback"
NS = {}  # host -> its network namespace (netns only)
LINKS = []  # links made in this namespace (the bridge, the veths' ends here)


def ipcmd(*args, ns=None, check=True):
    cmd = ["ip", "netns", "exec", ns, "ip", *args] if ns else ["ip", *args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r


def free_subnet():
    """A 198.19.N.0/24 that no address or route of this namespace uses."""
    used = ipcmd("-4", "addr").stdout + ipcmd("-4", "route", "show", "table", "all").stdout
    for n in range(200, 255):
        if f"198.19.{n}." not in used:
            return f"198.19.{n}"
    raise RuntimeError("no free 198.19.N.0/24")


def make_network():
    """One namespace per host on a bridge of this (the root) namespace, which keeps the bridge's
    address (.1) so that the test reaches the hosts; no default route anywhere."""
    tag = f"mht{os.getpid()}"
    net = free_subnet()
    bridge = f"{tag}br"
    ipcmd("link", "add", bridge, "type", "bridge")
    LINKS.append(bridge)
    ipcmd("addr", "add", f"{net}.1/24", "dev", bridge)
    ipcmd("link", "set", bridge, "up")
    ips = {}
    for i, h in enumerate(("h1", "h2", "h3"), 1):
        ns = f"{tag}-{h}"
        ipcmd("netns", "add", ns)
        NS[h] = ns
        here, there = f"{tag}{h}", f"{tag}{h}p"
        ipcmd("link", "add", here, "type", "veth", "peer", "name", there)
        LINKS.append(here)
        ipcmd("link", "set", there, "netns", ns)
        ipcmd("link", "set", here, "master", bridge)
        ipcmd("link", "set", here, "up")
        ipcmd("link", "set", "lo", "up", ns=ns)
        ipcmd("link", "set", there, "name", "eth0", ns=ns)
        ips[h] = f"{net}.{10 + i}"
        ipcmd("addr", "add", f"{ips[h]}/24", "dev", "eth0", ns=ns)
        ipcmd("link", "set", "eth0", "up", ns=ns)
    return ips


def remove_network():
    for h, ns in NS.items():
        # Whatever still runs in the namespace (a node `down` missed) goes with it.
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
        for pid in pids.split():
            try:
                os.kill(int(pid), 9)
            except OSError:
                pass
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    for link in LINKS:
        subprocess.run(["ip", "link", "del", link], capture_output=True)


try:
    IP = make_network() if NETWORK == "netns" else {"h1": "127.0.0.1", "h2": "127.0.0.2",
                                                     "h3": "127.0.0.3"}
except Exception:
    remove_network()
    raise
print(f"network: {NETWORK} ({', '.join(f'{h} {ip}' for h, ip in IP.items())}"
      + (f"; namespaces {', '.join(NS.values())}" if NS else "") + ")", flush=True)
ADMIN = {h: free_port() for h in IP}
for h in IP:
    os.makedirs(os.path.join(tmp, h))


def at(host, port=None):
    return f"{IP[host]}:{port or free_port()}"


def placed(name, host, **keys):
    return {"name": name, "dc": DC[host], "host": host, "listen": at(host), **keys}


e3_host = "h1" if BREAK == "witness" else "h3"
etcd = [placed("e1", "h1", peer_listen=at("h1")), placed("e2", "h2", peer_listen=at("h2")),
        placed("e3", e3_host, peer_listen=at(e3_host))]
pg = [placed("pg1", "h1", rest=at("h1")), placed("pg2", "h2", rest=at("h2"))]
web = placed("web1", "h2")
lb = placed("lb1", "h1", admin=at("h1"))
topo = os.path.join(tmp, "topology.toml")
text_hosts = "".join(f'[[dc]]\nname = "{d}"\n' for d in DC.values()) + "".join(
    f'[[host]]\nname = "{h}"\naddress = "{ip}"\n'
    + ("" if h == "h1" else f'admin = "{ip}:{ADMIN[h]}"\n') for h, ip in IP.items())
topology(topo, deployment={"name": "hosttest"},
         runner={"run_dir": "run", "admin": f"127.0.0.1:{ADMIN['h1']}"},
         etcd={"node": etcd},
         postgres={"pool_size": 4, "failover_wait_ms": 30000,
                   "patroni": {"ttl_s": 10, "loop_wait_s": 1, "retry_timeout_s": 3},
                   "node": pg},
         web={"threads": 1, "blocking_threads": 4, "node": [web]},
         lb={"threads": 1, "check_interval_ms": 500, "node": [lb]},
         workers={"threads": 1})
with open(topo, "a") as f:
    f.write(text_hosts)

c = Checks()
SECRETS = ["pg_superuser", "pg_replication", "pg_app", "etcd_root", "etcd_patroni",
           "etcd_shardmap", "patroni_rest", "nats_web", "nats_worker", "nats_admin", "nats_route",
           "redis_admin", "redis_cache", "redis_replica", "redis_timeline"]


def within(host):
    """The command prefix that runs a command on that host (in its namespace)."""
    return ["ip", "netns", "exec", NS[host]] if host in NS else []


def run(host, *args, timeout=120):
    return subprocess.run([*within(host), binary(), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=os.path.join(tmp, host))


def up(host):
    return subprocess.Popen([*within(host), binary(), "up", topo, "--host", host, "--detach"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=os.path.join(tmp, host))


def hp(address):
    host, port = address.rsplit(":", 1)
    return host, int(port)


def api(address, method, path, body=None, headers=None):
    try:
        s, _, data = http_request(*hp(address), method, path, body, headers, timeout=30)
        return s, parse_json(data)
    except OSError as e:
        return 0, str(e)


def etcd_healthy(member):
    try:
        return http_request(*hp(member["listen"]), "GET", "/health", timeout=3)[0] == 200
    except OSError:
        return False


def etcd_members():
    """The member list as e2 sees it (as root: authentication is on)."""
    with open(os.path.join(tmp, "h2", "run", "secrets", "etcd_root")) as f:
        root = f.read().strip()
    s, auth = api(etcd[1]["listen"], "POST", "/v3/auth/authenticate",
                  {"name": "root", "password": root})
    if s != 200:
        return []
    s, out = api(etcd[1]["listen"], "POST", "/v3/cluster/member/list", {},
                 {"Authorization": auth.get("token", "")})
    return sorted(m.get("name", "") for m in out.get("members", [])) if s == 200 else []


def cluster():
    for member in pg:
        s, out = api(member["rest"], "GET", "/cluster")
        if s == 200:
            return {m["name"]: (m["role"], m.get("state"), m.get("host")) for m in out["members"]}
    return {}


def status(host):
    r = run(host, "status", "--json", "--topology", topo, "--host", host)
    return {n["name"]: n for n in json.loads(r.stdout)["nodes"]} if r.returncode == 0 else {}


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


started = []
try:
    # --host naming no host: a usage error listing the hosts.
    r = run("h1", "up", topo, "--host", "h9", "--detach", timeout=30)
    c.eq(r.returncode, 2, "up --host h9 is a usage error")
    c.check("no such host" in r.stderr and "h1, h2, h3" in r.stderr,
            f"the error lists the hosts: {r.stderr.strip()}")
    # A host other than the first, before the first host's secrets are there: refused.
    r = run("h2", "up", topo, "--host", "h2", "--detach", timeout=30)
    c.check(r.returncode == 1 and "secrets" in r.stderr and "h1" in r.stderr,
            f"h2 refuses to start without h1's secrets: {r.returncode} {r.stderr.strip()}")
    c.check(not os.path.exists(os.path.join(tmp, "h2", "run", "secrets", "etcd_root")),
            "h2 made no secret of its own")

    t0 = time.time()
    started.append("h1")
    p1 = up("h1")  # it waits for its etcd peers: the others start meanwhile
    h1_secrets = os.path.join(tmp, "h1", "run", "secrets")
    c.check(wait_for(lambda: all(os.path.exists(os.path.join(h1_secrets, s)) for s in SECRETS),
                     30), "h1 made every secret of the deployment before starting")
    for h in ("h2", "h3"):
        os.makedirs(os.path.join(tmp, h, "run"), exist_ok=True)
        # The secrets themselves (what `scp -rp` of the directory carries; the passfiles beside
        # them are written from them, maybe at this moment).
        dest = os.path.join(tmp, h, "run", "secrets")
        os.makedirs(dest, mode=0o700, exist_ok=True)
        for name in SECRETS:
            shutil.copy2(os.path.join(h1_secrets, name), dest)
    started += ["h2", "h3"]
    procs = {"h1": p1, "h2": up("h2"), "h3": up("h3")}
    outs = {}
    for h, p in procs.items():
        try:
            out, err = p.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        outs[h] = (p.returncode, out, err)
        c.eq(p.returncode, 0, f"up --host {h}: {out[-800:]} {err[-800:]}")
    print(f"three hosts up in {time.time() - t0:.1f} s", flush=True)
    here = 4 if BREAK == "witness" else 3
    c.check(f"host       h1: {here} of the topology's 7 nodes" in outs["h1"][1],
            f"h1 says which of its nodes it starts: {outs['h1'][1][:400]}")
    if BREAK == "witness":
        c.check("warning: etcd: losing dc1" in outs["h1"][2],
                f"up warns that dc1's loss takes etcd's quorum: {outs['h1'][2][-400:]}")
    else:
        c.check("warning: etcd" not in outs["h1"][2], "no etcd warning: one member per DC")

    # etcd: one cluster of three across the hosts, every member healthy.
    c.eq(etcd_members(), ["e1", "e2", "e3"], "one etcd cluster of three members across hosts")
    c.check(all(etcd_healthy(m) for m in etcd), "every etcd member healthy (a quorum)")

    # Patroni: one primary and one streaming replica, one on each host.
    c.check(wait_for(lambda: sorted(r for r, st, _ in cluster().values()
                                    if st in ("running", "streaming"))
                     == ["leader", "replica"], 90), f"one leader and one replica: {cluster()}")
    c.eq(sorted(h for _, _, h in cluster().values()), sorted([IP["h1"], IP["h2"]]),
         "the members are on h1 and h2")

    # Status on h1: its own nodes with pids, the others' as remote (probed, running).
    s1 = status("h1")
    c.check(all(s1.get(n, {}).get("pid", 0) > 0 and not s1[n].get("remote")
                for n in ("e1", "pg1", "lb1")), f"h1 runs e1, pg1, lb1: {s1}")
    others = sorted(n for n, row in s1.items() if row.get("remote") and row.get("pid") == 0)
    c.eq(others, sorted(["e2", "pg2", "web1"] + (["e3"] if e3_host != "h1" else [])),
         "h1 shows the other hosts' nodes as remote")
    c.check(wait_for(lambda: status("h1").get("web1", {}).get("state") == "running", 10),
            f"h1 sees web1 on h2 running: {status('h1').get('web1')}")
    c.eq(s1.get("web1", {}).get("host"), "h2", "web1's host in h1's status")
    s2 = status("h2")
    c.check(s2.get("web1", {}).get("pid", 0) > 0 and "lb1" in s2 and s2["lb1"].get("remote"),
            f"h2 runs web1 and sees lb1 as remote: {s2.get('web1')} {s2.get('lb1')}")
    if NS:  # each host's nodes run in that host's namespace
        def netns_of(pid):
            try:
                return os.stat(f"/proc/{pid}/ns/net").st_ino
            except OSError:
                return None
        placed_in = {n: netns_of(row["pid"]) for n, row in [*s1.items(), *s2.items()]
                     if row.get("pid", 0) > 0}
        want = {n: os.stat(f"/run/netns/{NS[h]}").st_ino
                for n, h in [("e1", "h1"), ("pg1", "h1"), ("lb1", "h1"), ("e2", "h2"),
                             ("pg2", "h2"), ("web1", "h2")]}
        c.check(all(placed_in.get(n) == ino for n, ino in want.items()),
                f"each node runs in its host's namespace: {placed_in} {want}")
    r = run("h1", "chaos", "kill", "web1", "--topology", topo, "--host", "h1")
    c.check(r.returncode != 0 and "runs on host h2" in r.stderr,
            f"chaos on another host's node is refused, naming it: {r.stderr.strip()}")
    st = run("h1", "status", "--topology", topo, "--host", "h1").stdout
    c.check("HOST" in st and "h2 (remote)" in st, f"status' text shows hosts: {st}")

    # A write through the balancer on h1 reaches the web node on h2.
    # The balancer takes web1 in once its checks of it pass (rise: 2 in a row, 0.5 s apart),
    # which may be a moment after h2's `up` returned: a 503 until then.
    lb_addr = lb["listen"]
    signup = []
    c.check(wait_for(lambda: signup.append(api(lb_addr, "POST", "/api/users",
                                               {"handle": "hoster", "password": "password123"})[0])
                     or signup[-1] in (201, 409), 30, step=0.5),
            f"sign-up through the balancer on h1: {signup}")
    print(f"sign-up through h1's balancer: answers {signup}", flush=True)
    s, sess = api(lb_addr, "POST", "/api/sessions", {"handle": "hoster", "password": "password123"})
    token = sess.get("token", "") if s == 201 else ""
    s, me = api(lb_addr, "PATCH", "/api/me", {"bio": "written across hosts"},
                {"Authorization": f"Bearer {token}"})
    c.eq(s, 200, "a write through h1's balancer")
    s, me = api(web["listen"], "GET", "/api/me", None, {"Authorization": f"Bearer {token}"})
    c.check(s == 200 and me.get("bio") == "written across hosts",
            f"the web node on h2 reads it back: {s} {me}")
    _, _, metrics = http_request(*hp(web["listen"]), "GET", "/metrics")
    served = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.decode().splitlines()
                 if line.startswith("millions_http_requests_total{") and 'route="/api/me"' in line)
    c.check(served >= 2, f"web1 on h2 served the writes: {served}")

    # dc1 lost: `down` on h1 stops h1's nodes only.
    h1_pids = {n: s1[n]["pid"] for n in ("e1", "pg1", "lb1")}
    h2_pids = {n: s2[n]["pid"] for n in ("e2", "pg2", "web1")}
    r = run("h1", "down", "--topology", topo, "--host", "h1", timeout=120)
    started.remove("h1")
    c.eq(r.returncode, 0, f"down on h1: {r.stdout} {r.stderr}")
    c.check(not any(pid_alive(p) for p in h1_pids.values()), f"h1's nodes stopped: {h1_pids}")
    c.check(all(pid_alive(p) for p in h2_pids.values()), f"h2's nodes still run: {h2_pids}")
    c.check(wait_for(lambda: etcd_healthy(etcd[1]), 15),
            "etcd keeps a quorum without dc1 (e2 and the witness e3)")
    c.check(wait_for(lambda: cluster().get("pg2", ("",))[0] == "leader", 60),
            f"pg2 on h2 is the primary: {cluster()}")
    # h2 probes the other hosts' nodes once a second.
    c.check(wait_for(lambda: (lambda s: s.get("web1", {}).get("state") == "running"
                              and s.get("pg1", {}).get("state") == "stopped")(status("h2")), 10),
            f"h2's status: web1 running, pg1 (h1) unreachable: {status('h2')}")

    def write():
        return api(web["listen"], "PATCH", "/api/me", {"bio": "after dc1"},
                   {"Authorization": f"Bearer {token}"})[0] == 200

    c.check(wait_for(write, 45, step=1), "a write through the web node on h2 after dc1's loss")
finally:
    try:
        for h in reversed(started):
            run(h, "down", "--topology", topo, "--host", h, timeout=120)
    finally:
        remove_network()
if not c.failed:  # kept for a look when something failed (each host's run/logs)
    shutil.rmtree(tmp, ignore_errors=True)
c.finish()
