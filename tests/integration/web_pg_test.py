"""Stage 2 without the runner: two `millions serve web` nodes on one real PostgreSQL. A session
made on one node works on the other (the web tier keeps no state), jobs queued through one node
are run by either, and killing a node loses nothing."""
import os
import tempfile

from harness import Checks, PgServer, WebNode, bearer, free_port, png, wait_job, web_topology

c = Checks()
pg = PgServer().start()
ports = [free_port(), free_port()]
topo = web_topology(os.path.join(tempfile.mkdtemp(), "topology.toml"), pg.port, ports)
web1, web2 = WebNode(topo, "web1", ports[0]), WebNode(topo, "web2", ports[1])
try:
    web1.start()
    web2.start()
    s, _, user = web1.json("POST", "/api/users", {"handle": "dana", "password": "password123"})
    c.eq(s, 201, "sign up on web1")
    s, _, sess = web1.json("POST", "/api/sessions", {"handle": "dana", "password": "password123"})
    c.eq(s, 201, "log in on web1")
    token = sess["token"]
    s, _, me = web2.json("GET", "/api/me", headers=bearer(token))
    c.eq((s, me and me.get("handle")), (200, "dana"), "web1's session works on web2")
    c.eq(web2.json("POST", "/api/users", {"handle": "dana", "password": "password123"})[0], 409,
         "handle taken across nodes")

    s, _, photo = web2.json("POST", "/api/photos?caption=pg", png(80, 60),
                            {**bearer(token), "Content-Type": "image/png"})
    c.eq(s, 201, "upload on web2")
    s, h, data = web1.request("GET", photo["url"])
    c.eq((s, data[:4]), (200, b"\x89PNG"), "media stored in PostgreSQL, served by web1")
    jobs = []
    for i in range(4):
        s, _, job = web1.json("POST", f"/api/photos/{photo['id']}/edits",
                              {"ops": [{"op": "rotate", "degrees": 90}, {"op": "blur", "sigma": 1 + i}]},
                              bearer(token))
        c.eq(s, 202, f"edit {i} accepted on web1")
        jobs.append(job["id"])
    for jid in jobs:
        job = wait_job(web2, token, jid)
        c.check(job is not None and job["status"] == "done", f"job {jid} done: {job}")
    s, _, p = web2.json("GET", f"/api/photos/{photo['id']}")
    c.eq(len(p["versions"]), 4, "four versions, each once")
    c.eq((p["versions"][0]["width"], p["versions"][0]["height"]), (60, 80), "rotated")

    web1.kill()
    c.eq(web2.json("GET", "/api/me", headers=bearer(token))[0], 200, "web2 serves while web1 is dead")
    web1.start()
    s, _, me = web1.json("GET", "/api/me", headers=bearer(token))
    c.eq((s, me["photos"]), (200, 1), "web1 back with everything")
    s, _, m = web1.request("GET", "/metrics")
    c.check(b'millions_http_requests_total{role="web"' in m, "metrics on a web node")
finally:
    c.eq(web1.stop(), 0, "web1 drains and exits 0")
    c.eq(web2.stop(), 0, "web2 drains and exits 0")
    pg.stop()
c.finish()
