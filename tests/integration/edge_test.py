"""The CDN edge (`millions serve edge`) in front of a test origin whose answers and request
counts the test controls. What it shows: a second request is a hit that never reaches the
origin; 100 concurrent misses of one object make one origin fetch; a 2 MB object streams to its
first client and is a hit after; a client's conditional request and range are answered from
the cache; private and Set-Cookie answers are never shared; Vary keeps variants apart; a purge
(by URL, prefix or tag, with the token; refused without it) takes effect at once, and a fill
in flight during a purge is not stored; an unsafe
method invalidates its URL; X-Forwarded-Host never reaches the origin, so it cannot poison a
cached body; with the origin down a fresh object is a hit, a stale one within stale-if-error or
the topology's grace is served STALE (never one with must-revalidate), and an object never
cached answers 502 quickly; the disk tier keeps objects
across a restart of the edge.
Revalidation: a stale object is revalidated with the origin by a conditional request
(If-None-Match from its ETag, If-Modified-Since from its Last-Modified); the origin's 304 (no
body) refreshes the stored object, served as a HIT with its body and a fresh Age, and the next
request is a hit that does not reach the origin; a 200 to the conditional request replaces it.
On disk the 304 writes only a head file beside the object's file, which stays as it was; after
the restart the object is served with the 304's headers and its body.
TLS: the same edge on its tls_listen (the balancer's TLS: 1.2 and 1.3 only, forward-secret
suites) serves the same cache; plain HTTP on that port is not served."""
import hashlib
import http.client
import http.server
import json
import os
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from harness import (Checks, RecordingHTTPServer, binary, free_port, http_request, node, topology,
                     wait_for)
import subprocess

c = Checks()
tmp = tempfile.mkdtemp(prefix="millions-edge-")
BIG = bytes(range(256)) * (8 * 1024)  # 2 MiB
counts = {}
counts_mu = threading.Lock()
origin_down = threading.Event()  # set: every request's connection is dropped unanswered
seen_headers = []
conditionals = []  # (path, If-None-Match, If-Modified-Since, status answered) per validation
LAST_MODIFIED = "Tue, 01 Dec 2026 10:00:00 GMT"


class Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, status, body, headers):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def down(self):
        # A dead origin: the edge's pooled keep-alive connections are cut too, not only new ones.
        if origin_down.is_set():
            self.close_connection = True
            return True
        return False

    def do_POST(self):
        if self.down():
            return
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        self.count()
        self.answer(204, b"", {})

    def count(self):
        with counts_mu:
            counts[self.path] = counts.get(self.path, 0) + 1
            seen_headers.append({k.lower(): v for k, v in self.headers.items()})

    def do_GET(self):
        if self.down():
            return
        p = self.path
        if p == "/readyz":
            return self.answer(200, b"ok", {})
        self.count()
        n = counts[p]
        cc = {"Cache-Control": "public, max-age=60"}
        if p.startswith("/obj/small"):
            return self.answer(200, b"small object " + p.encode(),
                               {**cc, "ETag": '"v1"', "Content-Type": "text/plain",
                                "Accept-Ranges": "bytes"})
        if p == "/obj/slow":
            time.sleep(0.5)
            return self.answer(200, b"slow object", cc)
        if p == "/obj/slowpurge":
            time.sleep(0.8)
            return self.answer(200, b"slowpurge v%d" % n, cc)
        if p == "/obj/big":
            return self.answer(200, BIG, {**cc, "Content-Type": "application/octet-stream"})
        if p == "/obj/short":
            return self.answer(200, b"short v%d" % n,
                               {"Cache-Control": "public, max-age=1, stale-if-error=60"})
        if p == "/obj/graceful":
            return self.answer(200, b"graceful v%d" % n, {"Cache-Control": "public, max-age=1"})
        if p == "/obj/strict":
            return self.answer(200, b"strict v%d" % n,
                               {"Cache-Control": "public, max-age=1, must-revalidate"})
        if p in ("/obj/etag", "/obj/changes"):
            # The ETag changes from the third request to /obj/changes: its validation gets a 200.
            tag = '"e2"' if p == "/obj/changes" and n >= 3 else '"e1"'
            inm = self.headers.get("If-None-Match")
            hdrs = {"Cache-Control": "public, max-age=1", "ETag": tag}
            if inm is not None:
                status = 304 if inm == tag else 200
                conditionals.append((p, inm, None, status))
                if status == 304 and p == "/obj/etag":
                    # New headers and a long freshness: what the restart at the end shows.
                    return self.answer(304, b"", {**hdrs, "Cache-Control": "public, max-age=3600",
                                                  "X-Validated": "yes"})
                if status == 304:
                    return self.answer(304, b"", hdrs)
            return self.answer(200, b"%s body %s" % (p.encode(), tag.encode()), hdrs)
        if p == "/obj/lastmod":
            ims = self.headers.get("If-Modified-Since")
            hdrs = {"Cache-Control": "public, max-age=1", "Last-Modified": LAST_MODIFIED}
            if ims is not None:
                conditionals.append((p, None, ims, 304 if ims == LAST_MODIFIED else 200))
                if ims == LAST_MODIFIED:
                    # Fresh for a while once refreshed: the test's next steps (waiting for the
                    # head file, slow under a sanitizer) must not outlast it.
                    return self.answer(304, b"", {**hdrs, "Cache-Control": "public, max-age=60"})
            return self.answer(200, b"dated body", hdrs)
        if p == "/obj/never":
            return self.answer(200, b"never cached", {"Cache-Control": "no-store"})
        if p == "/obj/private":
            return self.answer(200, b"mine %d" % n, {"Cache-Control": "private, max-age=60"})
        if p == "/obj/cookie":
            return self.answer(200, b"cookie %d" % n, {**cc, "Set-Cookie": "s=%d" % n})
        if p == "/obj/vary":
            enc = self.headers.get("Accept-Encoding", "none")
            return self.answer(200, b"variant " + enc.encode(), {**cc, "Vary": "Accept-Encoding"})
        if p.startswith("/obj/tagged"):
            return self.answer(200, b"tagged %d" % n, {**cc, "Surrogate-Key": "t1 photos"})
        if p == "/obj/reflect":
            host = self.headers.get("X-Forwarded-Host", "origin.example")
            return self.answer(200, b'<script src="//' + host.encode() + b'/app.js">', cc)
        return self.answer(404, b"no", {})


origin = RecordingHTTPServer(Origin).serve()
origin_port = origin.server_address[1]
edge_port, admin_port, tls_port = free_port(), free_port(), free_port()
cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
               check=True, capture_output=True)
token_file = os.path.join(tmp, "token")
with open(token_file, "w") as f:
    f.write("s3cret-purge-token-0123456789\n")
TOKEN = "s3cret-purge-token-0123456789"
disk_dir = os.path.join(tmp, "disk")
topo = topology(os.path.join(tmp, "topology.toml"), name="edge",
                web=[node("web1", origin_port)],
                edge={"threads": 2, "memory": "32mb", "disk_dir": disk_dir,
                      "grace_s": 30, "check_interval_ms": 200, "fall": 1,
                      "origin_timeout_ms": 3000, "purge_token_file": token_file,
                      "tls_cert": cert, "tls_key": key,
                      "node": [node("edge1", edge_port, admin=admin_port,
                                    tls_listen=tls_port)]})


class Edge:
    def __init__(self):
        self.proc = None
        self.log = os.path.join(tmp, "edge.log")

    def start(self):
        self.proc = subprocess.Popen([binary(), "serve", "edge", "--config", topo, "--node",
                                      "edge1"], stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "ab"))
        ok = wait_for(lambda: self.ready(), 20, 0.05)
        if not ok:
            raise RuntimeError("edge not ready: " + open(self.log).read()[-2000:])
        return self

    def ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError("edge exited: " + open(self.log).read()[-2000:])
        try:
            return http_request("127.0.0.1", admin_port, "GET", "/readyz", timeout=2)[0] == 200
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait() if self.proc else None


def get(path, headers=None, method="GET", body=None, timeout=10):
    s, h, data = http_request("127.0.0.1", edge_port, method, path, body, headers, timeout)
    h = {k.lower(): v for k, v in (h.items() if hasattr(h, "items") else h)}
    return s, h, data


def edge_metric(name):
    text = http_request("127.0.0.1", admin_port, "GET", "/metrics")[2].decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def disk_file(body):
    """The disk tier's object file holding `body`, once the edge's writer has written it."""
    node_dir = os.path.join(disk_dir, "edge1")  # each edge node's files in DIR/NAME

    def look():
        for name in os.listdir(node_dir):
            path = os.path.join(node_dir, name)
            if name.endswith(".obj"):
                with open(path, "rb") as f:
                    if body in f.read():
                        return path
        return None
    return wait_for(look, 5)


def file_state(path):
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns, st.st_size


def origin_hits(path):
    with counts_mu:
        return counts.get(path, 0)


def purge(body, token=TOKEN):
    hdrs = {"Content-Type": "application/json"}
    if token:
        hdrs["Authorization"] = "Bearer " + token
    s, _, data = http_request("127.0.0.1", admin_port, "POST", "/purge", json.dumps(body).encode(),
                              hdrs, 10)
    return s, (json.loads(data) if data else None)


edge = Edge().start()
try:
    # --- a hit never reaches the origin
    s1, h1, b1 = get("/obj/small")
    s2, h2, b2 = get("/obj/small")
    c.eq((s1, h1.get("x-cache"), s2, h2.get("x-cache")), (200, "MISS", 200, "HIT"),
         "first request MISS, second HIT")
    c.eq(b1, b2, "the hit has the same body")
    c.eq(origin_hits("/obj/small"), 1, "one origin request for two client requests")
    c.check("age" in h2 and h2["age"].isdigit(), f"a hit carries Age ({h2.get('age')})")
    conn = http.client.HTTPConnection("127.0.0.1", edge_port, timeout=10)
    conn.request("GET", "/obj/small")
    names = [k.lower() for k, _ in conn.getresponse().getheaders()]
    conn.close()
    c.eq(names.count("accept-ranges"), 1, "a hit carries one Accept-Ranges (the origin's is not repeated)")
    c.eq(get("/obj/small?")[1].get("x-cache"), "HIT", "an empty query is the same object")

    # --- 100 concurrent misses make one origin fetch
    with ThreadPoolExecutor(max_workers=100) as pool:
        results = list(pool.map(lambda _: get("/obj/slow"), range(100)))
    c.eq(sorted(set(r[0] for r in results)), [200], "100 concurrent requests all answered 200")
    c.eq(set(r[2] for r in results), {b"slow object"}, "each with the object")
    c.eq(origin_hits("/obj/slow"), 1, "100 concurrent misses made one origin fetch")

    # --- a large object streams to its first client, then is a hit
    s, h, b = get("/obj/big")
    c.eq((s, len(b), hashlib.sha256(b).digest() == hashlib.sha256(BIG).digest()),
         (200, len(BIG), True), "the 2 MiB object arrives whole on its first fetch")
    s, h, b = get("/obj/big")
    c.eq((h.get("x-cache"), b == BIG, origin_hits("/obj/big")), ("HIT", True, 1),
         "then it is a hit, from one origin fetch")
    s, h, b = get("/obj/big", {"Range": "bytes=1000-1999"})
    c.eq((s, h.get("content-range"), b == BIG[1000:2000]), (206, f"bytes 1000-1999/{len(BIG)}", True),
         "a range of it is answered from the cache (206)")
    c.eq(get("/obj/big", {"Range": f"bytes={len(BIG)}-"})[0], 416, "an unsatisfiable range: 416")

    # --- conditionals from the cache
    s, h, b = get("/obj/small", {"If-None-Match": '"v1"'})
    c.eq((s, b), (304, b""), "If-None-Match with the stored ETag: 304 from the cache")
    c.eq(origin_hits("/obj/small"), 1, "without asking the origin")

    # --- revalidation with the origin: a 304 refreshes the stored object without its body
    for path, validator in (("/obj/etag", "If-None-Match"), ("/obj/lastmod", "If-Modified-Since")):
        # Counted from the first fetch: on a loaded machine the second read may come after
        # max-age=1 already and be the revalidation (then the read after the sleep is fresh).
        before = edge_metric('millions_edge_revalidations_total{outcome="not_modified"}')
        b0 = get(path)[2]
        c.eq(get(path)[1].get("x-cache"), "HIT", f"{path}: cached")
        obj_file = disk_file(b0)
        c.check(obj_file, f"{path}: written to the disk tier")
        before_file = file_state(obj_file) if obj_file else None
        time.sleep(1.3)  # past max-age=1: stale
        s, h, b = get(path)
        want = '"e1"' if validator == "If-None-Match" else LAST_MODIFIED
        sent = [x for x in conditionals if x[0] == path]
        c.eq(len(sent), 1, f"{path}: one conditional request to the origin: {sent}")
        c.check(sent and want in (sent[0][1], sent[0][2]) and sent[0][3] == 304,
                f"{path}: it carried {validator} {want} and got 304: {sent}")
        c.eq((s, h.get("x-cache"), b), (200, "HIT", b0),
             f"{path}: the stale object, revalidated, is served whole as a HIT")
        c.check(int(h.get("age", "99")) <= 1, f"{path}: with a fresh Age ({h.get('age')})")
        c.eq(edge_metric('millions_edge_revalidations_total{outcome="not_modified"}') - before, 1,
             f"{path}: counted as a not_modified revalidation")
        if obj_file:
            head_file = obj_file[:-len(".obj")] + ".head"
            c.check(wait_for(lambda: os.path.exists(head_file), 5),
                    f"{path}: the refresh wrote a head file beside the object's file")
            c.eq(file_state(obj_file), before_file,
                 f"{path}: and left the object file as it was (same inode, mtime and size)")
        s, h, b = get(path)
        c.eq((h.get("x-cache"), b, origin_hits(path)), ("HIT", b0, 2),
             f"{path}: the refreshed object is fresh again: a hit without the origin")
    get("/obj/changes")
    time.sleep(1.3)
    get("/obj/changes")  # revalidated: still "e1", 304
    time.sleep(1.3)
    s, h, b = get("/obj/changes")  # the origin's ETag is "e2" now: 200 to the conditional
    c.eq((s, h.get("x-cache"), b), (200, "MISS", b'/obj/changes body "e2"'),
         "a changed object: the 200 to the conditional request is served")
    c.eq((get("/obj/changes")[2], origin_hits("/obj/changes")), (b'/obj/changes body "e2"', 3),
         "and replaces the stored one")

    # --- HTTPS on tls_listen: the same cache, the balancer's TLS
    import ssl
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    conn = http.client.HTTPSConnection("127.0.0.1", tls_port, context=ctx, timeout=10)
    # The cache key names the host: the plain requests' Host (in production both listeners
    # answer the CDN's one name).
    conn.request("GET", "/obj/big", headers={"Host": f"127.0.0.1:{edge_port}"})
    r = conn.getresponse()
    body = r.read()
    c.eq((r.status, r.getheader("X-Cache"), body == BIG, origin_hits("/obj/big")),
         (200, "HIT", True, 1), "HTTPS: the object cached over HTTP is a hit, whole")
    conn.request("GET", "/obj/tls-only")
    r = conn.getresponse()
    r.read()
    c.eq((r.status, r.getheader("X-Cache")), (404, "MISS"), "HTTPS: a miss goes to the origin")
    conn.close()

    def handshake(version, ciphers="DEFAULT:@SECLEVEL=0"):
        """A TLS handshake offering only `version` (and `ciphers`): None, or the error."""
        ctx_v = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx_v.check_hostname = False
        ctx_v.verify_mode = ssl.CERT_NONE
        ctx_v.set_ciphers(ciphers)
        ctx_v.minimum_version = ctx_v.maximum_version = version
        try:
            with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as so:
                with ctx_v.wrap_socket(so):
                    return None
        except (ssl.SSLError, ConnectionResetError) as e:
            return str(e)

    c.eq(handshake(ssl.TLSVersion.TLSv1_2), None, "HTTPS: a TLS 1.2 handshake succeeds")
    c.eq(handshake(ssl.TLSVersion.TLSv1_3), None, "HTTPS: a TLS 1.3 handshake succeeds")
    err = handshake(ssl.TLSVersion.TLSv1_1)
    c.check(err is not None and "PROTOCOL_VERSION" in err.upper(),
            f"HTTPS: a TLS 1.1 handshake is refused by the server: {err}")
    err = handshake(ssl.TLSVersion.TLSv1_2, "AES128-SHA")
    c.check(err is not None, f"HTTPS: TLS 1.2 without forward secrecy (AES128-SHA) is refused: {err}")
    so = socket.create_connection(("127.0.0.1", tls_port), timeout=5)
    so.sendall(b"GET /obj/small HTTP/1.1\r\nHost: x\r\n\r\n")  # plain HTTP on the TLS port
    try:
        junk = so.recv(100)
    except (socket.timeout, ConnectionResetError):
        junk = b""
    so.close()
    c.check(not junk.startswith(b"HTTP/1.1 200"), "plain HTTP is not served on the TLS port")

    # --- never shared: no-store, private, Set-Cookie
    for path in ("/obj/never", "/obj/private", "/obj/cookie"):
        a, b = get(path), get(path)
        c.check(origin_hits(path) == 2 and b[1].get("x-cache") == "MISS",
                f"{path}: each request goes to the origin ({origin_hits(path)} origin requests, "
                f"{b[1].get('x-cache')})")

    # --- Vary keeps variants apart
    g = get("/obj/vary", {"Accept-Encoding": "gzip"})
    i = get("/obj/vary", {"Accept-Encoding": "identity"})
    g2 = get("/obj/vary", {"Accept-Encoding": "gzip"})
    c.eq((g[2], i[2], g2[2], g2[1].get("x-cache")),
         (b"variant gzip", b"variant identity", b"variant gzip", "HIT"),
         "Vary: Accept-Encoding stores one variant per value")

    # --- poisoning: X-Forwarded-Host never reaches the origin
    s, h, b = get("/obj/reflect", {"X-Forwarded-Host": "evil.example"})
    c.check(b"evil" not in b, f"the origin never saw X-Forwarded-Host ({b!r})")
    s, h, b2 = get("/obj/reflect")
    c.eq((b2, h.get("x-cache")), (b'<script src="//origin.example/app.js">', "HIT"),
         "the cached body is the clean one")
    c.check(all("x-forwarded-host" not in hs for hs in seen_headers),
            "no request to the origin carried X-Forwarded-Host")

    # --- purges: by URL, prefix, tag; with the token only
    c.eq(purge({"url": "/obj/small"}, token=None)[0], 401, "a purge without a token: 401")
    c.eq(purge({"url": "/obj/small"}, token="wrong-token-wrong-token")[0], 403,
         "a purge with a wrong token: 403")
    c.eq(get("/obj/small")[1].get("x-cache"), "HIT", "still cached after refused purges")
    s, out = purge({"url": "/obj/small"})
    c.eq((s, out and out.get("purged", 0) >= 1), (200, True), f"purge by URL ({out})")
    c.eq(get("/obj/small")[1].get("x-cache"), "MISS", "the next request after a purge is a miss")
    get("/obj/small/a"), get("/obj/small/b")
    c.eq(purge({"prefix": "/obj/small/"})[0], 200, "purge by prefix")
    c.eq([get(p)[1].get("x-cache") for p in ("/obj/small/a", "/obj/small/b", "/obj/small")],
         ["MISS", "MISS", "HIT"], "a prefix purge takes what is under it, nothing else")
    get("/obj/tagged/1"), get("/obj/tagged/2")
    s, out = purge({"tag": "photos"})
    c.eq((s, out and out.get("purged")), (200, 2), "purge by Surrogate-Key tag: two objects")
    c.eq([get(p)[1].get("x-cache") for p in ("/obj/tagged/1", "/obj/tagged/2")], ["MISS", "MISS"],
         "both refetched")
    c.check("surrogate-key" not in get("/obj/tagged/1")[1], "Surrogate-Key is not shown to clients")
    c.eq(purge({"nonsense": "x"})[0], 400, "a bad purge body: 400")
    inflight = []
    t = threading.Thread(target=lambda: inflight.append(get("/obj/slowpurge")))
    t.start()
    time.sleep(0.3)  # the fill is at the origin
    purge({"url": "/obj/slowpurge"})
    t.join()
    c.eq(inflight[0][1].get("x-cache"), "MISS", "the request whose fill spanned a purge is answered")
    s, h, b = get("/obj/slowpurge")
    c.eq((h.get("x-cache"), b), ("MISS", b"slowpurge v2"),
         "but what it fetched before the purge was not stored")

    # --- an unsafe method invalidates its URL
    get("/obj/small/c")
    c.eq(get("/obj/small/c")[1].get("x-cache"), "HIT", "cached before the POST")
    c.eq(get("/obj/small/c", method="POST", body=b"x")[0], 204, "a POST passes through")
    c.eq(get("/obj/small/c")[1].get("x-cache"), "MISS", "the POST invalidated the URL")

    # --- the origin down
    get("/obj/short"), get("/obj/graceful"), get("/obj/strict")
    time.sleep(1.2)  # past max-age=1
    origin_down.set()
    origin.shutdown()
    origin.server_close()
    c.check(wait_for(lambda: json.loads(http_request("127.0.0.1", admin_port, "GET", "/status")[2])
                     ["origins"][0]["up"] is False, 5), "the edge's checks see the origin down")
    c.eq(get("/obj/big")[1].get("x-cache"), "HIT", "origin down: a fresh object is a hit")
    s, h, b = get("/obj/short")
    c.eq((s, h.get("x-cache"), b), (200, "STALE", b"short v1"),
         "origin down: a stale object within stale-if-error is served STALE")
    s, h, b = get("/obj/graceful")
    c.eq((s, h.get("x-cache"), b), (200, "STALE", b"graceful v1"),
         "origin down: a stale object without stale-if-error is served within [edge] grace_s")
    s, h, b = get("/obj/strict")
    c.check(s in (502, 504), f"origin down: a stale must-revalidate object is never served ({s})")
    t0 = time.time()
    s, h, b = get("/obj/uncached")
    took = time.time() - t0
    c.check(s in (502, 504) and took < 1.5, f"origin down: an uncached object answers {s} "
            f"in {took:.2f} s")

    # --- the disk tier keeps objects across a restart
    c.eq(edge.stop(), 0, "the edge drains and exits 0")
    edge.start()
    s, h, b = get("/obj/big")
    c.eq((s, h.get("x-cache"), b == BIG), (200, "HIT", True),
         "after a restart, with the origin still down, the object comes from the disk tier")
    s, h, b = get("/obj/etag")
    c.eq((s, h.get("x-cache"), h.get("x-validated"), h.get("cache-control"), b),
         (200, "HIT", "yes", "public, max-age=3600", b'/obj/etag body "e1"'),
         "after a restart, the revalidated object has the 304's headers (its head file) and its "
         "body (its object file)")
finally:
    edge.stop()
    try:
        origin.shutdown()
    except Exception:
        pass

c.finish()
