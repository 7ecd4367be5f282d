"""Two balancers per DC behind our DNS, on `millions up` ([network] mode auto: in namespaces
when root, else loopback; DC_TEST_NETWORK overrides): dc1 has lb1 and lb2 and web1,
dc2 has lb3, web2, the database and etcd; region east (Client Subnet 10.1.0.0/16) prefers dc1,
west (10.2.0.0/16) dc2; dns1 in dc2, dns2 in dc1.
- `millions load --region east` resolves the name through our DNS with east's subnet and loads
  dc1's two balancers; lb1 killed (and held down) under load: 0 failed requests, some retried
  onto lb2. `--region west` loads dc2.
- `chaos dc-down dc1` kills every node of dc1 (dns2 with it): east is then sent to dc2 (the
  load resolves through dns1, the one left) and loads it without errors; `chaos dc-up dc1`
  brings dc1 back and east returns to it."""
import json
import os
import subprocess
import tempfile
import time

from harness import Checks, addr, binary, free_port, node, topology, wait_for

tmp = tempfile.mkdtemp(prefix="millions-dc-")
os.chmod(tmp, 0o755)
topo = os.path.join(tmp, "topology.toml")
lb = {n: f"127.0.3.{i}:{free_port()}" for i, n in ((1, "lb1"), (2, "lb2"), (3, "lb3"))}
topology(topo, name="dc", up=tmp, network={"mode": os.environ.get("DC_TEST_NETWORK", "auto")},
         etcd={"node": [dict(node("etcd1", peer_listen=free_port()), dc="dc2")]},
         web={"threads": 1, "blocking_threads": 2,
              "node": [dict(node("web1"), dc="dc1"), dict(node("web2"), dc="dc2")]},
         postgres={"pool_size": 2, "node": [dict(node("pg1", rest=free_port()), dc="dc2")]},
         lb={"threads": 1, "check_interval_ms": 300,
             "node": [dict(name=n, dc="dc1" if n != "lb3" else "dc2", listen=a,
                           admin=addr(free_port())) for n, a in lb.items()]},
         dns={"zone": "dc.test", "check_interval_ms": 200, "fall": 1,
              "region": [{"name": "east", "subnets": ["10.1.0.0/16"], "dcs": ["dc1", "dc2"]},
                         {"name": "west", "subnets": ["10.2.0.0/16"], "dcs": ["dc2", "dc1"]}],
              "node": [dict(node("dns1", admin=free_port()), dc="dc2"),
                       dict(node("dns2", admin=free_port()), dc="dc1")]})
with open(topo, "a") as f:
    f.write('[[dc]]\nname = "dc2"\n')  # name= made dc1
c = Checks()


def run(*args, timeout=120):
    p = subprocess.run([binary(), *args, "--topology", topo], capture_output=True,
                       timeout=timeout, cwd=tmp)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def load(region, duration, json_out, background=False, users=2):
    args = [binary(), "load", "--region", region, "--topology", topo, "--users", str(users),
            "--duration", str(duration), "--mix", "browse", "--json", json_out]
    if background:
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp)
    p = subprocess.run(args, capture_output=True, timeout=duration + 90, cwd=tmp)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def resolved(stderr):
    """The load's resolution line: 'region east (10.1.0.0/16): www.dc.test -> A (dc1) B (dc1)'."""
    return next((line for line in stderr.splitlines() if line.startswith("region ")), "")


t0 = time.time()
p = subprocess.run([binary(), "up", topo, "--detach"], capture_output=True, timeout=180, cwd=tmp)
c.eq(p.returncode, 0, "up --detach: " + (p.stdout + p.stderr).decode()[-800:])
print(f"up took {time.time() - t0:.1f} s")
try:
    # The balancers' addresses as up placed them (moved into namespaces when it chose netns).
    st = json.loads(run("status", "--json")[1])
    lb = {n["name"]: n["address"] for n in st["nodes"] if n["role"] == "lb"}
    rc, out, err = load("west", 1, os.path.join(tmp, "west.json"))
    c.eq(rc, 0, "load --region west: " + err[-400:])
    c.check(f"{lb['lb3']} (dc2)" in resolved(err) and "dc1" not in resolved(err),
            f"west is sent to dc2's balancer: {resolved(err)}")

    # One of dc1's two balancers killed under load: the client retries onto the other.
    p = load("east", 8, os.path.join(tmp, "east.json"), background=True, users=4)
    time.sleep(4)  # past the set-up (sign-ups), into the load
    rc, _, e = run("chaos", "kill", "lb1", "--hold", "60")
    c.eq(rc, 0, "chaos kill lb1: " + e)
    out, err = p.communicate(timeout=120)
    err = err.decode()
    c.eq(p.returncode, 0, "load --region east: " + err[-400:])
    line = resolved(err)
    c.check(f"{lb['lb1']} (dc1)" in line and f"{lb['lb2']} (dc1)" in line,
            f"east is sent to both of dc1's balancers: {line}")
    summary = json.load(open(os.path.join(tmp, "east.json")))
    print("east, lb1 killed under load:", {k: summary[k] for k in ("successes", "errors",
                                                                    "retried")})
    c.eq(summary["errors"], 0, f"no request failed after retry: {summary}")
    c.check(summary["retried"] >= 1, f"requests to the dead balancer were retried: {summary}")
    c.check(summary["successes"] > 50, f"the load went on: {summary['successes']} successes")

    # The whole of dc1 down: DNS sends east to dc2.
    rc, _, e = run("chaos", "dc-down", "dc1")
    c.eq(rc, 0, "chaos dc-down dc1: " + e)

    def east_to_dc2():
        rc, out, err = load("east", 1, os.path.join(tmp, "east2.json"))
        return (rc, err) if f"{lb['lb3']} (dc2)" in resolved(err) else None

    got = wait_for(east_to_dc2, 30, 0.2)
    c.check(got is not None, "after dc-down dc1, east is sent to dc2")
    if got:
        c.eq(got[0], 0, "load --region east on dc2: " + got[1][-400:])
        c.eq(json.load(open(os.path.join(tmp, "east2.json")))["errors"], 0,
             "east's load on dc2: no errors")
    st = json.loads(run("status", "--json")[1])
    states = {n["name"]: n["state"] for n in st["nodes"]}
    c.check(all(states[n] != "running" for n in ("lb1", "lb2", "web1", "dns2")),
            f"every node of dc1 is down: {states}")
    c.check(all(states[n] == "running" for n in ("lb3", "web2", "dns1")),
            f"dc2 runs: {states}")

    rc, _, e = run("chaos", "dc-up", "dc1")
    c.eq(rc, 0, "chaos dc-up dc1: " + e)

    def east_to_dc1():
        rc, out, err = load("east", 1, os.path.join(tmp, "east3.json"))
        return rc == 0 and f"(dc1)" in resolved(err)

    c.check(wait_for(east_to_dc1, 60, 0.3) is not None, "after dc-up dc1, east is back on dc1")
finally:
    rc, _, e = run("down")
    c.eq(rc, 0, "down: " + e)
print(f"took {time.time() - t0:.1f} s")
c.finish()
