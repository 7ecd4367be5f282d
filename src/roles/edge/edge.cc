// The edge's request flow: look up, serve fresh, revalidate stale, coalesce misses, store what
// may be stored, pass the rest (edge.h).
#include "roles/edge/edge.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

#include "core/log.h"
#include "roles/edge/edge_internal.h"
#include "roles/edge/tee.h"

namespace millions::edge {
namespace asio = boost::asio;
using asio::awaitable;

Edge::Edge(const EdgeConfig& cfg, metrics::Registry& registry, Env& env)
    : impl_(std::make_shared<Impl>(cfg, registry, env)) {}
Edge::~Edge() = default;

awaitable<http::Response> Edge::Handle(http::Request& req) { return impl_->Handle(req); }
boost::asio::awaitable<http::Response> Edge::Purge(const http::Request& req) {
  http::Response res = impl_->Purge(req);
  if (res.status == 200) {
    // Off the event loop: the writer may be in the middle of a large file before it unlinks.
    auto sync = [impl = impl_]() -> Status {
      impl->store->SyncRemovals();
      return Ok();
    };
    Status st = co_await impl_->disk_pool.Run(std::move(sync));
    (void)st;
  }
  co_return res;
}
std::string Edge::StatusJson() const { return impl_->StatusJson(); }
void Edge::CheckOrigins() { impl_->CheckOrigins(); }

namespace {

HeaderLookup LookupIn(const http::Request& req) {
  return [&req](std::string_view name) { return RequestHeader(req, name); };
}

HeaderLookup LookupIn(const std::string& raw) {
  return [&raw](std::string_view name) { return RawHeader(raw, name); };
}

bool Unsafe(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

bool OriginFailed(int status) {
  return status == 500 || status == 502 || status == 503 || status == 504;
}

http::Response OriginError(const FetchResult& f) {
  return f.timeout ? http::JsonError(504, "origin_timeout", "the origin did not answer in time")
                   : http::JsonError(502, "origin_unavailable", "the origin cannot be reached");
}

std::string_view RawPath(std::string_view target) { return target.substr(0, target.find('?')); }

}  // namespace

awaitable<http::Response> Edge::Impl::Handle(http::Request& req) {
  const bool get = req.method == "GET", head = req.method == "HEAD";
  std::string host = RequestHeader(req, "host").value_or("");
  std::string key = CacheKey("GET", host, RawPath(req.target), req.query);
  if ((!get && !head) || !KnownHost(host)) co_return co_await Pass(req);
  CacheControl rcc = ParseCacheControl(RequestHeader(req, "cache-control").value_or(""));
  ObjectPtr obj = store->Lookup(key, LookupIn(req));
  if (!obj && !cfg.settings.store.disk_dir.empty()) {
    auto work = [this, key, headers = req.headers]() -> Result<ObjectPtr> {
      http::Request r;
      r.headers = headers;
      return store->LoadFromDisk(key, LookupIn(r));
    };
    auto loaded = co_await disk_pool.Run(std::move(work));
    if (loaded.ok()) obj = *loaded;
  }
  if (obj) {
    Decision d = Decide(obj->meta, rcc, Now());
    if (d.use == Use::kGatewayTimeout)
      co_return http::JsonError(504, "not_cached",
                                "only-if-cached and the stored copy needs the origin");
    if (d.use == Use::kFresh) {
      m.hit.Inc();
      co_return Serve(obj, req, "HIT", d.age);
    }
    if (d.use == Use::kStaleRevalidate) {
      m.stale.Inc();
      http::Request copy;
      copy.method = "GET";
      copy.target = req.target;
      copy.query = req.query;
      copy.headers = req.headers;
      copy.request_id = req.request_id;  // the origin's logs tie the refresh to its cause
      auto ex = co_await asio::this_coro::executor;
      asio::co_spawn(ex, RevalidateTask(shared_from_this(), key, std::move(copy), obj),
                     asio::detached);
      co_return Serve(obj, req, "STALE", d.age);
    }
  } else if (rcc.only_if_cached) {
    co_return http::JsonError(504, "not_cached", "only-if-cached and the edge does not hold it");
  }
  co_return co_await Miss(req, key, std::move(obj));
}

awaitable<http::Response> Edge::Impl::Miss(http::Request& req, const std::string& key,
                                           ObjectPtr stale) {
  auto [flight, lead] = Join(key);
  if (!lead) {
    m.coalesced.Inc();
    ObjectPtr o = co_await Wait(flight);
    if (o && VaryKey(o->meta.info.vary, LookupIn(req)) == o->vary_key) {
      m.hit.Inc();
      co_return Serve(o, req, "HIT",
                      CurrentAge(o->meta.info, o->meta.request_time, o->meta.response_time, Now()));
    }
    flight = nullptr;  // the leader stored nothing this request can use: fetch alone
  }
  auto finish = [&](ObjectPtr o) {
    if (flight) Finish(key, flight, std::move(o));
  };
  const uint64_t epoch = purge_epoch.load();
  FetchResult f = co_await Fetch(req, "GET", true, stale);
  CacheControl rcc = ParseCacheControl(RequestHeader(req, "cache-control").value_or(""));
  if (!f.ok || OriginFailed(f.response.status)) {
    m.origin_errors.Inc();
    finish(nullptr);
    if (stale && StaleIfError(stale->meta, rcc, Now(), cfg.settings.policy)) {
      m.stale.Inc();
      m.stale_if_error.Inc();
      co_return Serve(
          stale, req, "STALE",
          CurrentAge(stale->meta.info, stale->meta.request_time, stale->meta.response_time, Now()));
    }
    m.miss.Inc();
    if (!f.ok) co_return OriginError(f);
    co_return Answer(f, "MISS");
  }
  if (f.response.status == 304 && stale) {
    // Still valid: the stored body with the 304's headers (RFC 9111 §4.3.4).
    auto o = std::make_shared<Object>(*stale);
    o->headers = MergeHeaders(stale->headers, f.response.raw_headers);
    o->meta.info = ReadResponse(stale->status, LookupIn(o->headers));
    o->meta.request_time = f.request_time;
    o->meta.response_time = f.response_time;
    o->meta.lifetime = FreshnessLifetime(o->meta.info, f.response_time, cfg.settings.policy);
    PutUnlessPurged(o, epoch);
    finish(o);
    m.revalidated.Inc();
    m.hit.Inc();
    co_return Serve(o, req, "HIT",
                    CurrentAge(o->meta.info, f.request_time, f.response_time, Now()));
  }
  if (stale) m.revalidated_changed.Inc();
  m.miss.Inc();
  if (f.response.body_stream) {
    // Too large to hold before answering: the client gets it as it comes, and the tee keeps
    // a copy that is stored (and the flight finished) at its end.
    auto probe = ToObject(key, req, f, std::string());
    if (probe && f.response.body_length &&
        *f.response.body_length <= cfg.settings.store.max_object_bytes) {
      auto self = shared_from_this();
      std::shared_ptr<Flight> fl = flight;
      f.response.body_stream =
          MakeTee(std::move(f.response.body_stream), *f.response.body_length,
                  [self, key, fl, probe, epoch](std::string* body) {
                    ObjectPtr stored;
                    if (body) {
                      auto o = std::make_shared<Object>(*probe);
                      o->body = std::make_shared<const std::string>(std::move(*body));
                      self->PutUnlessPurged(o, epoch);
                      stored = o;
                    }
                    if (fl) self->Finish(key, fl, stored);
                  });
      m.bytes_origin.Inc(double(*f.response.body_length));
      co_return Answer(f, "MISS");
    }
    finish(nullptr);
    co_return Answer(f, "MISS");
  }
  m.bytes_origin.Inc(double(f.response.body.size()));
  ObjectPtr o = ToObject(key, req, f, f.response.body);
  finish(o);
  if (!o) co_return Answer(f, "MISS");
  PutUnlessPurged(o, epoch);
  co_return Serve(o, req, "MISS", CurrentAge(o->meta.info, f.request_time, f.response_time, Now()));
}

awaitable<void> Edge::Impl::RevalidateTask(std::shared_ptr<Impl> self, std::string key,
                                           http::Request req, ObjectPtr stale) {
  auto [flight, lead] = self->Join(key);
  if (!lead) co_return;  // a fetch of it is under way already
  const uint64_t epoch = self->purge_epoch.load();
  FetchResult f = co_await self->Fetch(req, "GET", true, stale);
  ObjectPtr stored;
  if (f.ok && f.response.status == 304) {
    auto o = std::make_shared<Object>(*stale);
    o->headers = MergeHeaders(stale->headers, f.response.raw_headers);
    o->meta.info = ReadResponse(stale->status, LookupIn(o->headers));
    o->meta.request_time = f.request_time;
    o->meta.response_time = f.response_time;
    o->meta.lifetime = FreshnessLifetime(o->meta.info, f.response_time, self->cfg.settings.policy);
    stored = o;
    self->m.revalidated.Inc();
  } else if (f.ok && !OriginFailed(f.response.status) && !f.response.body_stream) {
    stored = self->ToObject(key, req, f, f.response.body);
    self->m.revalidated_changed.Inc();
  } else {
    self->m.origin_errors.Inc();
  }
  if (stored) self->PutUnlessPurged(stored, epoch);
  self->Finish(key, flight, stored);
}

awaitable<http::Response> Edge::Impl::Pass(http::Request& req) {
  m.pass.Inc();
  FetchResult f = co_await Fetch(req, req.method, false, nullptr);
  if (!f.ok) co_return OriginError(f);
  // RFC 9111 §4.4: an unsafe method that succeeded invalidates the stored copies of its URL.
  if (Unsafe(req.method) && f.response.status < 400) {
    ++purge_epoch;
    store->PurgePrefix(CacheKeyAnyHost(RawPath(req.target), req.query));
  }
  co_return std::move(f.response);
}

void Edge::Impl::PutUnlessPurged(const ObjectPtr& o, uint64_t epoch) {
  // A fetch that began before a purge may carry what the purge was for: serve it, keep nothing.
  if (purge_epoch.load() == epoch) store->Put(o);
}

ObjectPtr Edge::Impl::ToObject(const std::string& key, const http::Request& req,
                               const FetchResult& f, const std::string& body) {
  const std::string& raw = f.response.raw_headers;
  ResponseInfo info = ReadResponse(f.response.status, LookupIn(raw), f.response_time);
  CacheControl rcc = ParseCacheControl(RequestHeader(req, "cache-control").value_or(""));
  bool auth = RequestHeader(req, "authorization").has_value();
  if (CanStore("GET", rcc, auth, info, cfg.settings.policy) != Storable::kStore) return nullptr;
  if (info.set_cookie) return nullptr;  // one client's cookie, never everyone's
  if (body.size() > cfg.settings.store.max_object_bytes) return nullptr;
  auto o = std::make_shared<Object>();
  o->key = key;
  o->vary_key = VaryKey(info.vary, LookupIn(req));
  o->status = f.response.status;
  // Accept-Ranges too: Serve writes its own (the edge answers ranges of a stored 200 itself).
  o->headers =
      DropHeaders(raw, {"age", "x-cache", "surrogate-key", "x-request-id", "via", "accept-ranges"});
  o->body = std::make_shared<const std::string>(body);
  if (auto tags = RawHeader(raw, "surrogate-key")) {
    std::string_view t = *tags;
    while (!t.empty()) {
      size_t sp = t.find_first_of(" ,");
      if (sp != 0) o->tags.emplace_back(t.substr(0, sp));
      if (sp == std::string_view::npos) break;
      t.remove_prefix(sp + 1);
    }
  }
  o->meta.info = std::move(info);
  o->meta.request_time = f.request_time;
  o->meta.response_time = f.response_time;
  o->meta.lifetime = FreshnessLifetime(o->meta.info, f.response_time, cfg.settings.policy);
  return o;
}

http::Response Edge::Impl::Answer(FetchResult& f, std::string_view x_cache) {
  http::Response r = std::move(f.response);
  r.raw_headers = DropHeaders(r.raw_headers, {"x-cache", "surrogate-key", "x-request-id"});
  r.raw_headers.append("X-Cache: ").append(x_cache).append("\r\n");
  return r;
}

http::Response Edge::Impl::Serve(const ObjectPtr& o, const http::Request& req,
                                 std::string_view x_cache, Seconds age) {
  http::Response r;
  r.status = o->status;
  r.raw_headers.reserve(o->headers.size() + 64);
  r.raw_headers.append(o->headers);
  r.raw_headers.append("Age: ").append(std::to_string(age)).append("\r\n");
  r.raw_headers.append("X-Cache: ").append(x_cache).append("\r\n");
  const std::string& body = *o->body;
  if (NotModified(LookupIn(req), o->meta.info, Now())) {
    r.status = 304;
    r.raw_headers = DropHeaders(
        r.raw_headers, {"content-type", "content-encoding", "content-language", "content-range"});
    return r;
  }
  if (o->status == 200) {
    r.raw_headers.append("Accept-Ranges: bytes\r\n");
    auto range = RequestHeader(req, "range");
    auto if_range = RequestHeader(req, "if-range");
    // If-Range with a validator that no longer matches: the whole body (RFC 9110 §13.1.5).
    bool range_ok = !if_range || (*if_range == o->meta.info.etag && if_range->rfind("W/", 0) != 0);
    if (range && range_ok) {
      ByteRange br = ParseRange(*range, body.size());
      if (br.kind == ByteRange::kUnsatisfiable) {
        r.status = 416;
        r.raw_headers.append("Content-Range: bytes */")
            .append(std::to_string(body.size()))
            .append("\r\n");
        return r;
      }
      if (br.kind == ByteRange::kRange) {
        r.status = 206;
        r.raw_headers.append("Content-Range: bytes ")
            .append(std::to_string(br.first))
            .append("-")
            .append(std::to_string(br.last))
            .append("/")
            .append(std::to_string(body.size()))
            .append("\r\n");
        r.static_body = std::string_view(body).substr(br.first, br.last - br.first + 1);
        r.body_owner = o;
        if (x_cache != "MISS") m.bytes_cache.Inc(double(r.static_body.size()));
        return r;
      }
    }
  }
  r.static_body = body;
  r.body_owner = o;
  if (req.method != "HEAD" && x_cache != "MISS") m.bytes_cache.Inc(double(body.size()));
  return r;
}

}  // namespace millions::edge
