"""kill -9 then restart: accepted jobs and sessions survive, nothing acknowledged is lost."""
from harness import Checks, Server, bearer, png, signup_login, wait_job

c = Checks()
srv = Server().start()
try:
    user, sess, _ = signup_login(srv, "carol")
    token = sess["token"]
    s, _, photo = srv.json("POST", "/api/photos?caption=big", png(900, 700),
                           {**bearer(token), "Content-Type": "image/png"})
    c.eq(s, 201, "upload")
    jobs = []
    for i in range(10):
        ops = {"ops": [{"op": "blur", "sigma": 10 + i}, {"op": "sharpen", "sigma": 3},
                       {"op": "blur", "sigma": 12}, {"op": "resize", "width": 500, "height": 300}]}
        s, _, job = srv.json("POST", f"/api/photos/{photo['id']}/edits", ops, bearer(token))
        c.eq(s, 202, f"job {i} accepted")
        jobs.append(job["id"])
    # Kill at once, while jobs are still queued or running.
    pending = [j for j in jobs
               if srv.json("GET", f"/api/jobs/{j}", headers=bearer(token))[2]["status"] != "done"]
    srv.kill()
    c.check(len(pending) > 0, "some jobs were unfinished when the server was killed")
    print(f"{len(pending)} of {len(jobs)} jobs unfinished at kill -9")
    srv.start()
    s, _, me = srv.json("GET", "/api/me", headers=bearer(token))
    c.eq((s, me and me.get("handle")), (200, "carol"), "session survives kill -9")
    for jid in jobs:
        job = wait_job(srv, token, jid, timeout=60)
        c.check(job is not None and job["status"] == "done", f"job {jid} done after restart: {job}")
    s, _, p = srv.json("GET", f"/api/photos/{photo['id']}")
    c.eq(len(p["versions"]), len(jobs), "one version per job, none twice")
    c.eq(srv.json("GET", f"/api/users/{user['id']}")[2]["photos"], 1, "photo kept")
finally:
    c.eq(srv.stop(), 0, "clean stop")
c.finish()
