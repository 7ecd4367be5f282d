// Service: the photo service's logic, independent of HTTP. Handlers (web.cc) parse and check
// the request, call one method here, and turn the Result into a response.
// Reads go through the two-level cache (cache/tiered.h; rendered JSON by key); writes delete the
// cache entries they affect after the database commit (never set them). Every method but the
// Cached* ones blocks (database, cache nodes, argon2id, libvips) and runs on a BlockingPool.
// Thread-safety: every method may be called from any thread. Ownership: borrows its store,
// cache, queue, id generator, env and metrics, which outlive it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "app/business.h"
#include "app/requests.h"
#include "cache/tiered.h"
#include "cache/timeline.h"
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

// Feed fan-out (docs/queue.md): with a timeline store, a post is fanned out into its followers'
// timelines, unless its owner has more followers than this; such posts are merged in at read.
struct FeedOptions {
  int celebrity_followers = 1000;
};

struct NewSession {
  int64_t user_id;
  std::string token;
  int64_t expires_ms;
};

class Service {
 public:
  Service(data::Store& store, cache::Tiered& cache, queue::JobQueue& queue, Env& env,
          metrics::Registry& metrics, ServiceOptions options);
  ~Service();

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
  // {"items":[id...]}: up to kMaxListedFollows ids, ascending.
  Result<std::string> Followers(int64_t user_id);
  Result<std::string> Following(int64_t user_id);
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

  // Accepts an edit: validates ops against the photo, stores the job, queues it (202). A publish
  // that fails is the queue's 503 and the job never runs, unless a worker got it all the same
  // and claimed it first: then it is accepted (docs/queue.md).
  Result<std::string> RequestEdit(int64_t user_id, int64_t photo_id, std::string_view body);
  // `finished` (optional) is set when the job is done or failed.
  Result<std::string> Job(int64_t user_id, int64_t job_id, bool* finished = nullptr);

  // Worker side. Re-queues jobs accepted before a crash; call once at start-up (a queue that
  // can say what it holds is reconciled instead: ReconcileJobs).
  Status RecoverJobs();
  // Publishes again every unfinished job accepted more than `age` ago that the queue no longer
  // holds: its publish was lost between the row and the queue. Returns how many.
  Result<int> ReconcileJobs(std::chrono::milliseconds age);
  enum class JobOutcome { kDone, kFailed, kRetry, kSkipped };
  // kFailed: the job is marked failed (bad input, or it failed or stopped its worker too many
  // times); `error` says why, for the queue's dead-letter record. kSkipped: the job was already
  // finished (done, or failed: by the web node whose publish failed) and was not run; the
  // delivery is acked. `op` (optional) is set to the job's operation ("crop"...; "multi" for
  // several), for metrics.
  JobOutcome ProcessJob(const queue::Delivery& d, std::string* error = nullptr,
                        std::string* op = nullptr);

  // Business metrics (business.h): sign-ups, log-ins, uploads, edits, follows and every
  // authenticated user are noted there. Call before serving; borrowed; nullptr: none.
  void AttachBusiness(Business* business) { business_ = business; }

  // Feed fan-out (service_feed.cc). Call before serving: from then on the feed is read from
  // `timelines` (the database when they are down), and posts and follows are published on
  // `fanout` (nullptr: fanned out at once by the node that takes the post). Borrowed.
  void AttachTimelines(cache::TimelineStore* timelines, queue::JobQueue* fanout, FeedOptions o);
  // A fan-out job names a photo (push it into its owner's followers' timelines, or record the
  // owner as a celebrity) or a user (whose follows changed: rebuild their timeline). IDs are
  // unique across kinds, so the name is enough.
  JobOutcome ProcessFanout(const queue::Delivery& d, std::string* error = nullptr);

 private:
  // The keys of the feeds that show `owner_id`'s photos: its followers' (from the cached list).
  void AddFollowerFeeds(int64_t owner_id, std::vector<cache::CacheKey>* keys);
  Result<std::string> FollowList(cache::Kind kind, int64_t user_id);
  Result<std::string> DatabaseFeed(int64_t user_id, int64_t before, int limit);
  Result<std::string> TimelineFeed(int64_t user_id, int64_t before, int limit);
  // After a post's commit: publish its fan-out (or fan it out now when there is no queue).
  void PublishPost(const data::PhotoRow& p);
  // After a follow (forget = false) or an unfollow (true).
  void TimelineChanged(int64_t user_id, bool forget);
  Status FanOut(const data::PhotoRow& p);
  // After `job`'s publish failed: its 503, unless a worker had the job already (then the job is
  // accepted after all, and `job` is re-read).
  Status RefuseUnqueuedJob(data::JobRow& job, const Error& publish_error);

  data::Store& store_;
  cache::Tiered& cache_;
  queue::JobQueue& queue_;
  Env& env_;
  metrics::Registry& metrics_;
  ServiceOptions opt_;
  Business* business_ = nullptr;
  cache::TimelineStore* timelines_ = nullptr;
  queue::JobQueue* fanout_ = nullptr;
  FeedOptions feed_;
  struct FeedMetrics;
  std::shared_ptr<FeedMetrics> feed_metrics_;  // shared_ptr: the type is private to service_feed.cc
};

// Lists of follows are served (and cached) up to this many ids.
inline constexpr int kMaxListedFollows = 10'000;
// Pages of photos (a user's, a feed) are cached when they are the first page of this size (the
// API's default): the page nearly every read asks for, and one key to delete on a write.
inline constexpr int kCachedPageSize = 20;

}  // namespace millions::app
