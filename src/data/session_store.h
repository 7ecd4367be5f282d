// SessionStore: the store facet for login sessions and Idempotency-Key claims, both keyed by
// a credential (a token hash, a scope) rather than by user: sharding routes them by that key.
// Errors: Result/Status; 404 not_found, 503 when the database is unavailable.
// Thread-safety: every method may be called from any thread; calls block (run them on a
// BlockingPool). Ownership: an implementation owns or shares its connections.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/result.h"
#include "data/rows.h"

namespace millions::data {

class SessionStore {
 public:
  virtual ~SessionStore() = default;

  virtual Status CreateSession(const SessionRow& session) = 0;
  // 404 when unknown or expired at `now_ms`.
  virtual Result<SessionRow> GetSession(std::string_view token_hash, int64_t now_ms,
                                        Consistency c) = 0;
  virtual Status DeleteSession(std::string_view token_hash) = 0;

  // Idempotency keys (the Idempotency-Key header), per credential `scope`. Claim returns
  // nullopt when this call claimed the key (run the request), else the record already there.
  // A claim left at status 0 for `stale_ms` is taken over by a request with the same
  // fingerprint (its first request is presumed dead).
  virtual Result<std::optional<IdempotencyRecord>> ClaimIdempotencyKey(std::string_view scope,
                                                                       std::string_view key,
                                                                       std::string_view fingerprint,
                                                                       int64_t now_ms,
                                                                       int64_t stale_ms) = 0;
  virtual Status FinishIdempotencyKey(std::string_view scope, std::string_view key, int status,
                                      std::string_view body) = 0;
  virtual Status ReleaseIdempotencyKey(std::string_view scope, std::string_view key) = 0;
};

}  // namespace millions::data
