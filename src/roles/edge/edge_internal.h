// The edge's private parts, shared by edge.cc (the request flow), origin.cc (fetching from the
// origin, health), flights.cc (coalescing misses) and admin.cc (purges, status).
// Thread-safety: as each member says. Ownership: Impl owns everything here.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/blocking_pool.h"
#include "core/env.h"
#include "core/http.h"
#include "core/metrics.h"
#include "core/upstream.h"
#include "roles/edge/edge.h"
#include "roles/edge/http_cache.h"
#include "roles/edge/store.h"

namespace millions::edge {

// The value of every field `name` in a block of "Name: value\r\n" lines, joined with ", ".
std::optional<std::string> RawHeader(std::string_view raw, std::string_view name);
// The same over a request's headers.
std::optional<std::string> RequestHeader(const http::Request& req, std::string_view name);
// `raw` without the lines of the named fields (lower-case names).
std::string DropHeaders(std::string_view raw, std::initializer_list<std::string_view> names);
// A stored header block updated by a 304's (RFC 9111 §3.2): each field the 304 carries
// replaces the stored one of that name, except the framing and Content-* ones.
std::string MergeHeaders(std::string_view stored, std::string_view fresh);

// Headers a client may send that an origin might reflect into a body (cache poisoning), or that
// only the balancer may write: never passed to the origin.
bool Unforwarded(std::string_view name);

// One origin fetch that concurrent misses of the same key wait for.
struct Flight {
  std::mutex mu;
  bool done = false;
  ObjectPtr object;  // what the fetch stored; nullptr: nothing (each waiter fetches alone)
  std::vector<std::shared_ptr<boost::asio::steady_timer>> waiters;
};

struct OriginState {
  Origin origin;
  std::atomic<bool> up{true};
  int fails = 0, passes = 0;  // checker thread only
};

struct FetchResult {
  bool ok = false;       // an answer came (any status)
  bool timeout = false;  // no answer within origin_timeout (else: could not connect, or cut)
  http::Response response;
  Seconds request_time = 0, response_time = 0;
};

struct Edge::Impl : std::enable_shared_from_this<Edge::Impl> {
  Impl(const EdgeConfig& cfg, metrics::Registry& reg, Env& env);

  EdgeConfig cfg;
  Env& env;
  std::unique_ptr<ObjectStore> store;
  upstream::Client client;
  BlockingPool disk_pool{2};  // LoadFromDisk, off the event loops
  std::vector<std::unique_ptr<OriginState>> origins;
  std::atomic<uint64_t> next_origin{0};
  size_t local_origins = 0;  // origins[0, local_origins) are in this edge's dc

  // Hosts objects are stored under (the cache key has the host). Bounded: past kMaxHosts a
  // request for a new host is passed, not cached, so made-up Host headers cannot fill the store.
  static constexpr size_t kMaxHosts = 64;
  mutable std::mutex hosts_mu;
  std::set<std::string> hosts;
  bool KnownHost(const std::string& host);  // adds it when there is room

  // Counts purges (and invalidations by unsafe methods). A fetch stores its answer only if no
  // purge began since the fetch did: otherwise an answer fetched before the purge could put back
  // what the purge removed (store.h leaves that choice to the server).
  std::atomic<uint64_t> purge_epoch{0};
  void PutUnlessPurged(const ObjectPtr& o, uint64_t epoch);

  std::mutex flights_mu;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights;

  struct Metrics {
    explicit Metrics(metrics::Registry& r);
    metrics::Counter &hit, &miss, &stale, &pass;
    metrics::Counter &coalesced, &bytes_cache, &bytes_origin;
    metrics::Counter &purge_url, &purge_prefix, &purge_tag;
    metrics::Counter &revalidated, &revalidated_changed, &origin_errors, &stale_if_error;
    metrics::Gauge &objects, &bytes, &disk_objects, &disk_bytes, &evictions, &origins_up;
  } m;

  Seconds Now() const { return env.WallMillis() / 1000; }

  // edge.cc
  boost::asio::awaitable<http::Response> Handle(http::Request& req);
  boost::asio::awaitable<http::Response> Pass(http::Request& req);
  http::Response Serve(const ObjectPtr& o, const http::Request& req, std::string_view x_cache,
                       Seconds age);
  // Makes the object a fetched response would be stored as, or nullptr when it may not be.
  ObjectPtr ToObject(const std::string& key, const http::Request& req, const FetchResult& f,
                     const std::string& body);
  boost::asio::awaitable<http::Response> Miss(http::Request& req, const std::string& key,
                                              ObjectPtr stale);
  // stale-while-revalidate: refreshes `stale` in the background (unless a fetch of the key is
  // under way); holds `self` so that the edge outlives it.
  static boost::asio::awaitable<void> RevalidateTask(std::shared_ptr<Impl> self, std::string key,
                                                     http::Request req, ObjectPtr stale);
  http::Response Answer(FetchResult& f, std::string_view x_cache);

  // origin.cc
  // Sends `head` + req's body to an origin (the next healthy one; on a connect failure the
  // next). nullopt-free: a failure is FetchResult{ok=false}.
  boost::asio::awaitable<FetchResult> Fetch(const http::Request& req, std::string_view method,
                                            bool fill, const ObjectPtr& validate);
  void CheckOrigins();

  // flights.cc
  // The flight for `key`: (flight, true) when this request leads it (it must Finish it).
  std::pair<std::shared_ptr<Flight>, bool> Join(const std::string& key);
  void Finish(const std::string& key, const std::shared_ptr<Flight>& f, ObjectPtr object);
  // Waits (bounded) for the flight's end; its object, or nullptr.
  boost::asio::awaitable<ObjectPtr> Wait(std::shared_ptr<Flight> f);

  // admin.cc
  http::Response Purge(const http::Request& req);
  std::string StatusJson() const;
};

}  // namespace millions::edge
