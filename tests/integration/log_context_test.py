"""One request's ids in every layer's log: a balancer in front of a web node on PostgreSQL, all at
log level debug. A sign-up sent through the balancer (it reaches the store) leaves a balancer line
("proxied"), a web line ("request") and store lines ("store op", written on the blocking pool)
that all carry the request id the client got back in X-Request-Id, and one trace id: the
client's (from its traceparent) when it sent one, else the balancer's."""
import json
import os
import subprocess
import tempfile

from harness import (Checks, PgServer, WebNode, binary, free_port, http_request, node, wait_for,
                     web_topology)

c = Checks()
tmp = tempfile.mkdtemp(prefix="millions-logctx-")
pg = PgServer().start()
web_port, lb_port, lb_admin = free_port(), free_port(), free_port()
topo = web_topology(os.path.join(tmp, "topology.toml"), pg.port, [web_port],
                    web={"log_level": "debug"}, name="logctx",
                    extra={"lb": {"threads": 1, "check_interval_ms": 200,
                                  "node": [node("lb1", lb_port, admin=lb_admin)]}})
web = WebNode(topo, "web1", web_port)
lb_log_path = os.path.join(tmp, "lb.log")
lb = None


def lines(path):
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def find(path, msg, request_id):
    return [x for x in lines(path) if x.get("msg") == msg and x.get("request_id") == request_id]


def sign_up(handle, headers):
    s, h, body = http_request("127.0.0.1", lb_port, "POST", "/api/users",
                              {"handle": handle, "password": "password123"}, headers)
    c.eq(s, 201, f"sign-up of {handle} through the balancer")
    return h.get("x-request-id", "")


def proxied_ok(path):
    try:
        return http_request("127.0.0.1", lb_port, "GET", path, timeout=2)[0] == 200
    except OSError:
        return False


def check_layers(rid, trace, what):
    """Every layer's line for rid carries rid and trace (the trace the balancer's line has when
    trace is None). Waits for the lines: a pool thread may write after the answer left."""
    c.check(rid, f"{what}: the answer carries X-Request-Id")
    proxied = wait_for(lambda: find(lb_log_path, "proxied", rid), 5)
    c.check(proxied, f"{what}: the balancer's 'proxied' line carries the request id {rid}")
    if trace is None:
        trace = proxied[0].get("trace_id") if proxied else None
        c.check(trace, f"{what}: the balancer's line carries a trace id")
    else:
        c.check(all(x.get("trace_id") == trace for x in proxied or []),
                f"{what}: the balancer's line carries the client's trace id")
    request = wait_for(lambda: find(web.log_path, "request", rid), 5)
    c.check(request, f"{what}: the web node's 'request' line carries the request id")
    for x in request or []:
        if trace:  # else the balancer's line is missing, and said so above
            c.eq(x.get("trace_id"), trace, f"{what}: the web node's trace id")
        c.eq((x.get("method"), x.get("route"), x.get("status")), ("POST", "/api/users", 201),
             f"{what}: the web node's access line")
        c.check(isinstance(x.get("duration_ms"), (int, float)), f"{what}: duration_ms")
    store = wait_for(lambda: find(web.log_path, "store op", rid), 5)
    c.check(store, f"{what}: a 'store op' line (written on the blocking pool) carries the "
                   "request id")
    c.check(all(x.get("trace_id") == trace for x in store or []),
            f"{what}: every store line carries the trace id")


try:
    web.start()
    lb = subprocess.Popen([binary(), "serve", "lb", "--config", topo, "--node", "lb1"],
                          stdout=subprocess.DEVNULL, stderr=open(lb_log_path, "wb"))
    c.check(wait_for(lambda: proxied_ok("/readyz"), 20), "the balancer is ready, its backend up")

    # The client's traceparent: its trace id follows the request into every layer.
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    rid = sign_up("logctx_traced", {"traceparent": f"00-{trace}-00f067aa0ba902b7-01"})
    check_layers(rid, trace, "with a traceparent")
    # None: the balancer's ids are the ones every layer carries.
    rid = sign_up("logctx_plain", {})
    check_layers(rid, None, "without")
finally:
    if lb and lb.poll() is None:
        lb.terminate()
        lb.wait(timeout=20)
    web.stop()
    pg.stop()
c.finish()
