// The facet composition and the one log line per store operation (facet_store.h).
#include "data/facet_store.h"

#include <chrono>
#include <string>
#include <utility>

#include "core/log.h"

namespace millions::data {
namespace {

// The operation in progress on this thread, set only while debug logging is on.
struct OpState {
  std::string member;
};
thread_local OpState* t_op = nullptr;

// Runs fn (a store call); when debug logging is on, times it and logs it with its member.
template <class F>
auto Traced(const char* op, F&& fn) -> decltype(fn()) {
  if (!log::Enabled(log::Level::kDebug)) return fn();
  OpState state;
  OpState* outer = std::exchange(t_op, &state);
  auto start = std::chrono::steady_clock::now();
  auto r = fn();
  t_op = outer;
  std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
  log::Debug("store op", {{"op", op},
                          {"duration_ms", took.count()},
                          {"member", state.member},
                          {"ok", r.ok()},
                          {"error", r.ok() ? std::string_view() : r.error().code}});
  return r;
}

class FacetStore final : public Store {
 public:
  explicit FacetStore(Facets f) : f_(std::move(f)) {}

  void RegisterMetrics(metrics::Registry& registry) override {
    if (f_.register_metrics) f_.register_metrics(registry);
  }

  Result<int64_t> NewId(int logical_shard) override {
    return Traced("new_id", [&] { return f_.new_id(logical_shard); });
  }

  Result<UserRow> CreateUser(const UserRow& u) override {
    return Traced("create_user", [&] { return f_.users->CreateUser(u); });
  }
  Result<UserRow> GetUser(int64_t id, Consistency c) override {
    return Traced("get_user", [&] { return f_.users->GetUser(id, c); });
  }
  Result<UserRow> GetUserByHandle(std::string_view handle, Consistency c) override {
    return Traced("get_user_by_handle", [&] { return f_.users->GetUserByHandle(handle, c); });
  }
  Result<UserRow> UpdateProfile(int64_t id, const std::optional<std::string>& display_name,
                                const std::optional<std::string>& bio) override {
    return Traced("update_profile", [&] { return f_.users->UpdateProfile(id, display_name, bio); });
  }
  Status Follow(int64_t follower, int64_t followee, int64_t now_ms) override {
    return Traced("follow", [&] { return f_.users->Follow(follower, followee, now_ms); });
  }
  Status Unfollow(int64_t follower, int64_t followee) override {
    return Traced("unfollow", [&] { return f_.users->Unfollow(follower, followee); });
  }
  Status PutFollowEdge(int64_t follower, int64_t followee, int64_t now_ms) override {
    return Traced("put_follow_edge",
                  [&] { return f_.users->PutFollowEdge(follower, followee, now_ms); });
  }
  Result<std::vector<int64_t>> FollowerIds(int64_t user_id, int limit, Consistency c) override {
    return Traced("follower_ids", [&] { return f_.users->FollowerIds(user_id, limit, c); });
  }
  Result<std::vector<int64_t>> FollowingIds(int64_t user_id, int limit, Consistency c) override {
    return Traced("following_ids", [&] { return f_.users->FollowingIds(user_id, limit, c); });
  }

  Status PutBlob(std::string_view key, std::string_view content_type,
                 std::string_view bytes) override {
    return Traced("put_blob", [&] { return f_.photos->PutBlob(key, content_type, bytes); });
  }
  Result<Blob> GetBlob(std::string_view key) override {
    return Traced("get_blob", [&] { return f_.photos->GetBlob(key); });
  }
  Status CreatePhoto(const PhotoRow& p) override {
    return Traced("create_photo", [&] { return f_.photos->CreatePhoto(p); });
  }
  Result<PhotoRow> GetPhoto(int64_t id, Consistency c) override {
    return Traced("get_photo", [&] { return f_.photos->GetPhoto(id, c); });
  }
  Result<std::vector<PhotoRow>> ListPhotos(int64_t owner_id, int64_t before, int limit,
                                           Consistency c) override {
    return Traced("list_photos", [&] { return f_.photos->ListPhotos(owner_id, before, limit, c); });
  }
  Result<std::vector<PhotoRow>> Feed(int64_t user_id, int64_t before, int limit,
                                     Consistency c) override {
    return Traced("feed", [&] { return f_.photos->Feed(user_id, before, limit, c); });
  }

  Status CreateJob(const JobRow& j) override {
    return Traced("create_job", [&] { return f_.jobs->CreateJob(j); });
  }
  Result<JobRow> GetJob(int64_t id, Consistency c) override {
    return Traced("get_job", [&] { return f_.jobs->GetJob(id, c); });
  }
  Result<std::vector<int64_t>> UnfinishedJobs() override {
    return Traced("unfinished_jobs", [&] { return f_.jobs->UnfinishedJobs(); });
  }
  Result<bool> MarkJobRunning(int64_t id) override {
    return Traced("mark_job_running", [&] { return f_.jobs->MarkJobRunning(id); });
  }
  Status FinishJob(int64_t job_id, const PhotoVersion& v, int64_t now_ms) override {
    return Traced("finish_job", [&] { return f_.jobs->FinishJob(job_id, v, now_ms); });
  }
  Status FailJob(int64_t job_id, std::string_view error, int64_t now_ms) override {
    return Traced("fail_job", [&] { return f_.jobs->FailJob(job_id, error, now_ms); });
  }
  Result<bool> FailQueuedJob(int64_t job_id, std::string_view error, int64_t now_ms) override {
    return Traced("fail_queued_job", [&] { return f_.jobs->FailQueuedJob(job_id, error, now_ms); });
  }

  Status CreateSession(const SessionRow& s) override {
    return Traced("create_session", [&] { return f_.sessions->CreateSession(s); });
  }
  Result<SessionRow> GetSession(std::string_view token_hash, int64_t now_ms,
                                Consistency c) override {
    return Traced("get_session", [&] { return f_.sessions->GetSession(token_hash, now_ms, c); });
  }
  Status DeleteSession(std::string_view token_hash) override {
    return Traced("delete_session", [&] { return f_.sessions->DeleteSession(token_hash); });
  }
  Result<std::optional<IdempotencyRecord>> ClaimIdempotencyKey(std::string_view scope,
                                                               std::string_view key,
                                                               std::string_view fingerprint,
                                                               int64_t now_ms,
                                                               int64_t stale_ms) override {
    return Traced("claim_idempotency_key", [&] {
      return f_.sessions->ClaimIdempotencyKey(scope, key, fingerprint, now_ms, stale_ms);
    });
  }
  Status FinishIdempotencyKey(std::string_view scope, std::string_view key, int status,
                              std::string_view body) override {
    return Traced("finish_idempotency_key",
                  [&] { return f_.sessions->FinishIdempotencyKey(scope, key, status, body); });
  }
  Status ReleaseIdempotencyKey(std::string_view scope, std::string_view key) override {
    return Traced("release_idempotency_key",
                  [&] { return f_.sessions->ReleaseIdempotencyKey(scope, key); });
  }

 private:
  Facets f_;
};

}  // namespace

std::unique_ptr<Store> MakeFacetStore(Facets facets) {
  return std::make_unique<FacetStore>(std::move(facets));
}

void NoteMember(std::string_view member) {
  if (t_op) t_op->member.assign(member);
}

}  // namespace millions::data
