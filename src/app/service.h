// Service: the photo service's logic, independent of HTTP. Handlers (web.cc) parse and check
// the request, call one method here, and turn the Result into a response.
// Reads go through the L1 cache (rendered JSON by key); writes delete the cache entries they
// affect after the database commit. Every method but the Cached* ones blocks (database,
// argon2id, libvips) and runs on a BlockingPool.
// Thread-safety: every method may be called from any thread. Ownership: borrows its store,
// cache, queue, id generator, env and metrics, which outlive it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "app/requests.h"
#include "cache/cache.h"
#include "core/env.h"
#include "core/metrics.h"
#include "core/result.h"
#include "data/ids.h"
#include "data/store.h"
#include "media/media.h"
#include "queue/job_queue.h"

namespace millions::app {

struct ServiceOptions {
  int64_t session_ttl_ms = 30LL * 24 * 3600 * 1000;
  media::Limits media;
  int max_job_attempts = 3;
};

struct NewSession {
  int64_t user_id;
  std::string token;
  int64_t expires_ms;
};

class Service {
 public:
  Service(data::Store& store, cache::Cache& cache, queue::JobQueue& queue, data::IdGenerator& ids,
          Env& env, metrics::Registry& metrics, ServiceOptions options);

  Result<std::string> SignUp(const app::SignUp& in);  // user JSON
  Result<NewSession> LogIn(const app::LogIn& in);
  Status LogOut(std::string_view token);
  // The user id behind a session token; 401 when unknown or expired.
  Result<int64_t> Authenticate(std::string_view token);
  std::optional<int64_t> CachedSession(std::string_view token);

  std::optional<std::string> CachedUser(int64_t id);
  Result<std::string> User(int64_t id);
  Result<std::string> UserByHandle(std::string_view handle);
  Result<std::string> UpdateProfile(int64_t user_id, const ProfilePatch& patch);
  Status Follow(int64_t user_id, int64_t target);
  Status Unfollow(int64_t user_id, int64_t target);

  Result<std::string> Upload(int64_t user_id, std::string_view content_type, std::string_view bytes,
                             std::string caption);
  std::optional<std::string> CachedPhoto(int64_t id);
  Result<std::string> Photo(int64_t id);
  Result<std::string> UserPhotos(int64_t owner_id, int64_t before, int limit);
  Result<std::string> Feed(int64_t user_id, int64_t before, int limit);
  Result<data::Blob> Media(std::string_view key);

  // Idempotency-Key bookkeeping (web.cc): see data::Store. A claim unfinished for a minute is
  // presumed dead and may be taken over.
  Result<std::optional<data::IdempotencyRecord>> ClaimIdempotencyKey(std::string_view scope,
                                                                     std::string_view key,
                                                                     std::string_view fingerprint);
  Status FinishIdempotencyKey(std::string_view scope, std::string_view key, int status,
                              std::string_view body);
  Status ReleaseIdempotencyKey(std::string_view scope, std::string_view key);

  // Accepts an edit: validates ops against the photo, stores the job, queues it (202).
  Result<std::string> RequestEdit(int64_t user_id, int64_t photo_id, std::string_view body);
  Result<std::string> Job(int64_t user_id, int64_t job_id);

  // Worker side. Re-queues jobs accepted before a crash; call once at start-up.
  Status RecoverJobs();
  enum class JobOutcome { kDone, kFailed, kRetry };
  JobOutcome ProcessJob(const queue::Delivery& d);

 private:
  // Metric handles looked up once: the cache hit path must not take the registry's lock.
  struct CacheCounters {
    metrics::Counter* hit;
    metrics::Counter* miss;
  };
  CacheCounters Counters(const char* kind);
  std::optional<std::string> CacheGet(const CacheCounters& counters, const std::string& key);
  void Invalidate(const std::string& key);

  data::Store& store_;
  cache::Cache& cache_;
  queue::JobQueue& queue_;
  data::IdGenerator& ids_;
  Env& env_;
  metrics::Registry& metrics_;
  ServiceOptions opt_;
  CacheCounters user_counters_, photo_counters_, session_counters_;
  metrics::Counter* invalidations_;
};

}  // namespace millions::app
