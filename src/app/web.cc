#include "app/web.h"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <map>

#include "app/assets.h"
#include "app/auth.h"
#include "app/job_waiters.h"
#include "core/log.h"
#include "core/node_harness.h"
#include "core/secret.h"
#include "data/ids.h"

namespace millions::app {

using boost::asio::awaitable;
using http::Request;
using http::Response;

struct WebApp::Assets {
  std::map<std::string, const EmbeddedFile*, std::less<>> by_path;  // fingerprinted name
  std::string index_html;
  std::string csp;  // the page's Content-Security-Policy (names the edge when there is one)
};

namespace {

Response ErrorResponse(const Error& e) {
  Response r = http::JsonError(e.status(), e.code, e.message);
  // A tier that is unavailable (database failover, overload) says when to come back.
  if (e.status() == 503) r.set("Retry-After", "1");
  return r;
}

// Answers `status` with the JSON a Service call returned, or its error.
Response Answer(int status, Result<std::string> out) {
  if (!out.ok()) return ErrorResponse(out.error());
  return http::Json(status, std::move(*out));
}

Response Ok(int status, std::string json) { return http::Json(status, std::move(json)); }

// The request's ids, for the work it hands to the blocking pool: the service's, the store's and
// the cache's lines written there carry them (log::Current()).
log::Context Ctx(const Request& req) { return {req.request_id, req.trace_id}; }

// Keys of the throttle's in-process store (when it is the only one, or the fallback).
constexpr size_t kLocalCounters = 100'000;

Response NoContent() {
  Response r;
  r.status = 204;
  return r;
}

// "app.js" -> "app.3fa2c1d9e0b4.js": the name changes whenever the content does.
std::string Fingerprint(std::string_view name, std::string_view bytes) {
  std::string hash = Sha256Hex(bytes).substr(0, 12);
  size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) return std::string(name) + "." + hash;
  return std::string(name.substr(0, dot)) + "." + hash + std::string(name.substr(dot));
}

bool ValidMediaKey(std::string_view key) {
  size_t dot = key.find('.');
  if (dot != 32) return false;
  for (size_t i = 0; i < 32; ++i) {
    char c = key[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  std::string_view ext = key.substr(33);
  return ext == "jpg" || ext == "png" || ext == "webp";
}

Result<int64_t> PathId(const Request& req) {
  auto id = data::ParseId(req.param("id"));
  if (!id) return MakeError(Errc::kNotFound, "not_found", "no such id");
  return *id;
}

struct Page {
  int64_t before = 0;
  int limit = 20;
};

Result<Page> ParsePage(const Request& req) {
  Page p;
  if (auto l = req.query_param("limit")) {
    auto v = data::ParseId(*l);
    if (!v || *v > 100)
      return MakeError(Errc::kBadInput, "bad_query", "limit must be an integer in 1..100");
    p.limit = static_cast<int>(*v);
  }
  if (auto b = req.query_param("before")) {
    auto v = data::ParseId(*b);
    if (!v) return MakeError(Errc::kBadInput, "bad_query", "before must be a photo id");
    p.before = *v;
  }
  return p;
}

Status RequireJson(const Request& req) {
  auto ct = req.header("content-type");
  std::string_view v = ct ? *ct : std::string_view();
  v = v.substr(0, v.find(';'));
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (!http::IEquals(v, "application/json"))
    return MakeError(Errc::kUnsupportedMedia, "unsupported_media_type",
                     "send the body as application/json");
  if (req.body.size() > kMaxJsonBody)
    return MakeError(Errc::kTooLarge, "payload_too_large", "JSON bodies are limited to 64 KiB");
  return millions::Ok();
}

}  // namespace

// Over TLS the cookie is Secure: TLS to this node, or to the balancer in front of it, which
// alone writes X-Forwarded-Proto (web nodes are not reachable from the public side).
bool WebApp::Secure(const Request& req) const {
  if (opt_.secure_cookies || req.tls) return true;
  auto proto = req.header("x-forwarded-proto");
  return proto && *proto == "https";
}

namespace {

std::string SessionCookie(const std::string& token, int64_t max_age_s, bool secure) {
  std::string c =
      "sid=" + token + "; Path=/; HttpOnly; SameSite=Lax; Max-Age=" + std::to_string(max_age_s);
  if (secure) c += "; Secure";
  return c;
}

}  // namespace

WebApp::WebApp(Service& service, BlockingPool& pool, metrics::Registry& metrics, WebOptions options)
    : svc_(service),
      pool_(pool),
      metrics_(metrics),
      opt_(std::move(options)),
      assets_(std::make_unique<Assets>()),
      waiters_(std::make_unique<JobWaiters>()) {
  std::shared_ptr<cache::Counters> counters = opt_.counters;
  if (!counters) counters = std::make_shared<cache::LocalCounters>(Env::Default(), kLocalCounters);
  throttle_ = std::make_unique<Throttle>(opt_.throttle, std::move(counters), metrics_);
  hot_ = std::make_shared<HotUsers>(Env::Default());
  HotUsers::Export(hot_, metrics_);
  const EmbeddedFile* index = nullptr;
  std::map<std::string, std::string> renames;
  for (size_t i = 0; i < kEmbeddedFileCount; ++i) {
    const EmbeddedFile& f = kEmbeddedFiles[i];
    if (f.name == "index.html") {
      index = &f;
      continue;
    }
    std::string fp = Fingerprint(f.name, f.bytes);
    renames[std::string(f.name)] = "/assets/" + fp;
    assets_->by_path[fp] = &f;
  }
  if (index) {
    std::string html(index->bytes);
    if (!opt_.edge_origin.empty()) {
      // The stylesheet and the script from the edge, each falling back to this origin's copy
      // when the edge fails (web/loader.js: a page served here can always load it).
      const std::string tags =
          "<link rel=\"stylesheet\" href=\"{{asset:app.css}}\">\n"
          "<script src=\"{{asset:app.js}}\" defer></script>";
      if (auto pos = html.find(tags); pos != std::string::npos)
        html.replace(pos, tags.size(),
                     "<script src=\"{{asset:loader.js}}\" data-edge=\"" + opt_.edge_origin +
                         "\" data-edge-tls=\"" + opt_.edge_tls_origin +
                         "\" data-css=\"{{asset:app.css}}\" data-js=\"{{asset:app.js}}\">"
                         "</script>");
    }
    for (const auto& [name, path] : renames) {
      std::string ph = "{{asset:" + name + "}}";
      for (size_t pos; (pos = html.find(ph)) != std::string::npos;)
        html.replace(pos, ph.size(), path);
    }
    assets_->index_html = std::move(html);
  }
  std::string edge = opt_.edge_origin.empty() ? "" : " " + opt_.edge_origin;
  if (!opt_.edge_tls_origin.empty()) edge += " " + opt_.edge_tls_origin;
  assets_->csp = "default-src 'self'; img-src 'self' data: blob:" + edge + "; style-src 'self'" +
                 edge + "; script-src 'self'" + edge +
                 "; connect-src 'self'; frame-ancestors 'none'";
  AddRoutes();
}

WebApp::~WebApp() = default;

void WebApp::JobFinished(int64_t job_id) { waiters_->Notify(job_id); }

void WebApp::SetReady(bool ready) {
  ready_ = ready;
  if (!ready) waiters_->NotifyAll();
}

// The long poll: answers at once when the job has finished (or no wait is asked), else parks on
// a timer that the job's announcement cancels, and answers the job as it then is. The job is
// read again after the timer is registered: a job that finished between the first read and the
// registration would otherwise keep the request waiting for nothing.
awaitable<Response> WebApp::GetJob(Request& req, int64_t user, int64_t job) {
  int64_t wait_ms = 0;
  if (auto w = req.query_param("wait_ms")) {
    auto v = data::ParseId(*w);
    if (*w != "0" && (!v || *v > kMaxJobWaitMs))
      co_return ErrorResponse(
          MakeError(Errc::kBadInput, "bad_query",
                    "wait_ms must be an integer in 0.." + std::to_string(kMaxJobWaitMs)));
    wait_ms = v ? *v : 0;
  }
  bool finished = false;
  auto read = [&] {
    return pool_.Run(Ctx(req),
                     [this, user, job, &finished] { return svc_.Job(user, job, &finished); });
  };
  auto out = co_await read();
  if (!out.ok() || finished || wait_ms == 0 || !ready_) co_return Answer(200, std::move(out));
  auto timer = std::make_shared<JobWaiters::Timer>(co_await boost::asio::this_coro::executor,
                                                   std::chrono::milliseconds(wait_ms));
  if (!waiters_->Add(job, timer)) co_return Answer(200, std::move(out));  // too many wait
  out = co_await read();
  if (out.ok() && !finished) {
    boost::system::error_code ec;  // operation_aborted: the job finished; else the deadline
    co_await timer->async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    out = co_await read();
  }
  waiters_->Remove(job, timer.get());
  co_return Answer(200, std::move(out));
}

awaitable<Response> WebApp::Handle(Request& req) {
  // The clock is read only for the debug line: at the default level the hot path reads none.
  const bool debug = log::Enabled(log::Level::kDebug);
  auto t0 = debug ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  auto m = router_.Find(req.method, req.path, &req.params);
  Response resp;
  if (m.outcome == http::Router::Outcome::kMatched) {
    req.route.assign(m.route);
    // Log-ins are not replayed: their answer carries a session token, never stored.
    if (req.method == "POST" && req.route != "/api/sessions" && req.header("idempotency-key")) {
      resp = co_await Idempotent(req, *m.handler);
    } else {
      resp = co_await (*m.handler)(req);
    }
  } else if (m.outcome == http::Router::Outcome::kMethodNotAllowed) {
    req.route.assign(m.route);
    resp = http::JsonError(405, "method_not_allowed", "method not allowed on this path");
  } else {
    resp = http::JsonError(404, "not_found", "no such route");
  }
  if (resp.status >= 500)
    log::Write(log::Level::kError, {req.request_id, req.trace_id}, "request failed",
               {{"route", req.route}, {"status", resp.status}, {"body", resp.body}});
  // One line a request at debug level (checked first: the hot path builds no fields), with the
  // route template rather than the target, which may carry ids and query strings.
  if (debug) {
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    log::Write(log::Level::kDebug, Ctx(req), "request",
               {{"method", req.method},
                {"route", req.route.empty() ? std::string_view("unmatched") : req.route},
                {"status", resp.status},
                {"duration_ms", ms}});
  }
  co_return resp;
}

awaitable<Response> WebApp::Idempotent(Request& req, const http::Handler& handler) {
  std::string key(*req.header("idempotency-key"));
  bool good = !key.empty() && key.size() <= 200;
  for (char ch : key) good = good && ch > 0x20 && ch < 0x7f;
  if (!good)
    co_return http::JsonError(400, "bad_idempotency_key",
                              "Idempotency-Key must be 1 to 200 visible ASCII characters");
  // Keys are per credential, so that one client cannot replay another's answers; requests
  // without credentials (sign-up) share a scope, and then only an identical request (same
  // body, password included) gets the answer back.
  Credentials creds = ExtractCredentials(req);
  // No replay for a cross-site request riding on a cookie: the CSRF check comes first.
  if (Status st = CheckCsrf(req, creds); !st.ok()) co_return ErrorResponse(st.error());
  std::string scope = creds.source == AuthSource::kNone ? "-" : TokenHash(creds.token);
  std::string fingerprint =
      Sha256Hex(req.method + "\n" + req.target + "\n" +
                std::string(req.header("content-type").value_or("")) + "\n" + Sha256Hex(req.body));
  auto claim = [this, scope, key, fingerprint] {
    return svc_.ClaimIdempotencyKey(scope, key, fingerprint);
  };
  auto claimed = co_await pool_.Run(Ctx(req), std::move(claim));
  if (!claimed.ok()) co_return ErrorResponse(claimed.error());
  if (claimed->has_value()) {
    const data::IdempotencyRecord& rec = **claimed;
    if (rec.fingerprint != fingerprint)
      co_return http::JsonError(422, "idempotency_key_reused",
                                "this Idempotency-Key was used for a different request");
    if (rec.status == 0) {
      Response busy = http::JsonError(
          409, "idempotency_in_progress",
          "a request with this Idempotency-Key is still running (or its outcome is unknown)");
      busy.set("Retry-After", "1");
      co_return busy;
    }
    Response replay = http::Json(rec.status, rec.body);
    replay.set("Idempotent-Replayed", "true");
    co_return replay;
  }
  Response resp = co_await handler(req);
  // A 429 (the throttle) had no effect and is worth retrying later: released, like a 5xx below.
  if (resp.status < 500 && resp.status != 429) {
    auto finish = [this, scope, key, status = resp.status, body = resp.body] {
      return svc_.FinishIdempotencyKey(scope, key, status, body);
    };
    (void)co_await pool_.Run(Ctx(req), std::move(finish));
  } else if (resp.status != 503) {
    // It failed before any effect: a retry may run it. (A 503 may have committed: the claim
    // stays, and a retry gets 409 until the claim goes stale.)
    auto release = [this, scope, key] { return svc_.ReleaseIdempotencyKey(scope, key); };
    (void)co_await pool_.Run(Ctx(req), std::move(release));
  }
  co_return resp;
}

void WebApp::AddRoutes() {
  auto& r = router_;
  // Resolves the caller's session, or an error response (401 / 403 CSRF).
  auto auth = [this](Request& req) -> awaitable<Result<int64_t>> {
    Credentials creds = ExtractCredentials(req);
    if (Status st = CheckCsrf(req, creds); !st.ok()) co_return st.error();
    if (creds.source == AuthSource::kNone)
      co_return MakeError(Errc::kUnauthenticated, "unauthenticated", "log in first");
    if (auto cached = svc_.CachedSession(creds.token)) co_return *cached;
    auto work = [this, t = creds.token] { return svc_.Authenticate(t); };
    co_return co_await pool_.Run(Ctx(req), std::move(work));
  };

  node::AddOpsRoutes(r, ready_, metrics_);  // /livez, /readyz, /metrics as every node

  // The reshard's nudge at a cut-over (WebOptions::shard_map_refresh). An etcd read, at most
  // one at a time per node (the watcher coalesces callers), and only for a caller that proves
  // it holds the shard map's secret: the balancers forward every path.
  r.Add("POST", "/shardmap/refresh", [this](Request& req) -> awaitable<Response> {
    if (!opt_.shard_map_refresh)
      co_return ErrorResponse(MakeError(Errc::kNotFound, "not_sharded", "no shard map here"));
    if (!opt_.shard_map_refresh_token.empty()) {
      auto h = req.header("Authorization");
      std::string given(h ? *h : std::string_view());
      if (!secret::Equal(given, "Bearer " + opt_.shard_map_refresh_token))
        co_return ErrorResponse(
            MakeError(Errc::kForbidden, "forbidden", "the shard map refresh is the reshard's"));
    }
    // ?version=N: the version the caller published; a node that routes by it already (a write
    // of its met wrong_shard and re-read the map) answers without reading etcd.
    int64_t want = 0;
    if (auto v = req.query_param("version")) want = std::atoll(v->c_str());
    auto work = [this, want]() -> Result<std::string> {
      return "{\"version\":" + std::to_string(opt_.shard_map_refresh(want)) + "}";
    };
    co_return Answer(200, co_await pool_.Run(Ctx(req), std::move(work)));
  });

  r.Add("GET", "/", [this](Request&) -> awaitable<Response> {
    Response resp;
    resp.static_body = assets_->index_html;  // lives as long as the WebApp
    resp.set("Content-Type", "text/html; charset=utf-8");
    resp.set("Cache-Control", "no-cache");
    resp.set("Content-Security-Policy", assets_->csp);
    co_return resp;
  });
  r.Add("GET", "/assets/{name}", [this](Request& req) -> awaitable<Response> {
    auto it = assets_->by_path.find(req.param("name"));
    if (it == assets_->by_path.end()) co_return http::JsonError(404, "not_found", "no such asset");
    Response resp;
    resp.static_body = it->second->bytes;  // compiled in: no copy per response
    resp.set("Content-Type", std::string(it->second->content_type));
    resp.set("Cache-Control", "public, max-age=31536000, immutable");
    co_return resp;
  });
  r.Add("GET", "/media/{key...}", [this](Request& req) -> awaitable<Response> {
    std::string key(req.param("key"));
    if (!ValidMediaKey(key)) co_return http::JsonError(404, "not_found", "no such media");
    std::string etag = "\"" + key + "\"";
    Response resp;
    resp.set("Cache-Control", "public, max-age=31536000, immutable");
    resp.set("ETag", etag);
    if (auto inm = req.header("if-none-match"); inm && *inm == etag) {
      resp.status = 304;
      co_return resp;
    }
    auto work = [this, key] { return svc_.Media(key); };
    auto blob = co_await pool_.Run(Ctx(req), std::move(work));
    if (!blob.ok()) co_return ErrorResponse(blob.error());
    resp.set("Content-Type", blob->content_type);
    resp.body = std::move(blob->bytes);
    co_return resp;
  });

  r.Add("POST", "/api/users", [this](Request& req) -> awaitable<Response> {
    if (Status st = CheckCsrf(req, {}); !st.ok()) co_return ErrorResponse(st.error());
    if (Status st = RequireJson(req); !st.ok()) co_return ErrorResponse(st.error());
    auto in = ParseSignUp(req.body);
    if (!in.ok()) co_return ErrorResponse(in.error());
    // Throttled per client address before the password is hashed.
    int64_t retry_s = 0;
    auto work = [this, in = std::move(*in), source = ClientAddress(req, opt_.trusted_proxies),
                 &retry_s]() -> Result<std::string> {
      if ((retry_s = throttle_->CheckSignUp(source)) > 0)
        return MakeError(Errc::kRateLimited, "rate_limited",
                         "too many sign-ups from this address; try again later");
      return svc_.SignUp(in);
    };
    Response resp = Answer(201, co_await pool_.Run(Ctx(req), std::move(work)));
    if (retry_s > 0) resp.set("Retry-After", std::to_string(retry_s));
    co_return resp;
  });
  r.Add("POST", "/api/sessions", [this](Request& req) -> awaitable<Response> {
    if (Status st = CheckCsrf(req, {}); !st.ok()) co_return ErrorResponse(st.error());
    if (Status st = RequireJson(req); !st.ok()) co_return ErrorResponse(st.error());
    auto in = ParseLogIn(req.body);
    if (!in.ok()) co_return ErrorResponse(in.error());
    // The throttle decides before the password is verified: a blocked (account, address) gets
    // 429 whether its password is right or not.
    int64_t retry_s = 0;
    std::chrono::milliseconds delay{0};
    auto work = [this, in = std::move(*in), source = ClientAddress(req, opt_.trusted_proxies),
                 &retry_s, &delay]() -> Result<NewSession> {
      LoginCheck check = throttle_->CheckLogin(in.handle, source);
      if (check.retry_after_s > 0) {
        retry_s = check.retry_after_s;
        return MakeError(Errc::kRateLimited, "rate_limited",
                         "too many failed log-ins; try again later");
      }
      auto s = svc_.LogIn(in);
      if (s.ok())
        throttle_->LoginSucceeded(in.handle, source);
      else if (s.error().status() == 401)
        delay = throttle_->LoginFailed(in.handle, source, check.under_attack);
      return s;
    };
    auto s = co_await pool_.Run(Ctx(req), std::move(work));
    if (!s.ok()) {
      if (delay.count() > 0) {
        // An account under attack: failed answers come slowly (on a timer, not a thread).
        boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, delay);
        boost::system::error_code ec;
        co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
      }
      Response resp = ErrorResponse(s.error());
      if (retry_s > 0) resp.set("Retry-After", std::to_string(retry_s));
      co_return resp;
    }
    Response resp = Ok(201, RenderSession(s->user_id, s->token, s->expires_ms));
    int64_t max_age = (s->expires_ms - Env::Default().WallMillis()) / 1000;
    resp.set("Set-Cookie", SessionCookie(s->token, max_age, Secure(req)));
    resp.set("Cache-Control", "no-store");
    co_return resp;
  });
  r.Add("DELETE", "/api/sessions/current", [this, auth](Request& req) -> awaitable<Response> {
    auto uid = co_await auth(req);
    if (!uid.ok()) co_return ErrorResponse(uid.error());
    auto work = [this, t = ExtractCredentials(req).token] { return svc_.LogOut(t); };
    auto st = co_await pool_.Run(Ctx(req), std::move(work));
    if (!st.ok()) co_return ErrorResponse(st.error());
    Response resp = NoContent();
    resp.set("Set-Cookie", SessionCookie("", 0, Secure(req)));
    co_return resp;
  });
  r.Add("GET", "/api/me", [this, auth](Request& req) -> awaitable<Response> {
    auto uid = co_await auth(req);
    if (!uid.ok()) co_return ErrorResponse(uid.error());
    auto work = [this, id = *uid] { return svc_.User(id); };
    co_return Answer(200, co_await pool_.Run(Ctx(req), std::move(work)));
  });
  r.Add("PATCH", "/api/me", [this, auth](Request& req) -> awaitable<Response> {
    auto uid = co_await auth(req);
    if (!uid.ok()) co_return ErrorResponse(uid.error());
    if (Status st = RequireJson(req); !st.ok()) co_return ErrorResponse(st.error());
    auto patch = ParseProfilePatch(req.body);
    if (!patch.ok()) co_return ErrorResponse(patch.error());
    auto work = [this, id = *uid, p = std::move(*patch)] { return svc_.UpdateProfile(id, p); };
    co_return Answer(200, co_await pool_.Run(Ctx(req), std::move(work)));
  });
  r.Add("GET", "/api/users/by-handle/{handle}", [this](Request& req) -> awaitable<Response> {
    auto work = [this, h = std::string(req.param("handle"))] { return svc_.UserByHandle(h); };
    co_return Answer(200, co_await pool_.Run(Ctx(req), std::move(work)));
  });
  r.Add("GET", "/api/users/{id}", [this](Request& req) -> awaitable<Response> {
    auto id = PathId(req);
    if (!id.ok()) co_return ErrorResponse(id.error());
    hot_->Note(*id);
    // The hot path: a cache hit never leaves the event loop.
    if (auto cached = svc_.CachedUser(*id)) co_return Ok(200, std::move(*cached));
    auto work = [this, id = *id] { return svc_.User(id); };
    co_return Answer(200, co_await pool_.Run(Ctx(req), std::move(work)));
  });
  r.Add("GET", "/api/users/{id}/photos", [this](Request& req) -> awaitable<Response> {
    auto id = PathId(req);
    if (!id.ok()) co_return ErrorResponse(id.error());
    hot_->Note(*id);
    auto page = ParsePage(req);
    if (!page.ok()) co_return ErrorResponse(page.error());
    auto work = [this, id = *id, p = *page] { return svc_.UserPhotos(id, p.before, p.limit); };
    co_return Answer(200, co_await pool_.Run(Ctx(req), std::move(work)));
  });
  auto follows = [this](bool followers) {
    return [this, followers](Request& req) -> awaitable<Response> {
      auto id = PathId(req);
      if (!id.ok()) co_return ErrorResponse(id.error());
      hot_->Note(*id);
      auto work = [this, id = *id, followers] {
        return followers ? svc_.Followers(id) : svc_.Following(id);
      };
      co_return Answer(200, co_await pool_.Run(Ctx(req), std::move(work)));
    };
  };
  r.Add("GET", "/api/users/{id}/followers", follows(true));
  r.Add("GET", "/api/users/{id}/following", follows(false));
  auto follow = [this, auth](bool on) {
    return [this, auth, on](Request& req) -> awaitable<Response> {
      auto uid = co_await auth(req);
      if (!uid.ok()) co_return ErrorResponse(uid.error());
      auto id = PathId(req);
      if (!id.ok()) co_return ErrorResponse(id.error());
      auto work = [this, me = *uid, target = *id, on] {
        return on ? svc_.Follow(me, target) : svc_.Unfollow(me, target);
      };
      Status st = co_await pool_.Run(Ctx(req), std::move(work));
      co_return st.ok() ? NoContent() : ErrorResponse(st.error());
    };
  };
  r.Add("POST", "/api/users/{id}/follow", follow(true));
  r.Add("DELETE", "/api/users/{id}/follow", follow(false));

  r.Add("POST", "/api/photos", [this, auth](Request& req) -> awaitable<Response> {
    auto uid = co_await auth(req);
    if (!uid.ok()) co_return ErrorResponse(uid.error());
    auto ct = req.header("content-type");
    std::string type(ct ? ct->substr(0, ct->find(';')) : std::string_view());
    if (type != "image/jpeg" && type != "image/png" && type != "image/webp")
      co_return http::JsonError(415, "unsupported_media_type",
                                "upload image/jpeg, image/png or image/webp");
    if (req.body.size() > opt_.max_upload_bytes)
      co_return http::JsonError(413, "payload_too_large", "image above the upload limit");
    if (req.body.empty()) co_return http::JsonError(400, "bad_image", "empty body");
    std::string caption;
    if (req.query.find("caption=") != std::string::npos) {
      auto c = req.query_param("caption");
      if (!c) co_return http::JsonError(400, "bad_query", "caption is not valid percent-encoding");
      caption = std::move(*c);
    }
    if (caption.size() > 2000)
      co_return http::JsonError(400, "bad_query", "caption is limited to 2000 bytes");
    auto work = [this, id = *uid, type, body = std::move(req.body),
                 c = std::move(caption)]() mutable {
      return svc_.Upload(id, type, body, std::move(c));
    };
    co_return Answer(201, co_await pool_.Run(Ctx(req), std::move(work)));
  });
  r.Add("GET", "/api/photos/{id}", [this](Request& req) -> awaitable<Response> {
    auto id = PathId(req);
    if (!id.ok()) co_return ErrorResponse(id.error());
    if (auto cached = svc_.CachedPhoto(*id)) co_return Ok(200, std::move(*cached));
    auto work = [this, id = *id] { return svc_.Photo(id); };
    co_return Answer(200, co_await pool_.Run(Ctx(req), std::move(work)));
  });
  r.Add("POST", "/api/photos/{id}/edits", [this, auth](Request& req) -> awaitable<Response> {
    auto uid = co_await auth(req);
    if (!uid.ok()) co_return ErrorResponse(uid.error());
    auto id = PathId(req);
    if (!id.ok()) co_return ErrorResponse(id.error());
    if (Status st = RequireJson(req); !st.ok()) co_return ErrorResponse(st.error());
    auto work = [this, me = *uid, id = *id, b = std::move(req.body)] {
      return svc_.RequestEdit(me, id, b);
    };
    co_return Answer(202, co_await pool_.Run(Ctx(req), std::move(work)));
  });
  r.Add("GET", "/api/feed", [this, auth](Request& req) -> awaitable<Response> {
    auto uid = co_await auth(req);
    if (!uid.ok()) co_return ErrorResponse(uid.error());
    auto page = ParsePage(req);
    if (!page.ok()) co_return ErrorResponse(page.error());
    auto work = [this, id = *uid, p = *page] { return svc_.Feed(id, p.before, p.limit); };
    co_return Answer(200, co_await pool_.Run(Ctx(req), std::move(work)));
  });
  r.Add("GET", "/api/jobs/{id}", [this, auth](Request& req) -> awaitable<Response> {
    auto uid = co_await auth(req);
    if (!uid.ok()) co_return ErrorResponse(uid.error());
    auto id = PathId(req);
    if (!id.ok()) co_return ErrorResponse(id.error());
    co_return co_await GetJob(req, *uid, *id);
  });
}

}  // namespace millions::app
