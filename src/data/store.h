// Store: every piece of durable state the photo service keeps, behind one interface that each
// stage implements: SQLite for stage 1 (OpenSqliteStore), PostgreSQL from stage 2 on.
// Every read states the consistency it needs, as userver's queries do: kPrimary for writes and
// reads that must see the caller's own writes, kReplica where staleness is fine. The embedded
// store has one copy and ignores it; replicated stores route by it.
// Errors: Result/Status; 404 not_found, 409 conflicts, 503 when the database is unavailable.
// Thread-safety: every method may be called from any thread; calls block, so callers run them
// on a BlockingPool, never on an event loop. Ownership: a Store owns its connections.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/metrics.h"
#include "core/pg.h"
#include "core/result.h"

namespace millions::data {

struct ClusterOptions;

enum class Consistency { kPrimary, kReplica };

struct UserRow {
  int64_t id = 0;
  std::string handle;
  std::string display_name;
  std::string bio;
  std::string password_hash;
  int64_t created_ms = 0;
  int64_t followers = 0;  // filled on reads
  int64_t following = 0;
  int64_t photos = 0;
};

struct SessionRow {
  std::string token_hash;  // SHA-256 of the token: a leaked database does not leak sessions
  int64_t user_id = 0;
  int64_t expires_ms = 0;
};

struct PhotoVersion {
  int64_t job_id = 0;
  std::string media_key;
  int width = 0;
  int height = 0;
};

struct PhotoRow {
  int64_t id = 0;
  int64_t owner_id = 0;
  std::string caption;
  std::string media_key;
  std::string content_type;
  int width = 0;
  int height = 0;
  int64_t created_ms = 0;
  std::vector<PhotoVersion> versions;  // oldest first
};

struct JobRow {
  int64_t id = 0;
  int64_t photo_id = 0;
  int64_t owner_id = 0;
  std::string status;  // queued | running | done | failed
  std::string ops_json;
  std::string result_key;
  std::string error;
  int64_t created_ms = 0;
  int64_t finished_ms = 0;
  int attempts = 0;
};

// A request made with an Idempotency-Key, as the first one with that key left it.
struct IdempotencyRecord {
  std::string fingerprint;  // of the first request: a different request may not reuse the key
  int status = 0;           // 0 while the first request runs (or when its outcome is unknown)
  std::string body;
  int64_t created_ms = 0;
};

struct Blob {
  std::string content_type;
  std::string bytes;
};

class Store {
 public:
  virtual ~Store() = default;
  // Adds the store's own series (queries by member role, replica lag) to a node's registry.
  virtual void RegisterMetrics(metrics::Registry& registry) { (void)registry; }

  // 409 handle_taken when the handle exists.
  virtual Result<UserRow> CreateUser(const UserRow& user) = 0;
  virtual Result<UserRow> GetUser(int64_t id, Consistency c) = 0;
  virtual Result<UserRow> GetUserByHandle(std::string_view handle, Consistency c) = 0;
  virtual Result<UserRow> UpdateProfile(int64_t id, const std::optional<std::string>& display_name,
                                        const std::optional<std::string>& bio) = 0;
  // Both idempotent; 404 when the followee does not exist.
  virtual Status Follow(int64_t follower, int64_t followee, int64_t now_ms) = 0;
  virtual Status Unfollow(int64_t follower, int64_t followee) = 0;
  // Who follows `user_id` / whom it follows: user ids, ascending, at most `limit`.
  virtual Result<std::vector<int64_t>> FollowerIds(int64_t user_id, int limit, Consistency c) = 0;
  virtual Result<std::vector<int64_t>> FollowingIds(int64_t user_id, int limit, Consistency c) = 0;

  virtual Status CreateSession(const SessionRow& session) = 0;
  // 404 when unknown or expired at `now_ms`.
  virtual Result<SessionRow> GetSession(std::string_view token_hash, int64_t now_ms,
                                        Consistency c) = 0;
  virtual Status DeleteSession(std::string_view token_hash) = 0;

  // Content-addressed: putting the same key twice is a no-op.
  virtual Status PutBlob(std::string_view key, std::string_view content_type,
                         std::string_view bytes) = 0;
  virtual Result<Blob> GetBlob(std::string_view key) = 0;

  virtual Status CreatePhoto(const PhotoRow& photo) = 0;
  virtual Result<PhotoRow> GetPhoto(int64_t id, Consistency c) = 0;
  // Newest first, ids below `before` (0: from the newest).
  virtual Result<std::vector<PhotoRow>> ListPhotos(int64_t owner_id, int64_t before, int limit,
                                                   Consistency c) = 0;
  virtual Result<std::vector<PhotoRow>> Feed(int64_t user_id, int64_t before, int limit,
                                             Consistency c) = 0;

  virtual Status CreateJob(const JobRow& job) = 0;
  virtual Result<JobRow> GetJob(int64_t id, Consistency c) = 0;
  // Jobs that were accepted and have not finished: re-enqueued at start-up, so that a crash
  // between accepting a job and queueing it loses nothing.
  virtual Result<std::vector<int64_t>> UnfinishedJobs() = 0;
  virtual Status MarkJobRunning(int64_t id) = 0;
  // Adds the version to the photo and marks the job done, atomically.
  virtual Status FinishJob(int64_t job_id, const PhotoVersion& version, int64_t now_ms) = 0;
  virtual Status FailJob(int64_t job_id, std::string_view error, int64_t now_ms) = 0;

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

// Opens (creating if needed) the SQLite store at `path` and applies its migrations.
// Throws std::runtime_error at start-up when the file cannot be used.
std::unique_ptr<Store> OpenSqliteStore(const std::string& path, int connections);

// Connects to PostgreSQL (lazily: a database that is down answers 503s) and applies the
// migrations. Throws std::runtime_error when the migrations cannot run at start-up.
std::unique_ptr<Store> OpenPgStore(const pg::Options& options);
// The same on a replicated cluster (data/pg_cluster.h): writes on the primary, replica reads
// spread over replicas within the lag bound.
std::unique_ptr<Store> OpenPgStore(const ClusterOptions& options);

}  // namespace millions::data
