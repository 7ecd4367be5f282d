"""Prometheus under `millions up` ([prometheus], scraping every second, alerts after 1 s): its
targets API shows every node healthy with dc, tier and node labels; a web node added by
`millions scale` becomes a target; a balancer killed and held down fires NodeDown for it; the
recording rules give the web tier a request rate, also through the runner's graph; the runner is
a target whose host metrics reach Prometheus; `status --json` names Prometheus' URL; and a
topology without [prometheus] runs none (up_test and the others)."""
import json
import os
import shutil
import subprocess
import tempfile
import urllib.parse

from harness import (Checks, admin_auth, binary, free_port, http_request, node, parse_json, topology,
                     wait_for)

tmp = tempfile.mkdtemp(prefix="millions-prom-")
os.chmod(tmp, 0o755)  # engines run as another user under a root runner
topo = os.path.join(tmp, "topology.toml")
prom_port, lb_port = free_port(), free_port()
topology(topo, name="promtest", up=tmp,
         web={"threads": 1, "blocking_threads": 2, "node": [node("web1")]},
         lb={"threads": 1, "check_interval_ms": 300,
             "node": [node("lb1", lb_port, admin=free_port())]},
         postgres={"pool_size": 2, "node": [node("pg1", rest=free_port())]},
         prometheus={"listen": f"127.0.0.1:{prom_port}", "scrape_interval_ms": 1000,
                     "alert_for_s": 1, "retention": "1h"})
c = Checks()


def run(*args, timeout=60):
    return subprocess.run([binary(), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=tmp)


def api(path):
    try:
        s, _, data = http_request("127.0.0.1", prom_port, "GET", path, timeout=5)
    except OSError:
        return None
    return parse_json(data).get("data") if s == 200 else None


def targets(job="millions"):
    d = api("/api/v1/targets?state=active")
    return {t["labels"].get("node"): t for t in (d or {}).get("activeTargets", [])
            if t["labels"].get("job") == job}


def firing(alert, node_name):
    d = api("/api/v1/alerts") or {}
    return [a for a in d.get("alerts", []) if a["labels"].get("alertname") == alert and
            a["labels"].get("node") == node_name and a["state"] == "firing"]


try:
    r = run("up", topo, "--detach", timeout=180)
    c.eq(r.returncode, 0, "up --detach: " + (r.stdout + r.stderr)[-500:])
    st = json.loads(run("status", "--json", "--topology", topo).stdout)
    c.eq(st["endpoints"].get("prometheus"), f"http://127.0.0.1:{prom_port}/",
         "status names Prometheus' URL")
    c.check(any(n["role"] == "prometheus" and n["state"] == "running" for n in st["nodes"]),
            "Prometheus is a running node")
    want = {"etcd": "etcd", "pg1": "patroni", "web1": "web", "lb1": "lb"}

    def all_up():
        t = targets()
        return t if set(t) == set(want) and all(x["health"] == "up" for x in t.values()) else None

    t = wait_for(all_up, 30, 0.5)
    c.check(t, f"every node is a healthy target: {[(k, v['health'], v.get('lastError')) for k, v in targets().items()]}")
    for name, tier in want.items():
        labels = (t or {}).get(name, {}).get("labels", {})
        c.eq((labels.get("dc"), labels.get("tier")), ("dc1", tier), f"{name}'s labels")

    # The runner is a target too: its /metrics is every node's host metrics, with their labels
    # (Patroni's PostgreSQL as a node of its own, as status shows it).
    runner = wait_for(lambda: [x for x in targets("millions_runner").values()
                               if x["health"] == "up"], 20, 0.5)
    c.check(runner, f"the runner is a healthy target: {targets('millions_runner')}")
    for name, role in (("pg1", "patroni"), ("pg1-pg", "postgres")):
        q = urllib.parse.quote(f'node:millions_node_resident_bytes:sum{{node="{name}",role="{role}"}}')
        rss = wait_for(lambda: (api(f"/api/v1/query?query={q}") or {}).get("result"), 20, 0.5)
        c.check(rss and float(rss[0]["value"][1]) > 1e6 and rss[0]["metric"].get("dc") == "dc1",
                f"{name}'s resident memory, through the runner: {rss}")

    # Traffic through the balancer: the recording rule's request rate for the web tier.
    for _ in range(20):
        http_request("127.0.0.1", lb_port, "GET", "/api/users/by-handle/nobody")
    q = urllib.parse.quote('tier:millions_http_requests:rate{tier="web"}')
    rate = wait_for(lambda: (api(f"/api/v1/query?query={q}") or {}).get("result"), 20, 0.5)
    c.check(rate and float(rate[0]["value"][1]) > 0, f"the web tier's request rate: {rate}")
    # The same series as the dashboard's graph, through the runner.
    dash = st["endpoints"]["dashboard"].split("/")[2].rsplit(":", 1)

    def graph():
        s, _, data = http_request(dash[0], int(dash[1]), "GET", "/api/graphs/requests?range=5m",
                                  headers=admin_auth(os.path.join(tmp, "run")))
        g = parse_json(data)
        return g if s == 200 and any(x["label"] == "dc1 web" and x["points"]
                                     for x in g["series"]) else None

    c.check(wait_for(graph, 10, 0.5), f"the runner's graph of requests/s: {graph()}")

    r = run("scale", "web", "2", "--topology", topo, timeout=120)
    c.eq(r.returncode, 0, "scale web 2: " + r.stderr)
    added = wait_for(lambda: [x for n, x in targets().items() if n not in want and
                              x["labels"].get("tier") == "web" and x["health"] == "up"], 20, 0.5)
    c.check(added, f"the added web node is a healthy target: {list(targets())}")

    r = run("chaos", "kill", "lb1", "--hold", "120", "--topology", topo)
    c.eq(r.returncode, 0, "chaos kill lb1 --hold 120: " + r.stderr)
    c.check(wait_for(lambda: targets().get("lb1", {}).get("health") == "down", 15, 0.5),
            "lb1's target is down")
    alert = wait_for(lambda: firing("NodeDown", "lb1"), 20, 0.5)
    c.check(alert, f"NodeDown fires for lb1: {api('/api/v1/alerts')}")
    if alert:
        c.eq((alert[0]["labels"].get("tier"), alert[0]["labels"].get("dc")), ("lb", "dc1"),
             "the alert names the tier and the DC")
    c.check(not firing("NodeDown", "web1"), "no alert for a node that answers")
    # The dashboard's alerts, through the runner.
    s, _, data = http_request(dash[0], int(dash[1]), "GET", "/api/alerts",
                              headers=admin_auth(os.path.join(tmp, "run")))
    shown = parse_json(data)
    c.eq(shown.get("prometheus"), f"http://127.0.0.1:{prom_port}/", "the runner links Prometheus")
    c.check(any(a["name"] == "NodeDown" and a["node"] == "lb1" and a["state"] == "firing"
                for a in shown.get("alerts", [])), f"the runner shows the alert: {shown}")
finally:
    c.eq(run("down", "--topology", topo, timeout=120).returncode, 0, "down")

    def left():
        return subprocess.run(["pgrep", "-f", tmp], capture_output=True, text=True).stdout.split()

    wait_for(lambda: not left(), 5)
    c.eq(left(), [], "nothing left running (Prometheus stopped with the rest)")
    shutil.rmtree(tmp, ignore_errors=True)
c.finish()
