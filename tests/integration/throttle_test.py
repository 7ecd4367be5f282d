"""Log-in and sign-up throttling (docs/security.md), each client on its own loopback address.
1. `millions single` (its own memory holds the counters): the 6th wrong password for an account
   from one address within a minute gets 429 with Retry-After, and so does the right one from
   there; the owner's right password from another address logs in (201); a client cannot name
   another address in X-Forwarded-For; the 21st sign-up from one address in a minute gets 429;
   `millions load` with more users than that (each from its own address) sets up; metrics.
2. `millions up` with two web nodes behind a balancer and a cache node: the counters are shared
   (round robin spreads the attempts over both nodes), the client's address comes from the
   balancer's X-Forwarded-For, and with the cache node paused log-ins still work (each node
   counts by itself).
Both parts also check the business metrics (docs/metrics.md, Business): sign-ups, log-ins and
follows counted for the UTC day, and the day's active users; under `up`, both web nodes report
the same global figures from the cache node although round robin split the requests."""
import json
import os
import subprocess
import tempfile
import time

from harness import (Checks, Server, binary, free_port, http_request, node, parse_json, topology,
                     wait_for)

c = Checks()


def req(port, method, path, body=None, source="127.0.0.1", headers=None):
    s, h, data = http_request("127.0.0.1", port, method, path, body, headers, source=source)
    return s, h, parse_json(data)


def login(port, handle, password, source, headers=None):
    return req(port, "POST", "/api/sessions", {"handle": handle, "password": password}, source,
               headers)


def metric(port, line_start):
    text = http_request("127.0.0.1", port, "GET", "/metrics")[2].decode()
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def business(ports, want, what):
    """Polls every web node's /metrics (a scrape asks for a fresh snapshot, read within ~1 s)
    until each reports `want` (line prefix -> value); checks it."""
    def got():
        return [{k: metric(p, k) for k in want} for p in ports]
    seen = wait_for(lambda: (lambda g: g if all(x == want for x in g) else None)(got()), 15, 0.3)
    c.check(seen is not None, f"{what}: business metrics {want}; got {got()}")


def today():
    return time.strftime("%Y-%m-%d", time.gmtime())


def throttle_flow(port, what):
    """The owner signs up; an attacker at 127.0.0.2 guesses; the owner logs in from 127.0.0.3."""
    s, _, _ = req(port, "POST", "/api/users", {"handle": "owner", "password": "right-password"},
                  source="127.0.0.3")
    c.eq(s, 201, f"{what}: the owner signs up")
    got = [login(port, "owner", f"wrong-{i}", "127.0.0.2")[0] for i in range(5)]
    c.eq(got, [401] * 5, f"{what}: five wrong passwords from one address: 401 each")
    s, h, body = login(port, "owner", "wrong-6", "127.0.0.2")
    retry = h.get("retry-after", "")
    c.eq((s, body and body["error"]["code"]), (429, "rate_limited"),
         f"{what}: the 6th wrong password within a minute: 429 rate_limited")
    c.check(retry.isdigit() and 1 <= int(retry) <= 60, f"{what}: with Retry-After in s: {retry!r}")
    s, _, _ = login(port, "owner", "right-password", "127.0.0.2")
    c.eq(s, 429, f"{what}: the right password from the throttled address: 429 too (no hint)")
    s, _, body = login(port, "owner", "right-password", "127.0.0.3")
    c.eq(s, 201, f"{what}: the owner's right password from another address logs in")
    s, _, _ = login(port, "owner", "wrong", "127.0.0.4")
    c.eq(s, 401, f"{what}: another address is not throttled")


# ---- 1. millions single ----
srv = Server()
topology(srv.topology, node={"name": "test", "listen": "127.0.0.1:0", "threads": 2,
                             "blocking_threads": 4},
         auth={})  # the defaults: 5 failures, 20 sign-ups a minute
srv.start()
try:
    throttle_flow(srv.port, "single")
    s, _, _ = login(srv.port, "owner", "right-password", "127.0.0.2",
                    {"X-Forwarded-For": "127.0.0.9"})
    c.eq(s, 429, "a client's own X-Forwarded-For is not believed (no balancer in front)")
    codes = [req(srv.port, "POST", "/api/users", {"handle": f"su{i}", "password": "password123"},
                 source="127.0.0.5")[0] for i in range(21)]
    c.eq(codes[:20], [201] * 20, "20 sign-ups from one address in a minute")
    s, h, body = req(srv.port, "POST", "/api/users", {"handle": "su_x", "password": "password123"},
                     source="127.0.0.5")
    c.eq((codes[20], s, body and body["error"]["code"]), (429, 429, "rate_limited"),
         "the 21st and on: 429")
    c.check(h.get("retry-after", "").isdigit(), f"with Retry-After: {h.get('retry-after')}")
    s, _, _ = req(srv.port, "POST", "/api/users", {"handle": "su_y", "password": "password123"},
                  source="127.0.0.6")
    c.eq(s, 201, "another address signs up")
    # 22 sign-ups (each active on its day), the owner's two log-ins, and one follow.
    _, _, sess = login(srv.port, "owner", "right-password", "127.0.0.3")
    _, _, su0 = req(srv.port, "GET", "/api/users/by-handle/su0")
    s, _, _ = req(srv.port, "POST", f"/api/users/{su0['id']}/follow",
                  headers={"Authorization": "Bearer " + sess["token"]})
    c.eq(s, 204, "the owner follows su0")
    business([srv.port], {'millions_business_events_today{kind="signup"}': 22,
                          'millions_business_events_today{kind="login"}': 2,
                          'millions_business_events_today{kind="follow"}': 1,
                          'millions_business_active_users{window="day"}': 22,
                          f'millions_business_cohort_users{{cohort_day="{today()}"}}': 22},
             "single")
    c.check(metric(srv.port, 'millions_auth_throttled_total{kind="login"}') >= 3,
            "throttled log-ins counted")
    c.check(metric(srv.port, 'millions_auth_throttled_total{kind="signup"}') >= 2,
            "throttled sign-ups counted")
    c.check(metric(srv.port, "millions_auth_login_failures_total") >= 6, "failed log-ins counted")
    # `millions load` signs up more users than one address may: each from its own.
    p = subprocess.run([binary(), "load", "--target", f"http://127.0.0.1:{srv.port}", "--users",
                        "25", "--duration", "1"], capture_output=True, text=True, timeout=120)
    c.eq(p.returncode, 0, f"millions load --users 25 sets up under the default limits: "
         f"{p.stderr[-300:]}")
finally:
    srv.stop()

# ---- 2. millions up: two web nodes behind a balancer, counters on the cache node ----
tmp = tempfile.mkdtemp(prefix="millions-throttle-")
os.chmod(tmp, 0o755)  # engines run as another user under a root runner
topo = os.path.join(tmp, "topology.toml")
lb_port, web1_port = free_port(), free_port()
topology(topo, name="throttletest", up=tmp,
         web={"threads": 1, "blocking_threads": 2,
              "node": [node("web1", web1_port), node("web2")]},
         lb={"threads": 1, "policy": "round_robin", "check_interval_ms": 300,
             "node": [node("lb1", lb_port, admin=free_port())]},
         postgres={"pool_size": 2, "node": [node("pg1", rest=free_port())]},
         redis=[node("redis1")], workers={"threads": 1}, auth={})


def millions(*args, timeout=180):
    return subprocess.run([binary(), *args, "--topology", topo], capture_output=True, text=True,
                          timeout=timeout, cwd=tmp)


p = subprocess.run([binary(), "up", topo, "--detach"], capture_output=True, text=True,
                   timeout=180, cwd=tmp)
c.eq(p.returncode, 0, "up: " + p.stderr[-500:])
try:
    throttle_flow(lb_port, "behind the balancer")
    # Both nodes took attempts (round robin), so the 429 came from counters they share.
    fails = [metric(port, "millions_auth_login_failures_total") for port in
             [web1_port] + [int(n["address"].rsplit(":", 1)[1])
                            for n in json.loads(millions("status", "--json").stdout)["nodes"]
                            if n["name"] == "web2"]]
    c.check(len(fails) == 2 and all(f >= 1 for f in fails),
            f"failures were counted on both web nodes: {fails}")
    web_ports = [web1_port] + [int(n["address"].rsplit(":", 1)[1])
                               for n in json.loads(millions("status", "--json").stdout)["nodes"]
                               if n["name"] == "web2"]
    # Three more users through the balancer: each signs up and logs in; one follows another.
    tokens = []
    for i in range(3):
        s, _, _ = req(lb_port, "POST", "/api/users", {"handle": f"biz{i}", "password": "password123"},
                      source="127.0.0.3")
        _, _, sess = login(lb_port, f"biz{i}", "password123", "127.0.0.3")
        tokens.append(sess and sess.get("token"))
    _, _, owner = req(lb_port, "GET", "/api/users/by-handle/owner")
    s, _, _ = req(lb_port, "POST", f"/api/users/{owner['id']}/follow",
                  headers={"Authorization": "Bearer " + str(tokens[0])})
    c.eq(s, 204, "biz0 follows the owner")
    business(web_ports, {'millions_business_events_today{kind="signup"}': 4,
                         'millions_business_events_today{kind="login"}': 4,
                         'millions_business_events_today{kind="follow"}': 1,
                         'millions_business_active_users{window="day"}': 4,
                         f'millions_business_cohort_users{{cohort_day="{today()}"}}': 4},
             "up, both web nodes")
    own = sum(metric(p, 'millions_business_events_total{kind="signup"}') for p in web_ports)
    c.eq(own, 4, "each node counts its own sign-ups: their sum is the day's")
    # Straight to a web node from an address that is not a balancer: its X-Forwarded-For is not
    # believed, so the throttled address stays throttled.
    s, _, _ = login(web1_port, "owner", "right-password", "127.0.0.2",
                    {"X-Forwarded-For": "127.0.0.77"})
    c.eq(s, 429, "a forwarded address from a non-balancer is ignored")
    # The cache node paused: log-ins are still answered (each node counts by itself).
    c.eq(millions("chaos", "stop", "redis1").returncode, 0, "redis1 paused")
    s, _, _ = login(lb_port, "owner", "right-password", "127.0.0.8")
    c.eq(s, 201, "with the shared store down the owner still logs in")
    s, _, _ = login(lb_port, "owner", "wrong", "127.0.0.8")
    c.eq(s, 401, "and a wrong password is still a 401, not a 5xx")
    c.eq(millions("chaos", "cont", "redis1").returncode, 0, "redis1 resumed")
finally:
    c.eq(millions("down", timeout=120).returncode, 0, "down")
c.finish()
