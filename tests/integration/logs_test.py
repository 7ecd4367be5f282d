"""`millions logs` on a running topology (balancer, web node, NATS, a worker, PostgreSQL under
Patroni with etcd; logs at debug): a photo uploaded and edited with one chosen X-Request-Id shows,
under `millions logs --request-id ID --json`, lines of the balancer, the web node and the worker
that ran the job, in time order; --node keeps one node's lines, --level drops what is below it,
engines' lines appear only when their node is named, and -f prints a line written after it
started. No run: exit 1; a bad flag: exit 2."""
import json
import os
import shutil
import subprocess
import tempfile
import time

from harness import (Checks, admin_auth, bearer, binary, free_port, http_request, node, parse_json, png,
                     topology, wait_for)

tmp = tempfile.mkdtemp(prefix="millions-logs-")
os.chmod(tmp, 0o755)  # engines run as another user under a root runner
topo = os.path.join(tmp, "topology.toml")
lb_port = free_port()
topology(topo, name="logstest", up=tmp,
         web={"threads": 1, "blocking_threads": 2, "log_level": "debug", "node": [node("web1")]},
         lb={"threads": 1, "check_interval_ms": 300, "node": [node("lb1", lb_port,
                                                                   admin=free_port())]},
         postgres={"pool_size": 2, "node": [node("pg1", rest=free_port())]},
         nats=[node("nats1", admin=free_port())], worker=[node("worker1")])
c = Checks()
RID = "logs-test-0001"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"  # the edit request's W3C trace


def run(*args, timeout=60):
    return subprocess.run([binary(), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=tmp)


def logs(*args):
    r = run("logs", "--topology", topo, *args)
    return r.returncode, r.stdout, r.stderr


def records(*args):
    rc, out, err = logs("--json", *args)
    c.eq(rc, 0, f"logs {' '.join(args)}: {err}")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def api(method, path, body=None, headers=None):
    s, h, data = http_request("127.0.0.1", lb_port, method, path, body,
                              {"X-Request-Id": RID, **(headers or {})})
    return s, h, parse_json(data)


rc, _, err = logs()
c.eq(rc, 1, f"no run yet: exit 1 ({err.strip()})")
c.check("no run found" in err, "and says so")
rc, _, _ = logs("--level", "loud")
c.eq(rc, 2, "a bad --level: exit 2")
rc, _, err = logs("--since", "yesterday")
c.eq(rc, 2, f"a bad --since: exit 2 ({err.strip()})")

try:
    r = run("up", topo, "--detach", timeout=180)
    c.eq(r.returncode, 0, "up --detach: " + (r.stdout + r.stderr)[-500:])
    st = json.loads(run("status", "--json", "--topology", topo).stdout)
    c.check("prometheus" not in st["endpoints"], "no [prometheus]: no Prometheus endpoint")
    dash = st["endpoints"]["dashboard"].split("/")[2].rsplit(":", 1)
    alerts = parse_json(http_request(dash[0], int(dash[1]), "GET", "/api/alerts",
                                     headers=admin_auth(os.path.join(tmp, "run")))[2])
    c.eq(alerts, {"prometheus": None, "alerts": []}, "no [prometheus]: the dashboard shows none")
    s, _, _ = api("POST", "/api/users", {"handle": "lena", "password": "password123"})
    s, _, sess = api("POST", "/api/sessions", {"handle": "lena", "password": "password123"})
    token = sess["token"]
    s, h, photo = api("POST", "/api/photos", png(40, 30),
                      {**bearer(token), "Content-Type": "image/png"})
    c.eq((s, h.get("x-request-id")), (201, RID), "upload through the balancer, our request id")
    s, _, job = api("POST", f"/api/photos/{photo['id']}/edits", {"ops": [{"op": "grayscale"}]},
                    {**bearer(token), "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"})
    c.eq(s, 202, "edit through the balancer")
    done = wait_for(lambda: api("GET", f"/api/jobs/{job['id']}", headers=bearer(token))[2]
                    .get("status") == "done", 30, 0.2)
    c.check(done, "the worker ran the job")

    def roles_seen():
        return {x["role"] for x in records("--request-id", RID)}

    wait_for(lambda: {"lb", "web", "worker"} <= roles_seen(), 10, 0.3)
    mine = records("--request-id", RID)
    c.eq({x["role"] for x in mine}, {"lb", "web", "worker"},
         "--request-id: lines of the balancer, the web node and the worker")
    c.check(all(x.get("request_id") == RID for x in mine), "every line carries the request id")
    c.eq([x["ts"] for x in mine], sorted(x["ts"] for x in mine), "in time order")
    worker_lines = [x for x in mine if x["role"] == "worker"]
    c.check(any(x["msg"] == "job finished" and x.get("job_id") == int(job["id"])
                for x in worker_lines), f"the worker's line names the job: {worker_lines}")
    c.check(all(x.get("trace_id") == TRACE for x in worker_lines),
            "the worker's lines carry the edit request's trace id")
    by_trace = records("--trace-id", TRACE)
    c.eq({x["role"] for x in by_trace}, {"lb", "web", "worker"},
         "--trace-id: the edit request's lines on every tier")

    rc, out, _ = logs("--request-id", RID)
    c.check(rc == 0 and "lb1" in out and "web1" in out and "worker1" in out and
            "job finished" in out, f"the readable form: {out[:300]}")

    only = records("--node", "worker1")
    c.check(only and {x["node"] for x in only} == {"worker1"}, "--node worker1: its lines only")
    everything = records()
    c.check(any(x["level"] == "debug" for x in everything), "debug lines without --level")
    info = records("--level", "info")
    c.check(info and all(x["level"] in ("info", "warn", "error") for x in info),
            "--level info drops the debug lines")
    c.check(len(info) < len(everything), "--level info shows fewer lines")
    both = records("--node", "web1", "--level", "info", "--request-id", RID)
    c.check(all(x["node"] == "web1" and x["level"] != "debug" for x in both),
            "filters combine with AND")
    c.check(not any(x["node"] == "pg1" for x in everything), "engines' lines left out by default")
    rc, out, _ = logs("--node", "pg1")
    c.check(rc == 0 and out.strip(), "--node pg1: Patroni's own lines")

    # -f: a line written after it started shows up.
    f = subprocess.Popen([binary(), "logs", "--topology", topo, "-f", "--json", "--request-id",
                          "logs-test-follow"], stdout=subprocess.PIPE, text=True, cwd=tmp)
    time.sleep(1)
    http_request("127.0.0.1", lb_port, "GET", "/api/me", headers={"X-Request-Id":
                                                                  "logs-test-follow"})
    time.sleep(1.5)
    f.terminate()
    out = f.communicate(timeout=10)[0]
    c.eq(f.returncode, 0, "-f ends with 0 on SIGTERM")
    followed = [json.loads(line) for line in out.splitlines() if line.strip()]
    c.check({x["role"] for x in followed} >= {"lb", "web"},
            f"-f printed the new request's lines: {followed}")
finally:
    c.eq(run("down", "--topology", topo, timeout=120).returncode, 0, "down")
    shutil.rmtree(tmp, ignore_errors=True)
c.finish()
