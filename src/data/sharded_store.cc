#include "data/sharded_store.h"

#include <algorithm>
#include <future>
#include <thread>

#include "core/log.h"
#include "core/stable_hash.h"
#include "data/ids.h"
#include "data/shard_fence.h"

namespace millions::data {
namespace {

class ShardedStore final : public Store {
 public:
  ShardedStore(ShardedStoreOptions o, std::map<std::string, std::unique_ptr<Store>> clusters)
      : opt_(std::move(o)), map_(opt_.map), clusters_(std::move(clusters)) {
    if (!opt_.sleep)
      opt_.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  }

  Result<int64_t> NewId(int logical_shard) override {
    return Fenced<Result<int64_t>>([&]() -> Result<int64_t> {
      auto s = ByShard(logical_shard);
      if (!s.ok()) return s.error();
      return (*s)->NewId(logical_shard);
    });
  }

  void RegisterMetrics(metrics::Registry& registry) override {
    // Each cluster's series carry its name as their `shard` label (ClusterOptions::shard).
    for (auto& [name, store] : clusters_) store->RegisterMetrics(registry);
    registry.AddCollector([this](metrics::Families* out) {
      metrics::AddGauge(out, "millions_shard_map_version",
                        "The shard map version this node routes by.")
          .Add({}, static_cast<double>(map_()->version));
    });
  }

  // --- users and follows
  Result<UserRow> CreateUser(const UserRow& u) override {
    // The handle's shard must be the id's: log-in by handle looks there, and the handle's
    // uniqueness is one cluster's UNIQUE constraint.
    auto m = map_();
    if (ShardOf(u.id) % m->logical() != LogicalShardOfHandle(u.handle, m->logical()))
      return MakeError(Errc::kInternal, "id_not_of_handle",
                       "a new user's id must carry its handle's logical shard");
    return Route(u.id, [&](Store& s) { return s.CreateUser(u); });
  }
  Result<UserRow> GetUser(int64_t id, Consistency c) override {
    return Route(id, [&](Store& s) { return s.GetUser(id, c); });
  }
  Result<UserRow> GetUserByHandle(std::string_view handle, Consistency c) override {
    auto m = map_();
    auto s = ByShard(LogicalShardOfHandle(handle, m->logical()), *m);
    if (!s.ok()) return s.error();
    return (*s)->GetUserByHandle(handle, c);
  }
  Result<UserRow> UpdateProfile(int64_t id, const std::optional<std::string>& display_name,
                                const std::optional<std::string>& bio) override {
    return Route(id, [&](Store& s) { return s.UpdateProfile(id, display_name, bio); });
  }
  Status Follow(int64_t follower, int64_t followee, int64_t now_ms) override {
    return Fenced<Status>([&] { return FollowOnce(follower, followee, now_ms); });
  }
  Status FollowOnce(int64_t follower, int64_t followee, int64_t now_ms) {
    auto from = ByUser(follower);
    auto to = ByUser(followee);
    if (!from.ok()) return from.error();
    if (!to.ok()) return to.error();
    if (*from == *to) return (*from)->Follow(follower, followee, now_ms);
    // The followee must exist (404 otherwise); the follower's side is the source of truth and
    // goes first; a failure of the copy is the caller's error, and a retry repeats both
    // (each write is idempotent).
    if (auto u = (*to)->GetUser(followee, Consistency::kPrimary); !u.ok()) return u.error();
    if (Status st = (*from)->PutFollowEdge(follower, followee, now_ms); !st.ok()) return st;
    return (*to)->PutFollowEdge(follower, followee, now_ms);
  }
  Status Unfollow(int64_t follower, int64_t followee) override {
    return Fenced<Status>([&] { return UnfollowOnce(follower, followee); });
  }
  Status UnfollowOnce(int64_t follower, int64_t followee) {
    auto from = ByUser(follower);
    auto to = ByUser(followee);
    if (!from.ok()) return from.error();
    if (!to.ok()) return to.error();
    if (Status st = (*from)->Unfollow(follower, followee); !st.ok()) return st;
    if (*from == *to) return Ok();
    return (*to)->Unfollow(follower, followee);
  }
  Status PutFollowEdge(int64_t follower, int64_t followee, int64_t now_ms) override {
    return Route(followee, [&](Store& s) { return s.PutFollowEdge(follower, followee, now_ms); });
  }
  Result<std::vector<int64_t>> FollowerIds(int64_t user_id, int limit, Consistency c) override {
    return Route(user_id, [&](Store& s) { return s.FollowerIds(user_id, limit, c); });
  }
  Result<std::vector<int64_t>> FollowingIds(int64_t user_id, int limit, Consistency c) override {
    return Route(user_id, [&](Store& s) { return s.FollowingIds(user_id, limit, c); });
  }

  // --- photos and blobs
  Status PutBlob(std::string_view key, std::string_view content_type,
                 std::string_view bytes) override {
    return RouteHash(key, [&](Store& s) { return s.PutBlob(key, content_type, bytes); });
  }
  Result<Blob> GetBlob(std::string_view key) override {
    return RouteHash(key, [&](Store& s) { return s.GetBlob(key); });
  }
  Status CreatePhoto(const PhotoRow& p) override {
    return Route(p.owner_id, [&](Store& s) { return s.CreatePhoto(p); });
  }
  Result<PhotoRow> GetPhoto(int64_t id, Consistency c) override {
    return Route(id, [&](Store& s) { return s.GetPhoto(id, c); });
  }
  Result<std::vector<PhotoRow>> ListPhotos(int64_t owner_id, int64_t before, int limit,
                                           Consistency c) override {
    return Route(owner_id, [&](Store& s) { return s.ListPhotos(owner_id, before, limit, c); });
  }
  // Each cluster holds the edges from `user_id` towards its own users (the user's own cluster
  // holds them all, and others' photos are not there), so each cluster's feed query returns
  // exactly the followees' photos it holds: one query per cluster, all at once (the others on
  // threads of their own while this one asks the first), merged newest first.
  Result<std::vector<PhotoRow>> Feed(int64_t user_id, int64_t before, int limit,
                                     Consistency c) override {
    using Part = Result<std::vector<PhotoRow>>;
    std::vector<std::future<Part>> others;
    Store* first = nullptr;
    for (auto& [name, store] : clusters_) {
      if (!first) {
        first = store.get();
        continue;
      }
      Store* s = store.get();
      // The request's ids go along: the store's debug lines name them on any thread.
      others.push_back(std::async(std::launch::async, log::WithContext([=] {
                                    return s->Feed(user_id, before, limit, c);
                                  })));
    }
    std::vector<Part> parts;
    if (first) parts.push_back(first->Feed(user_id, before, limit, c));
    for (auto& f : others) parts.push_back(f.get());
    std::vector<PhotoRow> all;
    for (auto& part : parts) {
      if (!part.ok()) return part.error();
      for (auto& p : *part) all.push_back(std::move(p));
    }
    std::sort(all.begin(), all.end(),
              [](const PhotoRow& a, const PhotoRow& b) { return a.id > b.id; });
    // A shard being moved is on two clusters from its copy to its clean-up: one of each.
    all.erase(std::unique(all.begin(), all.end(),
                          [](const PhotoRow& a, const PhotoRow& b) { return a.id == b.id; }),
              all.end());
    if (all.size() > size_t(limit)) all.resize(size_t(limit));
    return all;
  }

  // --- jobs: by the job id's shard, which is its owner's
  Status CreateJob(const JobRow& j) override {
    return Route(j.id, [&](Store& s) { return s.CreateJob(j); });
  }
  Result<JobRow> GetJob(int64_t id, Consistency c) override {
    return Route(id, [&](Store& s) { return s.GetJob(id, c); });
  }
  Result<std::vector<int64_t>> UnfinishedJobs() override {
    std::vector<int64_t> all;
    for (auto& [name, store] : clusters_) {
      auto part = store->UnfinishedJobs();
      if (!part.ok()) return part.error();
      all.insert(all.end(), part->begin(), part->end());
    }
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());  // a shard being moved
    return all;
  }
  Result<bool> MarkJobRunning(int64_t id) override {
    return Route(id, [&](Store& s) { return s.MarkJobRunning(id); });
  }
  Status FinishJob(int64_t job_id, const PhotoVersion& version, int64_t now_ms) override {
    return Route(job_id, [&](Store& s) { return s.FinishJob(job_id, version, now_ms); });
  }
  Status FailJob(int64_t job_id, std::string_view error, int64_t now_ms) override {
    return Route(job_id, [&](Store& s) { return s.FailJob(job_id, error, now_ms); });
  }
  Result<bool> FailQueuedJob(int64_t job_id, std::string_view error, int64_t now_ms) override {
    return Route(job_id, [&](Store& s) { return s.FailQueuedJob(job_id, error, now_ms); });
  }

  // --- sessions and idempotency keys: by their credential's hash
  Status CreateSession(const SessionRow& session) override {
    return RouteHash(session.token_hash, [&](Store& s) { return s.CreateSession(session); });
  }
  Result<SessionRow> GetSession(std::string_view token_hash, int64_t now_ms,
                                Consistency c) override {
    return RouteHash(token_hash, [&](Store& s) { return s.GetSession(token_hash, now_ms, c); });
  }
  Status DeleteSession(std::string_view token_hash) override {
    return RouteHash(token_hash, [&](Store& s) { return s.DeleteSession(token_hash); });
  }
  Result<std::optional<IdempotencyRecord>> ClaimIdempotencyKey(std::string_view scope,
                                                               std::string_view key,
                                                               std::string_view fingerprint,
                                                               int64_t now_ms,
                                                               int64_t stale_ms) override {
    return RouteHash(scope, [&](Store& s) {
      return s.ClaimIdempotencyKey(scope, key, fingerprint, now_ms, stale_ms);
    });
  }
  Status FinishIdempotencyKey(std::string_view scope, std::string_view key, int status,
                              std::string_view body) override {
    return RouteHash(scope,
                     [&](Store& s) { return s.FinishIdempotencyKey(scope, key, status, body); });
  }
  Status ReleaseIdempotencyKey(std::string_view scope, std::string_view key) override {
    return RouteHash(scope, [&](Store& s) { return s.ReleaseIdempotencyKey(scope, key); });
  }

 private:
  Result<Store*> ByShard(int logical, const ShardMap& m) {
    auto it = clusters_.find(m.ClusterOf(logical % m.logical()));
    if (it == clusters_.end())
      return MakeError(Errc::kUnavailable, "unknown_cluster",
                       "the shard map names cluster '" + m.ClusterOf(logical % m.logical()) +
                           "', which this node has no connection to");
    return it->second.get();
  }
  Result<Store*> ByShard(int logical) { return ByShard(logical, *map_()); }
  Result<Store*> ByUser(int64_t id) { return ByShard(ShardOf(id)); }

  // Runs `attempt` (which routes by the map in force at each call) and answers the fence:
  // wrong_shard re-reads the map and repeats once; shard_frozen waits and repeats.
  template <class R, class F>
  R Fenced(F&& attempt) {
    R r = attempt();
    bool refreshed = false;
    std::chrono::milliseconds waited{0}, backoff{5};
    while (!r.ok()) {
      const std::string& code = r.error().code;
      if (code == kWrongShardCode && !refreshed) {
        refreshed = true;
        if (opt_.refresh) opt_.refresh();
      } else if (code == kShardFrozenCode && waited < opt_.frozen_wait) {
        auto d = std::min(backoff, opt_.frozen_wait - waited);
        opt_.sleep(d);
        waited += d;
        // Capped at 20 ms: a cut-over's pause is tens of ms, and a longer sleep would outlast it.
        backoff = std::min(backoff * 2, std::chrono::milliseconds(20));
      } else {
        break;
      }
      r = attempt();
    }
    if (r.ok()) return r;
    if (r.error().code == kWrongShardCode)
      return MakeError(Errc::kUnavailable, "wrong_shard",
                       "the database refused a row its cluster does not own; the shard map "
                       "changes: retry");
    if (r.error().code == kShardFrozenCode)
      return MakeError(Errc::kUnavailable, "shard_frozen",
                       "the user's data is being moved between clusters: retry");
    return r;
  }

  template <class F>
  auto Route(int64_t id, F&& f) -> decltype(f(std::declval<Store&>())) {
    using R = decltype(f(std::declval<Store&>()));
    return Fenced<R>([&]() -> R {
      auto s = ByUser(id);
      if (!s.ok()) return s.error();
      return f(**s);
    });
  }
  template <class F>
  auto RouteHash(std::string_view key, F&& f) -> decltype(f(std::declval<Store&>())) {
    using R = decltype(f(std::declval<Store&>()));
    return Fenced<R>([&]() -> R {
      auto m = map_();
      auto s = ByShard(static_cast<int>(StableHash(key) % uint64_t(m->logical())), *m);
      if (!s.ok()) return s.error();
      return f(**s);
    });
  }

  ShardedStoreOptions opt_;
  ShardMapSource map_;
  std::map<std::string, std::unique_ptr<Store>> clusters_;
};

}  // namespace

std::unique_ptr<Store> MakeShardedStore(ShardedStoreOptions options,
                                        std::map<std::string, std::unique_ptr<Store>> clusters) {
  return std::make_unique<ShardedStore>(std::move(options), std::move(clusters));
}

std::unique_ptr<Store> MakeShardedStore(ShardMapSource map,
                                        std::map<std::string, std::unique_ptr<Store>> clusters) {
  ShardedStoreOptions o;
  o.map = std::move(map);
  return MakeShardedStore(std::move(o), std::move(clusters));
}

}  // namespace millions::data
