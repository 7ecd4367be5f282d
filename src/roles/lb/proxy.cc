#include "roles/lb/proxy.h"

#include <poll.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/json.hpp>
#include <cstdio>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>

#include "core/config.h"
#include "core/env.h"
#include "core/http_client.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/router.h"
#include "roles/lb/forward.h"

namespace millions::lb {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::awaitable;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;

namespace {

bool Idempotent(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "PUT" || m == "DELETE";
}

// True when a pooled connection's peer has closed it (readable with nothing to read), so it is
// never reused for a request the backend would not see.
bool PeerClosed(beast::tcp_stream& s) {
  pollfd p{s.socket().native_handle(), POLLIN, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  char c;
  return recv(p.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
}

// A pooled connection to a backend, with its read buffer (kept: no allocation per request).
struct Upstream {
  explicit Upstream(asio::io_context& ioc) : stream(ioc) {}
  beast::tcp_stream stream;
  beast::flat_buffer buf;
  Clock::time_point idle_since;
};

// Responses up to this size are read whole; larger ones (and those of unknown length) are
// streamed to the client as they arrive.
constexpr uint64_t kStreamOver = 256 * 1024;

struct TokenBucket {
  double tokens;
  Clock::time_point last;
};

class Balancer {
 public:
  Balancer(const LbConfig& cfg, asio::io_context& ioc)
      : cfg_(cfg), ioc_(ioc), policy_(std::shared_ptr<Policy>(MakePolicy(cfg.policy))) {
    Publish(cfg.backends);
  }
  // SIGHUP: a new policy, pool, health settings and rate limits; connections are untouched.
  void Reconfigure(const LbConfig& next);

  awaitable<http::Response> Handle(http::Request& req);
  void CheckAll();  // active checks and membership, from a background thread
  std::string StatusJson();
  metrics::Registry& registry() { return registry_; }

 private:
  enum class Fail { kNone, kConnect, kReset, kTimeout };
  struct Outcome {
    Fail fail = Fail::kNone;
    http::Response resp;
    bool body_sent = false;             // some of a streamed request body went out: no retry
    std::optional<Error> client_error;  // reading the client's body failed (413, 400)
  };
  class UpstreamBody;
  awaitable<Outcome> Forward(const Backend& b, const http::Request& req);
  awaitable<beast::error_code> SendBody(Upstream& up, const http::Request& req, Outcome& out);
  std::unique_ptr<Upstream> TakeIdle(const std::string& name);
  void GiveBack(const std::string& name, std::unique_ptr<Upstream> s);
  void Publish(std::vector<Backend> backends);
  bool Allow(const std::string& ip);
  BackendHealth& Health(const Backend& b);
  void Count(const std::string& backend, int status, double seconds);

  LbConfig cfg_;
  asio::io_context& ioc_;
  std::atomic<std::shared_ptr<Policy>> policy_;
  std::atomic<std::shared_ptr<const Pool>> pool_;
  std::mutex mu_;  // health map, idle pools, buckets
  std::map<std::string, std::unique_ptr<BackendHealth>> health_;
  std::map<std::string, std::shared_ptr<BackendStats>> stats_;  // survive snapshots
  std::unordered_map<std::string, std::vector<std::unique_ptr<Upstream>>> idle_;
  std::unordered_map<std::string, TokenBucket> buckets_;
  std::atomic<double> rate_rps_{cfg_.rate_limit_rps};  // per client IP; changed by reloads
  std::atomic<double> rate_burst_{cfg_.rate_limit_burst};
  metrics::Registry registry_;
};

BackendHealth& Balancer::Health(const Backend& b) {
  std::lock_guard lock(mu_);
  auto& h = health_[b.name];
  if (!h) {
    h = std::make_unique<BackendHealth>(cfg_.health, Env::Default(), b.stats);
    b.stats->health = h.get();  // found without the map on the request path
  }
  return *h;
}

void Balancer::Publish(std::vector<Backend> backends) {
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

bool Balancer::Allow(const std::string& ip) {
  double rps = rate_rps_.load(std::memory_order_relaxed);
  if (rps <= 0) return true;  // off: no lock on the request path
  double burst = rate_burst_.load(std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  auto now = Clock::now();
  auto [it, fresh] = buckets_.try_emplace(ip, TokenBucket{burst, now});
  TokenBucket& b = it->second;
  double secs = std::chrono::duration<double>(now - b.last).count();
  b.tokens = std::min(burst, b.tokens + secs * rps);
  b.last = now;
  if (buckets_.size() > 100000) buckets_.clear();  // bounded memory under address sprays
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

std::unique_ptr<Upstream> Balancer::TakeIdle(const std::string& name) {
  auto now = Clock::now();
  std::lock_guard lock(mu_);
  auto& v = idle_[name];
  while (!v.empty()) {
    auto u = std::move(v.back());
    v.pop_back();
    // A backend closes a keep-alive connection after its idle timeout (seconds), so one used
    // moments ago is good without asking the kernel: that check was a syscall per request.
    if (now - u->idle_since < std::chrono::milliseconds(50) || !PeerClosed(u->stream)) return u;
  }
  return nullptr;
}

void Balancer::GiveBack(const std::string& name, std::unique_ptr<Upstream> u) {
  u->idle_since = Clock::now();
  std::lock_guard lock(mu_);
  auto& v = idle_[name];
  if (v.size() < 256) v.push_back(std::move(u));
}

// A response body streamed from a backend to the client. It owns the backend connection until
// the body ends, then gives it back to the pool (when the backend keeps it alive).
class Balancer::UpstreamBody final : public http::BodyStream {
 public:
  UpstreamBody(Balancer* lb, std::string backend, std::unique_ptr<Upstream> up,
               bhttp::response_parser<bhttp::string_body>&& p)
      : lb_(lb), backend_(std::move(backend)), up_(std::move(up)), parser_(std::move(p)) {
    parser_.body_limit(std::numeric_limits<uint64_t>::max());
  }

  awaitable<Status> Read(std::string& piece) override {
    piece.clear();
    if (!up_) co_return MakeError(Errc::kUnavailable, "backend_failed", "backend body ended");
    while (!parser_.is_done()) {
      piece.resize(64 * 1024);
      parser_.get().body().data = piece.data();
      parser_.get().body().size = piece.size();
      up_->stream.expires_after(std::chrono::milliseconds(lb_->cfg_.backend_timeout_ms));
      beast::error_code ec;
      co_await bhttp::async_read(up_->stream, up_->buf, parser_,
                                 asio::redirect_error(use_awaitable, ec));
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) {
        up_.reset();
        piece.clear();
        co_return MakeError(Errc::kUnavailable, "backend_failed", ec.message());
      }
      piece.resize(piece.size() - parser_.get().body().size);
      if (!piece.empty()) co_return Ok();
    }
    piece.clear();
    if (parser_.keep_alive() && up_->buf.size() == 0) lb_->GiveBack(backend_, std::move(up_));
    up_.reset();
    co_return Ok();
  }

 private:
  Balancer* lb_;
  std::string backend_;
  std::unique_ptr<Upstream> up_;
  bhttp::response_parser<bhttp::buffer_body> parser_;
};

awaitable<beast::error_code> Balancer::SendBody(Upstream& up, const http::Request& req,
                                                Outcome& out) {
  beast::error_code ec;
  std::string piece;
  const bool chunked = !req.body_length;
  for (;;) {
    Status st = co_await req.body_stream->Read(piece);
    if (!st.ok()) {  // the client's side failed: its error is the answer
      out.client_error = st.error();
      co_return make_error_code(beast::errc::io_error);
    }
    out.body_sent = true;
    up.stream.expires_after(std::chrono::milliseconds(cfg_.backend_timeout_ms));
    if (piece.empty()) {
      if (chunked)
        co_await asio::async_write(up.stream, asio::buffer("0\r\n\r\n", 5),
                                   asio::redirect_error(use_awaitable, ec));
      co_return ec;
    }
    if (chunked) {
      char size[24];
      int n = std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
      std::array<asio::const_buffer, 3> bufs{asio::buffer(size, static_cast<size_t>(n)),
                                             asio::buffer(piece), asio::buffer("\r\n", 2)};
      co_await asio::async_write(up.stream, bufs, asio::redirect_error(use_awaitable, ec));
    } else {
      co_await asio::async_write(up.stream, asio::buffer(piece),
                                 asio::redirect_error(use_awaitable, ec));
    }
    if (ec) co_return ec;
  }
}

awaitable<Balancer::Outcome> Balancer::Forward(const Backend& b, const http::Request& req) {
  Outcome out;
  auto up = TakeIdle(b.name);
  bool reused = up != nullptr;
  beast::error_code ec;
  if (!up) {
    up = std::make_unique<Upstream>(ioc_);
    auto hp = config::ParseHostPort(b.address);
    up->stream.expires_after(std::chrono::milliseconds(cfg_.connect_timeout_ms));
    asio::ip::tcp::endpoint ep(asio::ip::make_address(hp.host), static_cast<uint16_t>(hp.port));
    co_await up->stream.async_connect(ep, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      out.fail = Fail::kConnect;
      co_return out;
    }
    up->stream.socket().set_option(asio::ip::tcp::no_delay(true), ec);
  }
  // The request as one gather write: our header block, then the client's body untouched.
  std::string head = UpstreamHead(req, b.address);
  up->stream.expires_after(std::chrono::milliseconds(cfg_.backend_timeout_ms));
  if (req.body_stream) {
    co_await asio::async_write(up->stream, asio::buffer(head),
                               asio::redirect_error(use_awaitable, ec));
    if (!ec) ec = co_await SendBody(*up, req, out);
  } else {
    std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(req.body)};
    // Offered to the socket directly first: a small request goes out without an event-loop
    // round trip; the rest (if any) asynchronously.
    auto& sock = up->stream.socket();
    if (!sock.non_blocking()) sock.non_blocking(true, ec);
    size_t n = sock.write_some(bufs, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec = {};
      n = 0;
    }
    if (!ec && n < head.size() + req.body.size()) {
      beast::buffers_suffix<std::array<asio::const_buffer, 2>> rest(bufs);
      rest.consume(n);
      co_await asio::async_write(up->stream, rest, asio::redirect_error(use_awaitable, ec));
    }
  }
  if (ec) {
    // A write that fails on a fresh connection never reached the backend either.
    out.fail = reused ? Fail::kReset : Fail::kConnect;
    co_return out;
  }
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(boost::none);  // only bodies up to kStreamOver are read whole, below
  if (req.method == "HEAD") parser.skip(true);
  co_await bhttp::async_read_header(up->stream, up->buf, parser,
                                    asio::redirect_error(use_awaitable, ec));
  if (ec) {
    out.fail = ec == beast::error::timeout ? Fail::kTimeout : Fail::kReset;
    co_return out;
  }
  const auto& res = parser.get();
  out.resp.status = static_cast<int>(res.result_int());
  // Passed through as one pre-formatted block: a string per header was an allocation each.
  out.resp.raw_headers.reserve(512);
  for (const auto& f : res) {
    // The server writes X-Request-Id itself (the id the backend echoes).
    if (HopByHop(f.name_string()) || http::IEquals(f.name_string(), "x-request-id")) continue;
    out.resp.raw_headers.append(f.name_string()).append(": ").append(f.value()).append("\r\n");
  }
  auto length = parser.content_length();
  if (!parser.is_done() && (!length || *length > kStreamOver)) {
    if (length) out.resp.body_length = *length;
    out.resp.body_stream =
        std::make_shared<UpstreamBody>(this, b.name, std::move(up), std::move(parser));
    co_return out;
  }
  if (!parser.is_done() && up->buf.size() > 0) {
    // The body that came with the header, parsed in place: usually all of it.
    parser.eager(true);
    up->buf.consume(parser.put(up->buf.data(), ec));
    if (ec == bhttp::error::need_more) ec = {};
  }
  if (!ec && !parser.is_done())
    co_await bhttp::async_read(up->stream, up->buf, parser,
                               asio::redirect_error(use_awaitable, ec));
  if (ec) {
    out.fail = ec == beast::error::timeout ? Fail::kTimeout : Fail::kReset;
    co_return out;
  }
  bool keep = parser.keep_alive();
  out.resp.body = std::move(parser.get().body());
  if (keep && up->buf.size() == 0) GiveBack(b.name, std::move(up));
  co_return out;
}

void Balancer::Reconfigure(const LbConfig& next) {
  {
    std::lock_guard lock(mu_);
    rate_rps_ = next.rate_limit_rps;
    rate_burst_ = next.rate_limit_burst;
    cfg_.health = next.health;  // for backends seen from now on
    buckets_.clear();
  }
  std::string current;
  {
    std::lock_guard lock(mu_);
    current = cfg_.policy;
  }
  if (next.policy != current) {
    auto p = std::shared_ptr<Policy>(MakePolicy(next.policy));
    if (p) {
      p->Rebuild(*pool_.load());
      policy_.store(p);
      std::lock_guard lock(mu_);
      cfg_.policy = next.policy;
    }
  }
  if (cfg_.runner_admin.empty()) Publish(next.backends);  // under a runner, it owns the pool
  log::Info("configuration reloaded",
            {{"policy", next.policy}, {"backends", int64_t(next.backends.size())}});
}

void Balancer::Count(const std::string& backend, int status, double seconds) {
  // Per-thread handles, as the core server keeps them: no registry lock per request.
  struct Handles {
    metrics::Counter* requests;
    metrics::Histogram* duration;
  };
  thread_local std::unordered_map<std::string, Handles> cache;
  std::string key = backend;
  key.push_back('\0');
  key.append(std::to_string(status)).append(reinterpret_cast<const char*>(this), sizeof this);
  auto it = cache.find(key);
  if (it == cache.end()) {
    std::string code = status == 0 ? "error" : std::to_string(status);
    Handles h{&registry_.GetCounter("millions_lb_requests_total", "Requests sent to each backend.",
                                    {{"backend", backend}, {"code", code}}),
              &registry_.GetHistogram("millions_lb_backend_duration_seconds",
                                      "Backend response time.", {{"backend", backend}})};
    if (cache.size() > 4096) cache.clear();
    it = cache.emplace(std::move(key), h).first;
  }
  it->second.requests->Inc();
  it->second.duration->Observe(seconds);
}

awaitable<http::Response> Balancer::Handle(http::Request& req) {
  req.route = "proxy";
  if (!Allow(req.remote_addr)) {
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
  if (!cfg_.hash_header.empty()) {
    if (cfg_.hash_header.rfind("cookie:", 0) == 0) {
      key = req.cookie(cfg_.hash_header.substr(7)).value_or("");
    } else if (auto h = req.header(cfg_.hash_header)) {
      key = std::string(*h);
    }
    ctx.hash_key = key;
  }
  int exclude = -1;
  for (int attempt = 0; attempt < 3; ++attempt) {
    int idx = policy->Pick(*pool, ctx, exclude);
    if (idx < 0) break;
    const Backend& b = pool->backends[idx];
    b.stats->outstanding.fetch_add(1);
    auto t0 = Clock::now();
    Outcome out = co_await Forward(b, req);
    b.stats->outstanding.fetch_sub(1);
    if (out.client_error)  // not the backend's fault: no health penalty, no retry
      co_return http::JsonError(out.client_error->status(), out.client_error->code,
                                out.client_error->message);
    bool failed = out.fail != Fail::kNone || out.resp.status >= 500;
    b.stats->health->OnRequest(failed);
    Count(b.name, out.fail == Fail::kNone ? out.resp.status : 0,
          std::chrono::duration<double>(Clock::now() - t0).count());
    // A streamed body cannot be sent twice once any of it went out.
    bool retry =
        !out.body_sent && (out.fail == Fail::kConnect ||
                           (out.fail == Fail::kReset && Idempotent(req.method) && attempt == 0));
    if (out.fail == Fail::kNone)
      co_return std::move(out.resp);  // a copy here cost 1 in 9 allocations
    if (!retry) break;
    registry_.GetCounter("millions_lb_retries_total", "Requests retried on another backend.", {})
        .Inc();
    exclude = idx;
  }
  co_return http::JsonError(503, "no_backend", "no web node could answer");
}

void Balancer::CheckAll() {
  // Membership: the runner's view of running web nodes, when there is a runner.
  if (!cfg_.runner_admin.empty()) {
    auto hp = config::ParseHostPort(cfg_.runner_admin);
    http::FetchRequest r;
    r.host = hp.host;
    r.port = hp.port;
    r.target = "/api/status";
    r.timeout = std::chrono::milliseconds(500);
    if (auto res = http::Fetch(r); res.ok() && res->status == 200) {
      boost::system::error_code ec;
      auto v = boost::json::parse(res->body, ec);
      if (!ec) {
        std::vector<Backend> now;
        for (const auto& n : v.at("nodes").as_array()) {
          const auto& o = n.as_object();
          if (o.at("role").as_string() != "web" || o.at("state").as_string() != "running") continue;
          now.push_back({std::string(o.at("name").as_string()),
                         std::string(o.at("address").as_string()), 1, nullptr});
        }
        auto cur = pool_.load();
        bool same = cur->backends.size() == now.size();
        for (size_t i = 0; same && i < now.size(); ++i)
          same = cur->backends[i].name == now[i].name && cur->backends[i].address == now[i].address;
        if (!same && !now.empty()) {
          log::Info("pool changed", {{"backends", int64_t(now.size())}});
          Publish(std::move(now));
        }
      }
    }
  }
  auto pool = pool_.load();
  for (const auto& b : pool->backends) {
    auto hp = config::ParseHostPort(b.address);
    http::FetchRequest r;
    r.host = hp.host;
    r.port = hp.port;
    r.target = "/readyz";
    r.timeout = std::chrono::milliseconds(std::min(cfg_.check_interval_ms, 2000));
    auto res = http::Fetch(r);
    BackendHealth& h = Health(b);
    h.OnCheck(res.ok() && res->status == 200);
    h.Tick();
  }
}

std::string Balancer::StatusJson() {
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
    policy = cfg_.policy;
  }
  return boost::json::serialize(boost::json::object{{"policy", policy}, {"backends", arr}});
}

}  // namespace

int Run(const LbConfig& cfg) {
  log::Init(cfg.name, "lb", log::ParseLevel(cfg.log_level));
  // One event-loop thread: the reactor needs no locks per operation (nothing else touches this
  // io_context from another thread: the checker thread has its own client and context).
  asio::io_context ioc(cfg.threads == 1 ? BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO : cfg.threads);
  Balancer balancer(cfg, ioc);
  auto& reg = balancer.registry();
  reg.AddCollector([&balancer](std::string* out) {
    auto v = boost::json::parse(balancer.StatusJson());
    *out += "# TYPE millions_lb_backend_up gauge\n";
    for (const auto& b : v.at("backends").as_array())
      *out += "millions_lb_backend_up{backend=\"" + std::string(b.at("name").as_string()) + "\"} " +
              (b.at("up").as_bool() ? "1" : "0") + "\n";
    *out += "# TYPE millions_lb_ejections_total counter\n";
    for (const auto& b : v.at("backends").as_array())
      *out += "millions_lb_ejections_total{backend=\"" + std::string(b.at("name").as_string()) +
              "\"} " + std::to_string(b.at("ejections").to_number<int64_t>()) + "\n";
  });

  auto pub = config::ParseHostPort(cfg.listen);
  http::ServerOptions so;
  so.host = pub.host;
  so.port = pub.port;
  so.role = "lb";
  so.limits = cfg.limits;
  so.stream_bodies_over = kStreamOver;  // large uploads pass through, never held whole
  so.one_thread = cfg.threads == 1;
  http::HttpServer server(
      ioc, so, [&balancer](http::Request& req) { return balancer.Handle(req); }, &reg);

  // The admin listener: liveness, readiness, metrics and the balancer's view of its pool.
  std::atomic<bool> ready{false};
  http::Router admin_routes;
  admin_routes.Add("GET", "/livez", [](http::Request&) -> awaitable<http::Response> {
    co_return http::Json(200, "{\"ok\":true}");
  });
  admin_routes.Add("GET", "/readyz", [&ready](http::Request&) -> awaitable<http::Response> {
    if (!ready) co_return http::JsonError(503, "not_ready", "starting or draining");
    co_return http::Json(200, "{\"ready\":true}");
  });
  admin_routes.Add("GET", "/metrics", [&reg](http::Request&) -> awaitable<http::Response> {
    http::Response r;
    r.body = reg.Render();
    r.set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    co_return r;
  });
  admin_routes.Add("GET", "/status", [&balancer](http::Request&) -> awaitable<http::Response> {
    co_return http::Json(200, balancer.StatusJson());
  });
  auto adm = config::ParseHostPort(cfg.admin);
  http::ServerOptions ao;
  ao.host = adm.host;
  ao.port = adm.port;
  ao.role = "lb_admin";
  metrics::Registry admin_reg;
  http::HttpServer admin(
      ioc, ao,
      [&admin_routes](http::Request& req) -> awaitable<http::Response> {
        auto m = admin_routes.Find(req.method, req.path);
        if (m.outcome != http::Router::Outcome::kMatched)
          co_return http::JsonError(404, "not_found", "no such admin route");
        req.route = std::string(m.route);
        co_return co_await (*m.handler)(req);
      },
      &admin_reg);
  std::unique_ptr<http::HttpServer> tls_server;
  if (!cfg.tls_listen.empty()) {
    auto tl = config::ParseHostPort(cfg.tls_listen);
    http::ServerOptions to = so;
    to.host = tl.host;
    to.port = tl.port;
    to.tls_cert_file = cfg.tls_cert;
    to.tls_key_file = cfg.tls_key;
    tls_server = std::make_unique<http::HttpServer>(
        ioc, to, [&balancer](http::Request& req) { return balancer.Handle(req); }, &reg);
    tls_server->Start();
  }
  server.Start();
  admin.Start();

  std::atomic<bool> stop{false};
  std::thread checker([&] {
    while (!stop) {
      balancer.CheckAll();
      for (int i = 0; i < cfg.check_interval_ms / 50 && !stop; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  ready = true;
  log::Info("listening", {{"address", cfg.listen},
                          {"tls_address", cfg.tls_listen},
                          {"admin", cfg.admin},
                          {"policy", cfg.policy}});

  asio::signal_set hup(ioc, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_hup =
      [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        if (cfg.reload) {
          if (auto next = cfg.reload()) {
            balancer.Reconfigure(*next);
          } else {
            log::Warn("reload failed: keeping the running configuration");
          }
        }
        hup.async_wait(on_hup);
      };
  hup.async_wait(on_hup);
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    ready = false;
    hup.cancel();
    auto last = [&] { admin.Drain([&] { ioc.stop(); }); };
    server.Drain([&, last] {
      if (tls_server) {
        tls_server->Drain(last);
      } else {
        last();
      }
    });
  });
  std::vector<std::thread> threads;
  for (int i = 1; i < cfg.threads; ++i) threads.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();
  stop = true;
  checker.join();
  return 0;
}

}  // namespace millions::lb
