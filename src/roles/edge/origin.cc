// The edge's side toward the origin: its construction, the request an origin sees, the choice
// of origin (this dc's healthy ones in turn, then the others'), health checks, and the metrics.
#include <boost/json/serialize.hpp>

#include "core/config.h"
#include "core/http_client.h"
#include "core/log.h"
#include "roles/edge/edge_internal.h"

namespace millions::edge {
namespace asio = boost::asio;

namespace {

upstream::Options ClientOptions(const EdgeConfig& cfg) {
  upstream::Options o;
  o.connect_timeout = std::chrono::milliseconds(cfg.settings.connect_timeout_ms);
  o.backend_timeout = std::chrono::milliseconds(cfg.settings.origin_timeout_ms);
  // Bodies above this reach the edge as a stream: sent on to the client as they arrive.
  o.stream_over = 256 * 1024;
  o.one_thread = true;  // every context is run by one thread (serve.cc)
  return o;
}

}  // namespace

Edge::Impl::Metrics::Metrics(metrics::Registry& r)
    : hit(r.GetCounter("millions_edge_requests_total", "Requests by how the edge answered.",
                       {{"result", "hit"}})),
      miss(r.GetCounter("millions_edge_requests_total", "Requests by how the edge answered.",
                        {{"result", "miss"}})),
      stale(r.GetCounter("millions_edge_requests_total", "Requests by how the edge answered.",
                         {{"result", "stale"}})),
      pass(r.GetCounter("millions_edge_requests_total", "Requests by how the edge answered.",
                        {{"result", "pass"}})),
      coalesced(r.GetCounter("millions_edge_coalesced_total",
                             "Misses that waited for another request's origin fetch.", {})),
      bytes_cache(r.GetCounter("millions_edge_bytes_total", "Body bytes sent to clients.",
                               {{"source", "cache"}})),
      bytes_origin(r.GetCounter("millions_edge_bytes_total", "Body bytes sent to clients.",
                                {{"source", "origin"}})),
      purge_url(r.GetCounter("millions_edge_purges_total", "Purge requests.", {{"by", "url"}})),
      purge_prefix(
          r.GetCounter("millions_edge_purges_total", "Purge requests.", {{"by", "prefix"}})),
      purge_tag(r.GetCounter("millions_edge_purges_total", "Purge requests.", {{"by", "tag"}})),
      revalidated(r.GetCounter("millions_edge_revalidations_total",
                               "Stale objects checked with the origin, by outcome.",
                               {{"outcome", "not_modified"}})),
      revalidated_changed(r.GetCounter("millions_edge_revalidations_total",
                                       "Stale objects checked with the origin, by outcome.",
                                       {{"outcome", "changed"}})),
      origin_errors(r.GetCounter("millions_edge_origin_errors_total",
                                 "Origin fetches that failed (no answer, or 500/502/503/504).",
                                 {})),
      stale_if_error(r.GetCounter("millions_edge_stale_if_error_total",
                                  "Stale objects served because the origin failed.", {})),
      objects(r.GetGauge("millions_edge_objects", "Objects in the memory tier.", {})),
      bytes(r.GetGauge("millions_edge_memory_bytes", "Bytes in the memory tier.", {})),
      disk_objects(r.GetGauge("millions_edge_disk_objects", "Objects in the disk tier.", {})),
      disk_bytes(r.GetGauge("millions_edge_disk_bytes", "Bytes in the disk tier.", {})),
      evictions(r.GetGauge("millions_edge_evictions", "Objects evicted from memory so far.", {})),
      origins_up(r.GetGauge("millions_edge_origins_up", "Origins whose checks pass.", {})) {}

Edge::Impl::Impl(const EdgeConfig& c, metrics::Registry& reg, Env& e)
    : cfg(c), env(e), store(OpenObjectStore(c.settings.store)), client(ClientOptions(c)), m(reg) {
  for (const auto& o : cfg.origins) {
    auto s = std::make_unique<OriginState>();
    s->origin = o;
    if (o.dc == cfg.dc) ++local_origins;
    origins.push_back(std::move(s));
  }
  if (local_origins == 0) local_origins = origins.size();  // no origin in this dc: all alike
}

bool Edge::Impl::KnownHost(const std::string& host) {
  // Each thread remembers the hosts it saw admitted, so a hit takes no lock shared by threads.
  thread_local const Impl* owner = nullptr;
  thread_local std::set<std::string> seen;
  if (owner != this) {
    owner = this;
    seen.clear();
  }
  if (seen.count(host)) return true;
  std::lock_guard lock(hosts_mu);
  if (hosts.count(host) || hosts.size() < kMaxHosts) {
    hosts.insert(host);
    seen.insert(host);
    return true;
  }
  return false;
}

asio::awaitable<FetchResult> Edge::Impl::Fetch(const http::Request& req, std::string_view method,
                                               bool fill, const ObjectPtr& validate) {
  std::string head;
  head.reserve(512 + req.target.size());
  head.append(method).append(" ").append(req.target).append(" HTTP/1.1\r\n");
  bool has_host = false;
  for (const auto& h : req.headers) {
    if (upstream::HopByHop(h.name) || Unforwarded(h.name)) continue;
    // A fill asks for the whole object: the client's conditionals and range are answered from
    // what is stored, not passed on.
    if (fill &&
        (http::IEquals(h.name, "range") || http::IEquals(h.name, "if-range") ||
         http::IEquals(h.name, "if-none-match") || http::IEquals(h.name, "if-modified-since") ||
         http::IEquals(h.name, "if-match") || http::IEquals(h.name, "if-unmodified-since")))
      continue;
    if (http::IEquals(h.name, "host")) has_host = true;
    head.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  if (validate)
    for (const auto& [name, value] : ValidationHeaders(validate->meta.info))
      head.append(name).append(": ").append(value).append("\r\n");
  head.append("Via: 1.1 ").append(cfg.name).append("\r\n");
  head.append("X-Request-Id: ").append(req.request_id).append("\r\n");
  // The request the upstream client sends the body of (and reads the answer by): a fill is a
  // GET without a body, whatever the client asked (HEAD answers come from the stored GET).
  http::Request fill_req;
  const http::Request* send = &req;
  if (fill) {
    fill_req.method = "GET";
    send = &fill_req;
  } else if (req.body_stream) {
    if (req.body_length) {
      head.append("Content-Length: ").append(std::to_string(*req.body_length)).append("\r\n");
    } else {
      head.append("Transfer-Encoding: chunked\r\n");
    }
  } else if (!req.body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    head.append("Content-Length: ").append(std::to_string(req.body.size())).append("\r\n");
  }
  size_t host_at = head.size();
  head.append("\r\n");

  FetchResult out;
  // This dc's healthy origins first, in turn; then the other dcs' healthy ones, in order; then,
  // when every check fails, each in order anyway (a check may lag a recovery).
  std::vector<OriginState*> order;
  const size_t n = origins.size(), local = local_origins;
  uint64_t start = next_origin.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < local; ++i) {
    OriginState* o = origins[(start + i) % local].get();
    if (o->up.load(std::memory_order_relaxed)) order.push_back(o);
  }
  for (size_t i = local; i < n; ++i)
    if (origins[i]->up.load(std::memory_order_relaxed)) order.push_back(origins[i].get());
  for (size_t i = 0; i < n; ++i)
    if (!origins[i]->up.load(std::memory_order_relaxed)) order.push_back(origins[i].get());
  for (int attempt = 0;
       attempt < static_cast<int>(order.size()) && attempt < upstream::kMaxAttempts; ++attempt) {
    OriginState* o = order[static_cast<size_t>(attempt)];
    std::string h = head;
    if (!has_host) h.insert(host_at, "Host: " + o->origin.address + "\r\n");
    out.request_time = Now();
    upstream::Outcome r = co_await client.Forward(o->origin.name, o->origin.address, h, *send);
    out.response_time = Now();
    if (r.failure == upstream::Failure::kNone) {
      out.ok = true;
      out.response = std::move(r.response);
      co_return out;
    }
    out.timeout = r.failure == upstream::Failure::kTimeout;
    if (r.client_error) {
      out.response =
          http::JsonError(r.client_error->status(), r.client_error->code, r.client_error->message);
      out.ok = true;
      co_return out;
    }
    if (!upstream::ShouldRetry(r, method, attempt)) break;
  }
  co_return out;
}

void Edge::Impl::CheckOrigins() {
  int up = 0;
  for (auto& o : origins) {
    auto hp = config::ParseHostPort(o->origin.address);
    http::FetchRequest r;
    r.host = hp.host;
    r.port = hp.port;
    r.target = "/readyz";
    r.timeout = std::chrono::milliseconds(std::min(cfg.settings.check_interval_ms, 2000));
    auto res = http::Fetch(r);
    bool pass = res.ok() && res->status == 200;
    o->fails = pass ? 0 : o->fails + 1;
    o->passes = pass ? o->passes + 1 : 0;
    bool was = o->up.load();
    if (was && o->fails >= cfg.settings.fall) o->up = false;
    if (!was && o->passes >= cfg.settings.rise) o->up = true;
    if (was != o->up.load())
      log::Info(o->up ? "origin up" : "origin down",
                {{"origin", o->origin.name}, {"address", o->origin.address}});
    up += o->up ? 1 : 0;
  }
  m.origins_up.Set(up);
  StoreStats s = store->Stats();
  m.objects.Set(double(s.memory_objects));
  m.bytes.Set(double(s.memory_bytes));
  m.disk_objects.Set(double(s.disk_objects));
  m.disk_bytes.Set(double(s.disk_bytes));
  m.evictions.Set(double(s.evictions));
}

}  // namespace millions::edge
