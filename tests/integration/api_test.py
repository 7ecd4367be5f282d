"""Walks every route of the contract's API against the real binary, including each error
status, and the bad input the stage-1 issue lists: each gets its error, changes nothing, and the
server keeps serving."""
import socket
import time

from harness import Checks, Server, bearer, png, png_bomb, signup_login, wait_job

c = Checks()
srv = Server(header_timeout_ms=1000).start()
try:
    # --- operations
    c.eq(srv.request("GET", "/livez")[0], 200, "livez")
    c.eq(srv.request("GET", "/readyz")[0], 200, "readyz")
    s, h, body = srv.request("GET", "/livez", headers={"X-Request-Id": "req-123"})
    c.eq(h.get("x-request-id"), "req-123", "request id echoed")
    c.check(len(srv.request("GET", "/livez")[1].get("x-request-id", "")) == 32, "request id made")
    c.eq(h.get("x-content-type-options"), "nosniff", "every response says nosniff")

    # --- sign up
    s, _, alice = srv.json("POST", "/api/users",
                           {"handle": "alice", "password": "password123", "display_name": "Alice"})
    c.eq(s, 201, "sign up")
    c.check(isinstance(alice["id"], str) and alice["id"].isdigit(), "id is a decimal string")
    c.eq(alice["display_name"], "Alice", "display name")
    for key in ("id", "handle", "display_name", "bio", "followers", "following", "photos",
                "created_at"):
        c.check(key in alice, f"user has {key}")
    s, _, err = srv.json("POST", "/api/users", {"handle": "alice", "password": "password123"})
    c.eq((s, err["error"]["code"]), (409, "handle_taken"), "duplicate handle")
    bad_bodies = [
        (b"{not json", "malformed_json"),
        (b'{"handle":"bob","password":12345678}', "bad_field"),
        (b'{"handle":"bob","password":"password123","role":"admin"}', "unknown_field"),
        (b'{"handle":"BOB!","password":"password123"}', "bad_field"),
        (b'{"handle":"bob","password":"short"}', "bad_field"),
        (b'[]', "malformed_json"),
    ]
    for body, code in bad_bodies:
        s, _, err = srv.json("POST", "/api/users", body, {"Content-Type": "application/json"})
        c.eq((s, err["error"]["code"]), (400, code), f"bad sign-up {body!r}")
    s, _, err = srv.json("POST", "/api/users", b'{"handle":"bob"}', {"Content-Type": "text/plain"})
    c.eq(s, 415, "sign-up as text/plain")
    big = b'{"handle":"bob","password":"' + b"x" * 70000 + b'"}'
    s, _, err = srv.json("POST", "/api/users", big, {"Content-Type": "application/json"})
    c.eq(s, 413, "oversized JSON body")
    c.eq(srv.json("GET", "/api/users/by-handle/bob")[0], 404, "bad sign-ups created nothing")

    # --- sessions
    s, h, sess = srv.json("POST", "/api/sessions", {"handle": "alice", "password": "password123"})
    c.eq(s, 201, "log in")
    token = sess["token"]
    cookie = h.get("set-cookie", "")
    c.check("sid=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie, "cookie set")
    c.check(len(token) >= 43, "token is 256-bit")
    c.check("Secure" not in cookie, "no Secure cookie over plain HTTP")
    s, h, _ = srv.json("POST", "/api/sessions", {"handle": "alice", "password": "password123"},
                       {"X-Forwarded-Proto": "https"})
    c.check("; Secure" in h.get("set-cookie", ""), "Secure cookie when the balancer saw TLS")
    s, _, err = srv.json("POST", "/api/sessions", {"handle": "alice", "password": "wrongpass1"})
    c.eq((s, err["error"]["code"]), (401, "bad_credentials"), "wrong password")
    s, _, err = srv.json("POST", "/api/sessions", {"handle": "nobody", "password": "wrongpass1"})
    c.eq(s, 401, "unknown user")

    # --- me
    c.eq(srv.json("GET", "/api/me")[0], 401, "me without session")
    c.eq(srv.json("GET", "/api/me", headers=bearer("x" * 43))[0], 401, "me with a bad token")
    s, _, me = srv.json("GET", "/api/me", headers=bearer(token))
    c.eq((s, me["handle"]), (200, "alice"), "me")
    s, _, me = srv.json("PATCH", "/api/me", {"bio": "hello"}, bearer(token))
    c.eq((s, me["bio"]), (200, "hello"), "patch me")
    s, _, err = srv.json("PATCH", "/api/me", {"bio": 5}, bearer(token))
    c.eq(s, 400, "patch me wrong type")
    s, _, err = srv.json("PATCH", "/api/me", {"nick": "x"}, bearer(token))
    c.eq(s, 400, "patch me unknown field")
    c.eq(srv.json("GET", "/api/me", headers=bearer(token))[2]["bio"], "hello", "bad patches ignored")

    # --- CSRF with the cookie
    sid = cookie.split(";")[0]
    host = f"127.0.0.1:{srv.port}"
    s, _, err = srv.json("PATCH", "/api/me", {"bio": "csrf"}, {"Cookie": sid})
    c.eq((s, err["error"]["code"]), (403, "csrf_failed"), "cookie PATCH without Origin")
    s, _, err = srv.json("PATCH", "/api/me", {"bio": "csrf"},
                         {"Cookie": sid, "Origin": "http://evil.example"})
    c.eq(s, 403, "cookie PATCH cross-origin")
    c.eq(srv.json("GET", "/api/me", headers=bearer(token))[2]["bio"], "hello", "CSRF changed nothing")
    s, _, me = srv.json("PATCH", "/api/me", {"bio": "same origin"},
                        {"Cookie": sid, "Origin": f"http://{host}"})
    c.eq((s, me["bio"]), (200, "same origin"), "cookie PATCH same-origin")

    # --- users
    s, _, u = srv.json("GET", f"/api/users/{alice['id']}")
    c.eq((s, u["handle"]), (200, "alice"), "get user")
    c.eq(srv.json("GET", "/api/users/12345")[0], 404, "missing user")
    c.eq(srv.json("GET", "/api/users/abc")[0], 404, "non-numeric id")
    c.eq(srv.json("GET", "/api/users/by-handle/alice")[0], 200, "by handle")
    c.eq(srv.json("GET", "/api/users/by-handle/nobody")[0], 404, "by handle missing")

    # --- bob follows alice
    bob, bob_sess, _ = signup_login(srv, "bob")
    bob_token = bob_sess["token"]
    c.eq(srv.json("POST", f"/api/users/{alice['id']}/follow", headers=bearer(bob_token))[0], 204,
         "follow")
    c.eq(srv.json("POST", f"/api/users/{alice['id']}/follow")[0], 401, "follow without session")
    c.eq(srv.json("POST", "/api/users/999/follow", headers=bearer(bob_token))[0], 404,
         "follow missing user")
    c.eq(srv.json("POST", f"/api/users/{bob['id']}/follow", headers=bearer(bob_token))[0], 400,
         "follow self")
    c.eq(srv.json("GET", f"/api/users/{alice['id']}")[2]["followers"], 1, "follower counted")
    s, _, fl = srv.json("GET", f"/api/users/{alice['id']}/followers")
    c.eq((s, fl and fl.get("items")), (200, [bob["id"]]), "alice's followers list")
    s, _, fl = srv.json("GET", f"/api/users/{bob['id']}/following")
    c.eq((s, fl and fl.get("items")), (200, [alice["id"]]), "bob's following list")
    c.eq(srv.json("GET", "/api/users/999/followers")[0], 404, "followers of a missing user")
    s, _, e = srv.json("GET", "/api/users/notanid/following")
    c.check(s in (400, 404) and "error" in (e or {}), f"following of a bad id: {s} {e}")

    # --- photos
    image = png(64, 48)
    s, _, photo = srv.json("POST", "/api/photos?caption=hello%20world", image,
                           {**bearer(token), "Content-Type": "image/png"})
    c.eq(s, 201, "upload")
    c.eq((photo["width"], photo["height"], photo["caption"]), (64, 48, "hello world"), "photo shape")
    c.check(photo["url"].startswith("/media/"), "media url")
    s, _, err = srv.json("POST", "/api/photos", b"just some text",
                         {**bearer(token), "Content-Type": "image/png"})
    c.eq((s, err["error"]["code"]), (400, "bad_image"), "text sent as image/png")
    s, _, err = srv.json("POST", "/api/photos", b"GIF89a", {**bearer(token), "Content-Type": "image/gif"})
    c.eq(s, 415, "gif refused")
    t0 = time.time()
    s, _, err = srv.json("POST", "/api/photos", png_bomb(), {**bearer(token), "Content-Type": "image/png"})
    c.eq(s, 413, "20000x20000 PNG bomb")
    c.check(time.time() - t0 < 5, "bomb refused without decoding")
    # Above the limit: answered from the headers, before the body is read, then closed.
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(b"POST /api/photos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                     token.encode() + b"\r\nContent-Type: image/png\r\nContent-Length: " +
                     str(21 * 1024 * 1024).encode() + b"\r\n\r\n\x89PNG")
        c.check(sock.recv(4096).startswith(b"HTTP/1.1 413"), "upload above 20 MiB")
    c.eq(srv.json("POST", "/api/photos", image, {"Content-Type": "image/png"})[0], 401,
         "upload without session")
    c.eq(srv.json("GET", f"/api/users/{alice['id']}")[2]["photos"], 1, "bad uploads stored nothing")

    s, h, data = srv.request("GET", photo["url"])
    c.eq((s, data), (200, image), "media served")
    c.check("immutable" in h.get("cache-control", ""), "media immutable")
    c.eq(srv.request("GET", photo["url"], headers={"If-None-Match": h.get("etag", "")})[0], 304,
         "media 304")
    for bad in ("/media/../../etc/passwd", "/media/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                "/media/" + "0" * 32 + ".png", "/assets/../CMakeLists.txt", "/assets/%2e%2e%2fx"):
        c.check(srv.request("GET", bad)[0] in (400, 404), f"traversal {bad}")

    s, _, got = srv.json("GET", f"/api/photos/{photo['id']}")
    c.eq((s, got["id"]), (200, photo["id"]), "get photo")
    c.eq(srv.json("GET", "/api/photos/77")[0], 404, "missing photo")
    second = srv.json("POST", "/api/photos?caption=two", png(30, 20, seed=9),
                      {**bearer(token), "Content-Type": "image/png"})[2]
    s, _, page = srv.json("GET", f"/api/users/{alice['id']}/photos?limit=1")
    c.eq((s, [p["id"] for p in page["items"]]), (200, [second["id"]]), "list newest first")
    c.eq(page["next"], second["id"], "next cursor")
    s, _, page = srv.json("GET", f"/api/users/{alice['id']}/photos?limit=1&before={page['next']}")
    c.eq([p["id"] for p in page["items"]], [photo["id"]], "second page")
    c.eq(srv.json("GET", f"/api/users/{alice['id']}/photos?limit=0")[0], 400, "limit 0")
    c.eq(srv.json("GET", f"/api/users/{alice['id']}/photos?limit=x")[0], 400, "limit x")
    c.eq(srv.json("GET", "/api/users/999/photos")[0], 404, "photos of missing user")

    # --- feed
    s, _, feed = srv.json("GET", "/api/feed", headers=bearer(bob_token))
    c.eq((s, [p["id"] for p in feed["items"]]), (200, [second["id"], photo["id"]]), "feed")
    c.eq(srv.json("GET", "/api/feed")[0], 401, "feed without session")
    s, _, feed = srv.json("GET", "/api/feed", headers=bearer(token))
    c.eq(feed["items"], [], "alice follows nobody")
    # Unfollow: the cached feed and both lists change at once; then follow again.
    c.eq(srv.json("DELETE", f"/api/users/{alice['id']}/follow", headers=bearer(bob_token))[0], 204,
         "unfollow")
    c.eq(srv.json("GET", "/api/feed", headers=bearer(bob_token))[2]["items"], [],
         "the feed forgets an unfollowed user at once")
    c.eq(srv.json("GET", f"/api/users/{alice['id']}/followers")[2]["items"], [],
         "followers list after unfollow")
    c.eq(srv.json("POST", f"/api/users/{alice['id']}/follow", headers=bearer(bob_token))[0], 204,
         "follow again")
    c.eq(len(srv.json("GET", "/api/feed", headers=bearer(bob_token))[2]["items"]), 2,
         "and the feed is back")

    # --- edits
    ops = {"ops": [{"op": "grayscale"}, {"op": "rotate", "degrees": 90}]}
    s, _, job = srv.json("POST", f"/api/photos/{photo['id']}/edits", ops, bearer(token))
    c.eq((s, job["status"]), (202, "queued"), "edit accepted")
    s, _, err = srv.json("POST", f"/api/photos/{photo['id']}/edits", ops, bearer(bob_token))
    c.eq((s, err["error"]["code"]), (403, "not_owner"), "edit by another user (their token)")
    s, _, err = srv.json("POST", f"/api/photos/{photo['id']}/edits",
                         {"ops": [{"op": "crop", "x": 60, "y": 0, "width": 10, "height": 10}]},
                         bearer(token))
    c.eq(s, 400, "crop outside the image")
    s, _, err = srv.json("POST", f"/api/photos/{photo['id']}/edits",
                         {"ops": [{"op": "rotate", "degrees": 45}]}, bearer(token))
    c.eq(s, 400, "rotate 45")
    c.eq(srv.json("POST", "/api/photos/1/edits", ops, bearer(token))[0], 404, "edit missing photo")
    c.eq(srv.json("GET", f"/api/jobs/{job['id']}", headers=bearer(bob_token))[0], 403,
         "job of another user")
    c.eq(srv.json("GET", "/api/jobs/5", headers=bearer(token))[0], 404, "missing job")
    done = wait_job(srv, token, job["id"])
    c.check(done is not None and done["status"] == "done", f"job done: {done}")
    if done:
        c.check(done.get("result_url", "").startswith("/media/"), "job result url")
        c.check("finished_at" in done, "job finished_at")
        s, _, edited = srv.json("GET", f"/api/photos/{photo['id']}")
        c.eq(len(edited["versions"]), 1, "one version")
        v = edited["versions"][0]
        c.eq((v["width"], v["height"], v["job_id"]), (48, 64, job["id"]), "rotated version")
        s, h, data = srv.request("GET", v["url"])
        c.check(s == 200 and data[:4] == b"\x89PNG", "version served as PNG")

    # --- assets and UI
    s, h, html = srv.request("GET", "/")
    c.check(s == 200 and b"/assets/app." in html, "index links fingerprinted assets")
    import re
    for path in re.findall(rb'/assets/[A-Za-z0-9._-]+', html):
        s, h, _ = srv.request("GET", path.decode())
        c.check(s == 200 and "immutable" in h.get("cache-control", ""), f"asset {path!r}")
    c.eq(srv.request("GET", "/assets/app.js")[0], 404, "unfingerprinted name")

    # --- routing errors
    c.eq(srv.json("PUT", "/api/me")[0], 405, "method not allowed")
    c.eq(srv.json("GET", "/api/nothing")[0], 404, "unknown route")

    # --- raw HTTP: pipelining, limits, timeouts
    def raw(data, timeout=5.0):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
        s.sendall(data)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
        s.close()
        return out

    out = raw(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Request-Id: one\r\n\r\n"
              b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Request-Id: two\r\nConnection: close\r\n\r\n")
    c.check(out.count(b"HTTP/1.1 200") == 2 and out.find(b"one") < out.find(b"two"),
            "pipelined requests answered in order")
    out = raw(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    c.check(out.startswith(b"HTTP/1.1 431"), f"huge header 431: {out[:40]!r}")
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    out = raw(b"GET / HTTP/1.1\r\n" + many + b"\r\n")
    c.check(out.startswith(b"HTTP/1.1 431"), f"too many headers 431: {out[:40]!r}")
    out = raw(b"BLAH\r\n\r\n")
    c.check(out.startswith(b"HTTP/1.1 400"), f"malformed 400: {out[:40]!r}")
    out = raw(b"POST /api/users HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n")
    c.check(out.startswith(b"HTTP/1.1 413"), f"huge content-length 413: {out[:40]!r}")
    out = raw(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ", timeout=5)
    c.check(out.startswith(b"HTTP/1.1 408"), f"slow headers 408: {out[:40]!r}")

    # --- Idempotency-Key: a repeated POST gets the first answer, and takes effect once
    key = {"Idempotency-Key": "signup-ik-1"}
    s1, h1, u1 = srv.json("POST", "/api/users", {"handle": "idem_user", "password": "password123"},
                          key)
    s2, h2, u2 = srv.json("POST", "/api/users", {"handle": "idem_user", "password": "password123"},
                          key)
    c.eq((s1, s2), (201, 201), "sign-up repeated with its key: the first answer twice")
    c.check(u1.get("id") == u2.get("id") and h2.get("idempotent-replayed") == "true"
            and "idempotent-replayed" not in h1, f"replayed answer marked: {h1} {h2}")
    s3, _, e3 = srv.json("POST", "/api/users", {"handle": "idem_other", "password": "password123"},
                         key)
    c.eq((s3, e3["error"]["code"]), (422, "idempotency_key_reused"), "key reused for another body")
    c.eq(srv.json("GET", "/api/users/by-handle/idem_other")[0], 404, "...which did not run")
    s4, _, e4 = srv.json("POST", "/api/users", {"handle": "idem_x", "password": "password123"},
                         {"Idempotency-Key": "x" * 201})
    c.eq((s4, e4["error"]["code"]), (400, "bad_idempotency_key"), "overlong key: 400")
    up_key = dict(bearer(token), **{"Idempotency-Key": "upload-1", "Content-Type": "image/png"})
    before = srv.json("GET", "/api/me", headers=bearer(token))[2]["photos"]
    p1 = srv.json("POST", "/api/photos?caption=once", png(20, 20, seed=3), up_key)
    p2 = srv.json("POST", "/api/photos?caption=once", png(20, 20, seed=3), up_key)
    after = srv.json("GET", "/api/me", headers=bearer(token))[2]["photos"]
    c.check(p1[0] == 201 and p2[0] == 201 and p1[2]["id"] == p2[2]["id"] and after == before + 1,
            f"an upload retried with its key is stored once: {p1[0]} {p2[0]} {before} {after}")
    other = srv.json("POST", "/api/photos?caption=once", png(20, 20, seed=3),
                     dict(up_key, **{"Idempotency-Key": "upload-2"}))
    c.check(other[0] == 201 and other[2]["id"] != p1[2]["id"], "another key: another photo")

    # --- logout
    c.eq(srv.json("DELETE", "/api/sessions/current", headers=bearer(token))[0], 204, "log out")
    c.eq(srv.json("GET", "/api/me", headers=bearer(token))[0], 401, "token dead after log out")

    # --- metrics
    s, _, m = srv.request("GET", "/metrics")
    text = m.decode()
    c.check('millions_http_requests_total{role="web",route="/api/users/{id}"' in text,
            "request counter by route template")
    c.check("millions_http_request_duration_seconds_bucket" in text, "latency histogram")
    c.check('millions_jobs_total{status="done"}' in text, "jobs counter")
    c.check("millions_queue_backlog" in text, "queue backlog")
    c.check('millions_cache_requests_total{kind="user",level="l1",result="hit"}' in text or
            'millions_cache_requests_total{level="l1",kind="user",result="hit"}' in text,
            "cache hit counter")
    c.check(alice["id"] not in text, "no ids in labels")

    c.eq(srv.request("GET", "/livez")[0], 200, "still serving after bad input")
finally:
    code = srv.stop()
c.eq(code, 0, "SIGTERM drains and exits 0")
c.finish()
