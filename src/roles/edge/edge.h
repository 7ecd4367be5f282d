// Edge: the CDN edge's request handling (`millions serve edge`, docs/edge.md). A caching reverse
// proxy in front of the origin (the balancers, or the web nodes): GET and HEAD answered from
// the object store while fresh (RFC 9111, http_cache.h), validated with the origin when stale,
// stale-while-revalidate in the background, stale-if-error (and the topology's grace) while the
// origin fails; concurrent misses of one object make one origin fetch (the others wait for it);
// a large object streams to the first client while it is fetched and stored; ranges and client
// conditionals answered from stored objects; other methods passed through, an unsafe one
// invalidating its URL. Headers an origin might reflect (X-Forwarded-Host and the like) never
// reach it, so a client cannot poison a cached body.
// Thread-safety: Handle runs on many io_contexts at once; Purge, StatusJson and CheckOrigins
// from any thread. Ownership: owns its store, upstream client and metrics handles; the
// registry is borrowed and must outlive it.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string>

#include "core/env.h"
#include "core/http.h"
#include "core/metrics.h"
#include "roles/edge/settings.h"

namespace millions::edge {

class Edge {
 public:
  // Throws (std::runtime_error, std::invalid_argument) when the store cannot be opened.
  Edge(const EdgeConfig& cfg, metrics::Registry& registry, Env& env);
  ~Edge();
  Edge(const Edge&) = delete;
  Edge& operator=(const Edge&) = delete;

  boost::asio::awaitable<http::Response> Handle(http::Request& req);

  // The admin API's purge: POST /purge with a JSON body naming one of "url" (a path and query,
  // every host's copy), "prefix" (a path prefix) or "tag" (a Surrogate-Key value), and the
  // purge token as a bearer token. 200 with {"purged": N}, once the purged files are off the
  // disk tier (a crash after the answer cannot bring them back); 400 for a bad body, 401/403
  // for a missing or wrong token (403 when no token is configured: purges are off).
  boost::asio::awaitable<http::Response> Purge(const http::Request& req);

  // {"origins":[{"name","address","up"}...],"store":{...}} for the admin API and `status`.
  std::string StatusJson() const;

  // One round of origin health checks (GET /readyz, blocking): call from a thread of its own.
  // Also refreshes the store's gauges.
  void CheckOrigins();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared with background revalidations still running
};

}  // namespace millions::edge
