#include <boost/json.hpp>
#include <random>

#include "core/config.h"
#include "core/env.h"
#include "core/http_client.h"
#include "core/log.h"
#include "core/tls.h"
#include "roles/lb/forward.h"
#include "roles/lb/proxy_internal.h"

namespace millions::lb {
using boost::asio::awaitable;
using Clock = std::chrono::steady_clock;

namespace {

upstream::Options UpstreamOptions(const LbConfig& cfg,
                                  std::shared_ptr<boost::asio::ssl::context> tls) {
  upstream::Options o;
  o.tls = std::move(tls);
  o.connect_timeout = std::chrono::milliseconds(cfg.connect_timeout_ms);
  o.backend_timeout = std::chrono::milliseconds(cfg.backend_timeout_ms);
  o.stream_over = kStreamOver;
  // Every context of the balancer is run by one thread (run.cc: one thread, or a context per
  // thread): backend answers are read through the poller.
  o.one_thread = true;
  o.pipeline_depth = static_cast<size_t>(cfg.settings.pipeline_depth);
  return o;
}

std::string_view FailureName(upstream::Failure f) {
  switch (f) {
    case upstream::Failure::kNone:
      return "";
    case upstream::Failure::kConnect:
      return "connect";
    case upstream::Failure::kHandshake:
      return "tls_handshake";
    case upstream::Failure::kReset:
      return "reset";
    case upstream::Failure::kTimeout:
      return "timeout";
  }
  return "";
}

}  // namespace

membership::Members ToMembers(const std::vector<Backend>& backends, bool tls) {
  membership::Members out;
  out.reserve(backends.size());
  for (const auto& b : backends) out.push_back({b.name, b.address, b.weight, tls ? b.address : ""});
  return out;
}

std::vector<Backend> ToBackends(const membership::Members& members, bool tls) {
  std::vector<Backend> out;
  out.reserve(members.size());
  for (const auto& m : members) {
    const std::string& address = tls ? m.tls_address : m.address;
    if (address.empty()) {
      // Never its plain listener instead: the pool would quietly drop to plain HTTP.
      log::Warn("web node has no TLS listener: left out of the pool", {{"backend", m.name}});
      continue;
    }
    out.push_back({m.name, address, m.weight, nullptr});
  }
  return out;
}

Proxy::Proxy(const LbConfig& cfg)
    : cfg_(cfg),
      policy_(std::shared_ptr<Policy>(MakePolicy(cfg.settings.policy))),
      health_options_(ToHealthOptions(cfg.settings)),
      limiter_(cfg.settings.rate_limit_rps, cfg.settings.rate_limit_burst),
      // Throws (start-up) when the CA cannot be read.
      upstream_tls_(cfg.settings.upstream_tls ? tls::ClientContext(cfg.settings.upstream_ca)
                                              : nullptr),
      upstream_(UpstreamOptions(cfg, upstream_tls_)) {
  const bool tls = cfg.settings.upstream_tls;
  if (cfg.runner_admin.empty()) {
    auto s = std::make_unique<membership::StaticMembership>(ToMembers(cfg.backends, tls));
    static_members_ = s.get();
    membership_ = std::move(s);
  } else {
    // Under a runner, it owns the pool: the topology's list serves until it first answers.
    membership_ = std::make_unique<membership::RunnerMembership>(
        cfg.runner_admin, "web", ToMembers(cfg.backends, tls), cfg.runner_token);
  }
  Publish(cfg.backends);
  registry_.AddCollector([this](metrics::Families* out) { CollectMetrics(out); });
}

BackendHealth& Proxy::Health(const Backend& b) {
  std::lock_guard lock(mu_);
  auto& h = health_[b.name];
  if (!h) {
    h = std::make_unique<BackendHealth>(health_options_, Env::Default(), b.stats);
    b.stats->health = h.get();  // found without the map on the request path
  }
  return *h;
}

void Proxy::Publish(std::vector<Backend> backends) {
  {
    std::lock_guard lock(mu_);
    for (auto& b : backends) {
      auto& s = stats_[b.name];
      if (!s) s = b.stats ? b.stats : std::make_shared<BackendStats>();
      // A backend keeps its counters and health across snapshots.
      b.stats = s;
    }
  }
  auto pool = std::make_shared<Pool>();
  pool->backends = std::move(backends);
  for (const auto& b : pool->backends) Health(b);  // before publishing: requests need it
  policy_.load()->Rebuild(*pool);
  pool_.store(pool);
}

awaitable<http::Response> Proxy::Handle(http::Request& req) {
  req.route = "proxy";
  if (!limiter_.Allow(req.remote_addr)) {
    http::Response r = http::JsonError(429, "rate_limited", "too many requests from this address");
    r.set("Retry-After", "1");
    co_return r;
  }
  static thread_local std::mt19937_64 rng(std::random_device{}());
  auto pool = pool_.load();
  auto policy = policy_.load();
  PickContext ctx;
  ctx.random = rng();
  std::string key;
  const std::string& hash_header = cfg_.settings.hash_header;
  if (!hash_header.empty()) {
    if (hash_header.rfind("cookie:", 0) == 0) {
      key = req.cookie(hash_header.substr(7)).value_or("");
    } else if (auto h = req.header(hash_header)) {
      key = std::string(*h);
    }
    ctx.hash_key = key;
  }
  int exclude = -1, attempts = 0;
  for (int attempt = 0; attempt < upstream::kMaxAttempts; ++attempt) {
    int idx = policy->Pick(*pool, ctx, exclude);
    if (idx < 0) break;
    ++attempts;
    const Backend& b = pool->backends[idx];
    b.stats->outstanding.fetch_add(1);
    auto t0 = Clock::now();
    // The headers a backend sees are the balancer's (forward.h); the client carries them.
    std::string head = UpstreamHead(req, b.address);
    upstream::Outcome out = co_await upstream_.Forward(b.name, b.address, head, req);
    b.stats->outstanding.fetch_sub(1);
    if (out.client_error)  // not the backend's fault: no health penalty, no retry
      co_return http::JsonError(out.client_error->status(), out.client_error->code,
                                out.client_error->message);
    bool failed = out.failure != upstream::Failure::kNone || out.response.status >= 500;
    b.stats->health->OnRequest(failed);
    int status = out.failure == upstream::Failure::kNone ? out.response.status : 0;
    double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    Count(b.name, status, seconds);
    // One line per attempt at debug (the access log); a failed one (5xx, no answer) at warn.
    // At the default level a success builds nothing: the fields are made only when written.
    log::Level level = failed ? log::Level::kWarn : log::Level::kDebug;
    if (log::Enabled(level))
      log::Write(level, {req.request_id, req.trace_id}, "proxied",
                 {{"backend", b.name},
                  {"status", status},
                  {"duration_ms", seconds * 1000},
                  {"attempt", attempt},
                  {"failure", FailureName(out.failure)},
                  {"why", out.detail}});
    if (out.failure == upstream::Failure::kNone)
      co_return std::move(out.response);  // a copy here cost 1 in 9 allocations
    if (!upstream::ShouldRetry(out, req.method, attempt)) break;
    CountRetry();
    exclude = idx;
  }
  log::Write(log::Level::kWarn, {req.request_id, req.trace_id}, "no backend could answer",
             {{"method", req.method}, {"attempts", attempts}});
  co_return http::JsonError(503, "no_backend", "no web node could answer");
}

void Proxy::CheckAll() {
  // Membership: under a runner, its view of running web nodes.
  if (membership_->Refresh()) {
    auto now = membership_->Current();
    log::Info("pool changed", {{"backends", int64_t(now->size())}});
    Publish(ToBackends(*now, cfg_.settings.upstream_tls));
  }
  auto pool = pool_.load();
  for (const auto& b : pool->backends) {
    auto hp = config::ParseHostPort(b.address);
    http::FetchRequest r;
    r.host = hp.host;
    r.port = hp.port;
    r.target = "/readyz";
    r.timeout = std::chrono::milliseconds(std::min(cfg_.settings.check_interval_ms, 2000));
    r.tls = upstream_tls_;  // the check goes where requests go: over TLS, the cert verified
    auto res = http::Fetch(r);
    BackendHealth& h = Health(b);
    h.OnCheck(res.ok() && res->status == 200);
    h.Tick();
  }
}

std::string Proxy::StatusJson() {
  boost::json::array arr;
  for (const auto& b : pool_.load()->backends) {
    BackendHealth& h = Health(b);
    arr.push_back(boost::json::object{{"name", b.name},
                                      {"address", b.address},
                                      {"up", b.stats->healthy.load()},
                                      {"outstanding", b.stats->outstanding.load()},
                                      {"weight_factor", b.stats->weight_factor.load()},
                                      {"ejections", h.ejections()}});
  }
  std::string policy;
  {
    std::lock_guard lock(mu_);
    policy = cfg_.settings.policy;
  }
  return boost::json::serialize(boost::json::object{
      {"policy", policy}, {"upstream_tls", cfg_.settings.upstream_tls}, {"backends", arr}});
}

}  // namespace millions::lb
