"""The load balancer, for real.
Part A, a static pool (`millions serve lb` alone): a `millions single` backend and a fake one
that answers 500 to everything but /readyz: the fake is ejected; client-sent X-Forwarded-For is
replaced; per-IP rate limiting answers 429 with Retry-After; the admin listener is separate.
Part B, under `millions up` (2 web nodes behind lb1): kill -9 of a web node under GET load loses
no GET; SIGTERM of a node (scale down) under mixed load loses no request; a node added gets
traffic within a few seconds."""
import http.server
import json
import os
import subprocess
import tempfile
import time

from harness import (Checks, RecordingHTTPServer, Server, binary, free_port, http_request,
                     node, parse_json, topology, wait_for)

c = Checks()
tmp = tempfile.mkdtemp(prefix="millions-lb-")
os.chmod(tmp, 0o755)


class Fake(http.server.BaseHTTPRequestHandler):
    seen = []  # (path, [(header, value), ...]) of every request, in order

    def do_GET(self):
        Fake.seen.append((self.path, self.headers.items()))
        ok = self.path == "/readyz"
        body = b'{"ok":true}' if ok else b'{"error":{"code":"boom","message":"boom"}}'
        self.send_response(200 if ok else 500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


fake = RecordingHTTPServer(Fake).serve()
single = Server().start()
lb_port, lb_admin = free_port(), free_port()
topo_a = os.path.join(tmp, "a.toml")


def lb_a(policy="round_robin", rate_limit_rps=20, fake_too=True):
    backends = [node("good", single.port)] + ([node("fake", fake.server_address[1])] if fake_too
                                              else [])
    topology(topo_a, lb={"policy": policy, "consecutive_failures": 3, "base_ejection_ms": 60000,
                         "check_interval_ms": 500, "rate_limit_rps": rate_limit_rps,
                         "rate_limit_burst": 40, "node": [node("lb1", lb_port, admin=lb_admin)]},
             web=backends)


lb_a()
log = open(os.path.join(tmp, "lb_a.log"), "wb")
lb = subprocess.Popen([binary(), "serve", "lb", "--config", topo_a, "--node", "lb1"],
                      stdout=subprocess.DEVNULL, stderr=log)


def ready(port):
    try:
        return http_request("127.0.0.1", port, "GET", "/readyz", timeout=2)[0] == 200
    except OSError:
        return False


try:
    c.check(wait_for(lambda: ready(lb_admin), 20), "the balancer is ready")
    statuses = [http_request("127.0.0.1", lb_port, "GET", "/livez")[0] for _ in range(20)]
    c.check(statuses.count(500) <= 3, f"the failing backend is ejected after 3 failures: {statuses}")
    c.eq(statuses[-10:], [200] * 10, "after ejection every request is served by the good node")
    m = http_request("127.0.0.1", lb_admin, "GET", "/metrics")[2].decode()
    c.check('millions_lb_ejections_total{backend="fake"} 1' in m, "ejection counted")
    c.check('millions_lb_backend_up{backend="good"} 1' in m, "backend_up metric")
    st = parse_json(http_request("127.0.0.1", lb_admin, "GET", "/status")[2])
    c.eq(sorted(b["name"] for b in st["backends"]), ["fake", "good"], "status on the admin port")
    c.eq(http_request("127.0.0.1", lb_port, "GET", "/status")[0], 404,
         "the admin view is not on the public listener (it is proxied and not found)")
    proxied = [h for path, h in Fake.seen if path == "/livez"]
    c.check(proxied and all([v for k, v in h if k.lower() == "x-forwarded-for"] == ["127.0.0.1"]
                            for h in proxied),
            f"X-Forwarded-For set by the balancer on every request the fake saw: {proxied[:1]}")
    # The bucket (burst 40, 20/s) refills in 2 s of silence: that refill is what is measured.
    time.sleep(2.2)
    codes = []
    t0 = time.time()
    for _ in range(120):
        s, h, _ = http_request("127.0.0.1", lb_port, "GET", "/livez")
        codes.append(s)
        if s == 429:
            c.eq(h.get("retry-after"), "1", "429 carries Retry-After")
            break
    served = len(codes) - 1
    c.check(429 in codes and 40 <= served <= 40 + 20 * (time.time() - t0) + 2,
            f"a full burst (40) passes, then 429: {served} served in {time.time() - t0:.2f} s")
    # SIGHUP: another policy, the fake gone, no rate limit; same process, same listener.
    lb_a(policy="p2c", rate_limit_rps=0, fake_too=False)
    lb.send_signal(1)

    def pool():
        st = parse_json(http_request("127.0.0.1", lb_admin, "GET", "/status")[2])
        return st["policy"], [b["name"] for b in st["backends"]]

    wait_for(lambda: pool() == ("p2c", ["good"]), 10)
    c.eq(pool(), ("p2c", ["good"]), "SIGHUP reloads policy and pool")
    c.eq(lb.poll(), None, "the balancer kept running")
    codes = [http_request("127.0.0.1", lb_port, "GET", "/livez")[0] for _ in range(60)]
    c.eq(set(codes), {200}, "no rate limit after the reload")
finally:
    lb.terminate()
    c.eq(lb.wait(timeout=20), 0, "lb drains and exits 0")
    single.stop()
    fake.shutdown()
    c.eq(fake.faults(), [], "the fake backend's handlers raised nothing")

# --- Framing: each malformed request gets 400 and a closed connection, and no backend sees it.
import socket


class Recorder(http.server.BaseHTTPRequestHandler):
    paths = []
    protos = []
    seen = {}  # path: the [(header, value), ...] it came with, the last time

    def do_GET(self):
        if self.path != "/readyz":
            Recorder.paths.append(self.path)
            Recorder.protos.append(self.headers.get("X-Forwarded-Proto"))
            Recorder.seen[self.path] = self.headers.items()
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_POST = do_GET

    def log_message(self, *a):
        pass


rec = RecordingHTTPServer(Recorder).serve()
fport, fadmin, ftls = free_port(), free_port(), free_port()
cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
               check=True, capture_output=True)
topo_c = os.path.join(tmp, "c.toml")
topology(topo_c, http={"header_timeout_ms": 1000},
         lb={"tls_cert": cert, "tls_key": key,
             "node": [node("lb1", fport, admin=fadmin, tls_listen=ftls)]},
         web=[node("rec", rec.server_address[1])])
lbc = subprocess.Popen([binary(), "serve", "lb", "--config", topo_c, "--node", "lb1"],
                       stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "lb_c.log"), "wb"))


def raw(data, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", fport), timeout=timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        closed = True
    except socket.timeout:
        closed = False
    s.close()
    return out, closed


try:
    c.check(wait_for(lambda: ready(fadmin), 20), "the framing balancer is ready")
    out, _ = raw(b"GET /fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    c.check(out.startswith(b"HTTP/1.1 200"), "a well-formed request is proxied")
    c.eq(Recorder.paths, ["/fine"], "the backend saw it")
    # HTTPS on its own listener, with the certificate from the topology.
    import http.client as hc
    import ssl
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    conn = hc.HTTPSConnection("127.0.0.1", ftls, context=ctx, timeout=10)
    conn.request("GET", "/over-tls")
    r = conn.getresponse()
    c.eq((r.status, r.read()), (200, b"ok"), "HTTPS listener proxies")
    c.eq(r.getheader("Strict-Transport-Security"), "max-age=31536000",
         "HSTS on the HTTPS listener's answers")
    conn.close()
    c.check(b"strict-transport-security" not in out.lower(), "no HSTS over plain HTTP")

    def handshake(version, ciphers="DEFAULT:@SECLEVEL=0"):
        """A TLS handshake offering only `version` (and `ciphers`): None, or the error."""
        ctx_v = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx_v.check_hostname = False
        ctx_v.verify_mode = ssl.CERT_NONE
        ctx_v.set_ciphers(ciphers)
        ctx_v.minimum_version = ctx_v.maximum_version = version
        try:
            with socket.create_connection(("127.0.0.1", ftls), timeout=5) as so:
                with ctx_v.wrap_socket(so):
                    return None
        except (ssl.SSLError, ConnectionResetError) as e:
            return str(e)

    c.eq(handshake(ssl.TLSVersion.TLSv1_2), None, "a TLS 1.2 handshake succeeds")
    err = handshake(ssl.TLSVersion.TLSv1_1)
    c.check(err is not None and "PROTOCOL_VERSION" in err.upper(),
            f"a TLS 1.1 handshake is refused by the server (protocol version alert): {err}")
    err = handshake(ssl.TLSVersion.TLSv1_2, "AES128-SHA")
    c.check(err is not None, f"TLS 1.2 without forward secrecy (AES128-SHA) is refused: {err}")
    c.eq(Recorder.protos, ["http", "https"], "X-Forwarded-Proto tells the backend the scheme")
    s = socket.create_connection(("127.0.0.1", ftls), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # plain HTTP on the TLS port
    try:
        junk = s.recv(100)
    except (socket.timeout, ConnectionResetError):
        junk = b""
    s.close()
    c.check(not junk.startswith(b"HTTP/1.1 200"), "plain HTTP is not served on the TLS port")
    # Forwarding headers a client made up never reach a backend: each is replaced by the
    # balancer's own value (X-Forwarded-For, -Proto, Forwarded) or dropped (X-Forwarded-Host,
    # X-Real-IP), as what the backend received shows.
    spoofed = {"X-Forwarded-For": "6.6.6.6", "Forwarded": "for=6.6.6.6;proto=https",
               "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example",
               "X-Real-IP": "6.6.6.6"}
    s = http_request("127.0.0.1", fport, "GET", "/spoofed", headers=spoofed)[0]
    c.eq(s, 200, "a request with spoofed forwarding headers is served")
    got = Recorder.seen.get("/spoofed")
    c.check(got is not None, "the backend received the spoofed request")
    got = got or []

    def received(name):
        return [v for k, v in got if k.lower() == name.lower()]

    c.eq(received("X-Forwarded-For"), ["127.0.0.1"], "X-Forwarded-For replaced by the peer address")
    c.eq(received("X-Forwarded-Proto"), ["http"], "X-Forwarded-Proto replaced by the real scheme")
    c.eq(received("Forwarded"), ['for="127.0.0.1";proto=http'], "Forwarded replaced")
    c.eq(received("X-Forwarded-Host"), [], "X-Forwarded-Host dropped")
    c.eq(received("X-Real-IP"), [], "X-Real-IP dropped")
    c.eq([(k, v) for k, v in got if "6.6.6.6" in v or "evil" in v], [],
         "no spoofed value anywhere in what the backend received")
    Recorder.paths.clear()
    malformed = {
        "CL and TE": b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "duplicate CL": b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na",
        "invalid CL": b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\na",
        "obfuscated TE": b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        "TE list": b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        "obs-fold": b"GET /x HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
        "bare CR": b"GET /x HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
        "NUL": b"GET /x HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
        "absolute target": b"GET http://evil/x HTTP/1.1\r\nHost: x\r\n\r\n",
        "asterisk target": b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
        "no Host": b"GET /x HTTP/1.1\r\n\r\n",
        "space before colon": b"GET /x HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n",
    }
    for name, data in malformed.items():
        out, closed = raw(data)
        c.check(out.startswith(b"HTTP/1.1 400") and closed, f"{name}: 400 and closed: {out[:30]!r}")
    out, closed = raw(b"GET /x HTTP/1.1\r\nHost: x\r\nX-Slow: ", timeout=5)
    c.check(out.startswith(b"HTTP/1.1 408") and closed, f"slow headers: 408 and closed: {out[:30]!r}")
    c.eq(Recorder.paths, [], "no backend saw any malformed request")
    # Slow readers: each client connection's kernel send buffer is bounded (the balancer's
    # default [http] send_buffer_bytes, 128 KiB, which the kernel doubles), not autotuned to MBs.
    s = socket.create_connection(("127.0.0.1", fport), timeout=5)
    port = s.getsockname()[1]
    for _ in range(20):  # the accept may lag the client's connect by a moment
        ss = subprocess.run(["ss", "-tmnH", "state", "established", f"( dport = :{port} )"],
                            capture_output=True, text=True).stdout
        if "tb262144," in ss:
            break
        time.sleep(0.05)
    s.close()
    c.check("tb262144," in ss, f"the balancer's side of a client connection has SO_SNDBUF 2x128 KiB: {ss!r}")
finally:
    lbc.terminate()
    lbc.wait(timeout=20)
    rec.shutdown()
    c.eq(rec.faults(), [], "the recording backend's handlers raised nothing")

# --- Part B: under `millions up`.
ports = {k: free_port() for k in ("w1", "w2", "lb", "lba")}
topo_b = topology(os.path.join(tmp, "b.toml"), up=tmp,
                  web={"threads": 1, "blocking_threads": 2,
                       "node": [node("web1", ports["w1"]), node("web2", ports["w2"])]},
                  http={"withdraw_ms": 2500},
                  lb={"check_interval_ms": 500,
                      "node": [node("lb1", ports["lb"], admin=ports["lba"])]},
                  postgres=[node("pg1", rest=free_port())], workers={"threads": 1})

def run(*args, timeout=120):
    return subprocess.run([binary(), *args], capture_output=True, text=True, timeout=timeout, cwd=tmp)


def load(seconds, mix, out):
    return subprocess.Popen([binary(), "load", "--target", f"http://127.0.0.1:{ports['lb']}",
                             "--users", "6", "--duration", str(seconds), "--mix", mix, "--json", out],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def lb_metrics():
    return http_request("127.0.0.1", ports["lba"], "GET", "/metrics")[2].decode().splitlines()


def sent_to(name):
    return sum(float(line.rsplit(" ", 1)[1]) for line in lb_metrics()
               if line.startswith(f'millions_lb_requests_total{{backend="{name}"'))


def backends_up():
    prefix = "millions_lb_backend_up{backend=\""
    return {line[len(prefix):].split('"')[0]: int(float(line.rsplit(" ", 1)[1]))
            for line in lb_metrics() if line.startswith(prefix)}


def flowing(names, n=100, timeout=15):
    """Waits until the running load has sent n requests through the balancer to each of names."""
    before = {name: sent_to(name) for name in names}
    return wait_for(lambda: all(sent_to(name) - before[name] >= n for name in names), timeout)


def failures(path):
    r = json.load(open(path))
    return r["requests"], {k: v for k, v in r["by_status"].items()
                           if k == "conn_error" or k.startswith("5")}


c.eq(run("up", topo_b, "--detach").returncode, 0, "up with a balancer")
try:
    st = json.loads(run("status", "--json", "--topology", topo_b).stdout)
    c.eq(st["endpoints"]["public"], f"http://127.0.0.1:{ports['lb']}/", "public URL is the balancer")
    p = load(8, "browse", os.path.join(tmp, "kill.json"))
    c.check(flowing(["web1", "web2"]), "the load reaches both web nodes")
    run("chaos", "kill", "web1", "--topology", topo_b)
    p.wait(timeout=60)
    n, bad = failures(os.path.join(tmp, "kill.json"))
    c.check(n > 1000, f"load ran: {n}")
    c.eq(bad, {}, "kill -9 of a web node under GET load: no failed GET")
    # The GETs went pipelined ([lb] pipeline_depth defaults to 8): batched sends, at most one each.
    pipelined = {line.split(" ")[0]: float(line.rsplit(" ", 1)[1]) for line in lb_metrics()
                 if line.startswith("millions_lb_pipelined_")}
    c.check(pipelined.get("millions_lb_pipelined_requests_total", 0) > 1000
            and 0 < pipelined.get("millions_lb_pipelined_sends_total", 0)
            <= pipelined["millions_lb_pipelined_requests_total"],
            f"GETs through the balancer are pipelined: {pipelined}")
    # The supervisor restarts web1 and the balancer's health check takes it back.
    c.check(wait_for(lambda: backends_up() == {"web1": 1, "web2": 1}, 30),
            f"web1 restarted and back in the pool: {backends_up()}")
    p = load(10, "default", os.path.join(tmp, "term.json"))
    c.check(flowing(["web1", "web2"]), "the load reaches both web nodes")
    c.eq(run("scale", "web", "1", "--topology", topo_b).returncode, 0, "scale down (SIGTERM drain)")
    p.wait(timeout=60)
    n, bad = failures(os.path.join(tmp, "term.json"))
    c.eq(bad, {}, "SIGTERM of a web node under mixed load: no failed request")
    up = run("scale", "web", "2", "--topology", topo_b)
    c.eq(up.returncode, 0, f"scale up ({up.stderr.strip()})")
    new = [x for x in json.loads(run("status", "--json", "--topology", topo_b).stdout)["nodes"]
           if x["role"] == "web" and x["name"] != "web1"][0]["name"]
    before = sent_to(new)
    p = load(4, "browse", os.path.join(tmp, "add.json"))
    p.wait(timeout=60)
    got = sent_to(new) - before
    c.check(got > 500, f"the added node {new} gets its share: {got}")
finally:
    c.eq(run("down", "--topology", topo_b).returncode, 0, "down")
c.finish()
