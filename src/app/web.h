// WebApp: the HTTP face of the service: the API routes of ../shared/CONTRACT.md, the browser UI
// and its fingerprinted assets, media, and /livez, /readyz, /metrics.
// Each handler parses and checks the request on the event loop, then runs the Service call on
// the BlockingPool; cache hits are answered without leaving the event loop.
// Thread-safety: Handle may run concurrently on many threads. Ownership: borrows the service,
// pool and registry; owns its router and assets.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "app/hot_users.h"
#include "app/service.h"
#include "app/throttle.h"
#include "core/blocking_pool.h"
#include "core/http.h"
#include "core/metrics.h"
#include "core/router.h"

namespace millions::app {

struct WebOptions {
  size_t max_upload_bytes = 20 * 1024 * 1024;
  bool secure_cookies = false;  // set when served over TLS
  // The CDN edge's origin ("http://host:port") when the topology has one: the page loads its
  // stylesheet and script from there (falling back to this origin's copies), and the content
  // policy lets images, styles and scripts come from it.
  std::string edge_origin;
  // The same edge's HTTPS origin (its tls_listen), empty when it has none. A page served over
  // HTTPS loads from it instead (web/loader.js, mediaUrl in web/app.js): the API's media URLs
  // name the plain origin, and a browser blocks or upgrades plain loads on an HTTPS page.
  std::string edge_tls_origin;
  // Log-in and sign-up throttling (throttle.h), and whose X-Forwarded-For names the client
  // (the topology's balancers; empty: the peer's address is the client's).
  ThrottleOptions throttle;
  std::vector<std::string> trusted_proxies;
  // The throttle's counters, shared by every web node (cache/counters.h); null: this process's
  // memory (`millions single`).
  std::shared_ptr<cache::Counters> counters;
  // Sharded: reads the shard map from etcd now (blocking; on the blocking pool) and answers the
  // version in force. `POST /shardmap/refresh` calls it: the reshard asks every web node at each
  // cut-over, so that none reads a moved shard from its old cluster once writes go to the new
  // one (docs/sharding.md). Null: unsharded, the route answers 404.
  // The argument: the version the caller wants; a node at it or past it need not read etcd.
  std::function<int64_t(int64_t)> shard_map_refresh;
  // What the nudge must carry as `Authorization: Bearer` (secret::Derive of the shard map's etcd
  // password, secret::kShardMapRefresh): the route is on the public listener's path, so nobody
  // else makes a node read etcd. Empty (a node started without secrets): no check.
  std::string shard_map_refresh_token;
};

class WebApp {
 public:
  WebApp(Service& service, BlockingPool& pool, metrics::Registry& metrics, WebOptions options);
  ~WebApp();
  boost::asio::awaitable<http::Response> Handle(http::Request& req);
  // Header lines the server must add to every response of this app (ServerOptions::
  // extra_headers): browsers must not guess a type other than the one we send.
  static constexpr std::string_view kExtraHeaders = "X-Content-Type-Options: nosniff\r\n";
  // Makes /readyz answer 503 (set while starting and draining).
  // A node that is not ready answers long polls at once, and turning not-ready wakes those that
  // wait: a draining node holds no request for a job.
  void SetReady(bool ready);
  // A job finished (announced by the queue, on any thread): its long polls answer now.
  void JobFinished(int64_t job_id);
  // The longest GET /api/jobs/{id}?wait_ms= a client may ask for.
  static constexpr int64_t kMaxJobWaitMs = 25'000;

 private:
  struct Assets;
  void AddRoutes();
  boost::asio::awaitable<http::Response> GetJob(http::Request& req, int64_t user, int64_t job);
  // Runs a POST that carries an Idempotency-Key once per key and credential: a repeat gets
  // the first answer (Idempotent-Replayed: true), 409 while the first still runs, 422 when
  // the key is reused for a different request.
  boost::asio::awaitable<http::Response> Idempotent(http::Request& req,
                                                    const http::Handler& handler);
  bool Secure(const http::Request& req) const;
  Service& svc_;
  BlockingPool& pool_;
  metrics::Registry& metrics_;
  WebOptions opt_;
  http::Router router_;
  std::unique_ptr<Assets> assets_;
  std::unique_ptr<class JobWaiters> waiters_;
  std::unique_ptr<Throttle> throttle_;
  std::shared_ptr<HotUsers> hot_;  // whose data is read most (the celebrities), per node
  std::atomic<bool> ready_{false};
};

}  // namespace millions::app
