"""[lb] upstream_tls under `millions up` (docs/security.md): two web nodes, each also listening
with TLS, behind a balancer that dials their TLS listeners and verifies their certificates
against the run's CA. Requests through the balancer succeed and reach the web nodes over TLS
(the balancer's connections go to the TLS ports, none to the plain ones); the files are private;
no key is in a log or in `status --json`; a web node that presents a certificate the CA did not
sign is never made ready by the runner nor used by the balancer, and is back once its own
certificate is; a node added by `scale` gets a TLS listener and a certificate and takes traffic."""
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import time

from harness import (Checks, binary, free_port, http_request, node, parse_json, topology,
                     wait_for)

c = Checks()
tmp = tempfile.mkdtemp(prefix="millions-lbtls-")
os.chmod(tmp, 0o755)
run_dir = os.path.join(tmp, "run")
tls_dir = os.path.join(run_dir, "tls", "upstream")
ports = {k: free_port() for k in ("w1", "w1t", "w2", "w2t", "lb", "lba")}
topo = topology(os.path.join(tmp, "topology.toml"), up=tmp,
                web={"threads": 1, "blocking_threads": 2,
                     "node": [node("web1", ports["w1"], tls_listen=ports["w1t"]),
                              node("web2", ports["w2"], tls_listen=ports["w2t"])]},
                lb={"check_interval_ms": 500, "upstream_tls": True, "base_ejection_ms": 1000,
                    "node": [node("lb1", ports["lb"], admin=ports["lba"])]},
                postgres=[node("pg1", rest=free_port())], workers={"threads": 1})


def run(*args, timeout=120):
    return subprocess.run([binary(), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=tmp)


def status():
    r = run("status", "--json", "--topology", topo)
    return json.loads(r.stdout) if r.returncode == 0 else {"nodes": []}


def rows(role):
    return {n["name"]: n for n in status()["nodes"] if n["role"] == role}


def lb_status():
    return parse_json(http_request("127.0.0.1", ports["lba"], "GET", "/status")[2])


def backends_up():
    prefix = 'millions_lb_backend_up{backend="'
    text = http_request("127.0.0.1", ports["lba"], "GET", "/metrics")[2].decode()
    return {l[len(prefix):].split('"')[0]: int(float(l.rsplit(" ", 1)[1]))
            for l in text.splitlines() if l.startswith(prefix)}


def through_lb(n, path="/livez"):
    return [http_request("127.0.0.1", ports["lb"], "GET", path)[0] for _ in range(n)]


def balancer_connections(pid):
    """Established TCP connections of process `pid`: [(local port, peer port)]."""
    out = subprocess.run(["ss", "-tnpH", "state", "established"], capture_output=True,
                         text=True).stdout
    conns = []
    for line in out.splitlines():
        if f"pid={pid}," not in line:
            continue
        f = line.split()
        conns.append((int(f[2].rsplit(":", 1)[1]), int(f[3].rsplit(":", 1)[1])))
    return conns


def handshake(port):
    """A TLS handshake with 127.0.0.1:port trusting only the run's CA and checking the address
    against the certificate: "" when it verifies, else the error; None when nothing listens."""
    ctx = ssl.create_default_context(cafile=os.path.join(tls_dir, "ca.pem"))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as so:
            with ctx.wrap_socket(so, server_hostname="127.0.0.1"):
                return ""
    except ssl.SSLError as e:
        return str(e)
    except OSError:
        return None


t0 = time.time()
r = run("up", topo, "--detach", timeout=240)
c.eq(r.returncode, 0, "up --detach with upstream_tls: " + (r.stdout + r.stderr)[-800:])
print(f"up took {time.time() - t0:.1f} s", flush=True)
try:
    # --- the files: a private directory, private keys, public certificates -------------------
    c.eq(stat.S_IMODE(os.stat(tls_dir).st_mode), 0o700, "tls/upstream is 0700")
    c.eq(sorted(os.listdir(tls_dir)),
         ["ca.key", "ca.pem", "web1.key", "web1.pem", "web2.key", "web2.pem"], "the files")
    for name in ("ca.key", "web1.key", "web2.key"):
        c.eq(stat.S_IMODE(os.stat(os.path.join(tls_dir, name)).st_mode), 0o600, f"{name} is 0600")

    # --- the pool: the web nodes' TLS listeners ----------------------------------------------
    web = rows("web")
    c.eq({n: w.get("tls_address") for n, w in web.items()},
         {"web1": f"127.0.0.1:{ports['w1t']}", "web2": f"127.0.0.1:{ports['w2t']}"},
         "status names each web node's TLS listener")
    c.check(wait_for(lambda: lb_status()["backends"] and all(
        b["address"].endswith((f":{ports['w1t']}", f":{ports['w2t']}"))
        for b in lb_status()["backends"]), 15), f"the balancer dials the TLS ports: {lb_status()}")
    st = lb_status()
    c.eq(st.get("upstream_tls"), True, "the balancer's status says upstream_tls")
    c.eq(sorted(b["address"] for b in st["backends"]),
         sorted([f"127.0.0.1:{ports['w1t']}", f"127.0.0.1:{ports['w2t']}"]),
         "the pool is the TLS listeners, not the plain ones")
    c.check(wait_for(lambda: backends_up() == {"web1": 1, "web2": 1}, 15),
            f"both web nodes up by the balancer's checks over TLS: {backends_up()}")

    # --- requests through the balancer --------------------------------------------------------
    codes = through_lb(60)
    c.eq(set(codes), {200}, "60 GETs through the balancer over TLS")
    s, _, user = http_request("127.0.0.1", ports["lb"], "POST", "/api/users",
                              {"handle": "tlsuser", "password": "password123"})
    c.eq(s, 201, f"a sign-up through the balancer: {user[:200]!r}")
    s, _, sess = http_request("127.0.0.1", ports["lb"], "POST", "/api/sessions",
                              {"handle": "tlsuser", "password": "password123"})
    c.eq(s, 201, "a log-in through the balancer")
    codes = through_lb(20, "/api/users/by-handle/tlsuser")
    c.eq(set(codes), {200}, "the user read back through the balancer")
    lb_pid = rows("lb")["lb1"]["pid"]
    conns = balancer_connections(lb_pid)
    peers = {p for _, p in conns}
    c.check({ports["w1t"], ports["w2t"]} <= peers,
            f"the balancer holds keep-alive connections to both TLS ports: {sorted(peers)}")
    c.check(not ({ports["w1"], ports["w2"]} & peers),
            f"and none to a web node's plain port: {sorted(peers)}")
    # The plain listener still serves the runner's checks and scrapes.
    c.eq(http_request("127.0.0.1", ports["w1"], "GET", "/readyz")[0], 200,
         "the plain listener answers /readyz")

    # --- no key anywhere it should not be -------------------------------------------------------
    keys = []
    for name in ("ca.key", "web1.key", "web2.key"):
        body = [l for l in open(os.path.join(tls_dir, name)).read().splitlines()
                if l and not l.startswith("-----")]
        keys.append("".join(body))
    st_text = run("status", "--json", "--topology", topo).stdout
    c.check(not any(k[:40] in st_text for k in keys) and "PRIVATE KEY" not in st_text,
            "no key in status --json")
    logs = ""
    for root, _, files in os.walk(os.path.join(run_dir, "logs")):
        for f in files:
            logs += open(os.path.join(root, f), errors="replace").read()
    logs += open(os.path.join(run_dir, "runner.log"), errors="replace").read() \
        if os.path.exists(os.path.join(run_dir, "runner.log")) else ""
    c.check(not any(k[:40] in logs for k in keys) and "PRIVATE KEY" not in logs,
            "no key in any log")

    # --- a certificate the CA did not sign: refused by the runner and the balancer --------------
    saved = {n: open(os.path.join(tls_dir, n), "rb").read() for n in ("web2.pem", "web2.key")}
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=web2",
                        "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", os.path.join(tls_dir, "web2.key"),
                        "-out", os.path.join(tls_dir, "web2.pem")], capture_output=True)
    c.eq(r.returncode, 0, "a self-signed certificate for web2")
    run("chaos", "kill", "web2", "--topology", topo)
    # The runner restarts web2, which now presents that certificate: its readiness check over
    # TLS fails, so it never runs again in the runner's view and the balancer leaves it out.
    c.check(wait_for(lambda: rows("web")["web2"]["state"] == "starting" and
                     rows("web")["web2"]["pid"], 20), "web2 restarted")
    c.check(wait_for(lambda: handshake(ports["w2t"]) is not None, 20),
            "web2's TLS listener is back, with the stranger's certificate")
    err = handshake(ports["w2t"])
    c.check(err is not None and "CERTIFICATE_VERIFY_FAILED" in err,
            f"which does not verify against the run's CA: {err}")
    c.eq(handshake(ports["w1t"]), "", "web1's does, for 127.0.0.1")
    time.sleep(2)
    c.check(rows("web")["web2"]["state"] != "running",
            f"the runner does not make web2 ready: {rows('web')['web2']['state']}")
    c.check(backends_up().get("web2", 0) == 0,
            f"the balancer sends web2 nothing: {backends_up()}")
    codes = through_lb(40)
    c.eq(set(codes), {200}, "every request is served by web1 meanwhile")
    for n, data in saved.items():
        with open(os.path.join(tls_dir, n), "wb") as f:
            f.write(data)
    run("chaos", "kill", "web2", "--topology", topo)
    c.check(wait_for(lambda: rows("web")["web2"]["state"] == "running", 30),
            "web2 with its own certificate is running again")
    c.check(wait_for(lambda: backends_up() == {"web1": 1, "web2": 1}, 30),
            f"and back in the balancer's pool: {backends_up()}")

    # --- scale: a new node gets a TLS listener and a certificate -------------------------------
    r = run("scale", "web", "3", "--topology", topo)
    c.eq(r.returncode, 0, f"scale web 3 ({r.stderr.strip()})")
    web = rows("web")
    new = [n for n in web if n not in ("web1", "web2")]
    c.eq(len(new), 1, f"one node added: {sorted(web)}")
    if new:
        w = web[new[0]]
        tls_address = w.get("tls_address", "")
        c.check(tls_address and tls_address != w["address"],
                f"{new[0]} has a TLS listener of its own: {w}")
        c.check(os.path.exists(os.path.join(tls_dir, new[0] + ".pem")),
                f"{new[0]} has a certificate")
        c.check(wait_for(lambda: any(b["name"] == new[0] and b["address"] == tls_address
                                     for b in lb_status()["backends"]), 15),
                f"the balancer dials {new[0]}'s TLS listener: {lb_status()}")
        c.check(wait_for(lambda: backends_up().get(new[0]) == 1, 15), f"{new[0]} is up")
        codes = through_lb(60)
        c.eq(set(codes), {200}, "requests through three web nodes")
        text = http_request("127.0.0.1", ports["lba"], "GET", "/metrics")[2].decode()
        c.check(f'millions_lb_requests_total{{backend="{new[0]}",code="200"}}' in text,
                f"{new[0]} served some of them")
finally:
    c.eq(run("down", "--topology", topo).returncode, 0, "down")
    shutil.rmtree(tmp, ignore_errors=True)
c.finish()
