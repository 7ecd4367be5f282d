#include "app/service.h"

#include <array>
#include <charconv>

#include "app/auth.h"
#include "core/log.h"
#include "data/shard_map.h"

namespace millions::app {
namespace {

using data::Consistency;

using cache::Kind;

std::string UserKey(int64_t id) { return "u:" + std::to_string(id); }

// UserKey written into `buf` (the hot path's L1 lookup builds no string).
std::string_view UserKeyIn(int64_t id, std::array<char, 24>& buf) {
  buf[0] = 'u';
  buf[1] = ':';
  auto r = std::to_chars(buf.data() + 2, buf.data() + buf.size(), id);
  return std::string_view(buf.data(), static_cast<size_t>(r.ptr - buf.data()));
}
std::string PhotoKey(int64_t id) { return "p:" + std::to_string(id); }
std::string SessionKey(std::string_view hash) { return "s:" + std::string(hash); }
std::string PhotosKey(int64_t owner) { return "ph:" + std::to_string(owner); }
std::string FeedKey(int64_t user) { return "f:" + std::to_string(user); }
std::string FollowersKey(int64_t user) { return "fr:" + std::to_string(user); }
std::string FollowingKey(int64_t user) { return "fg:" + std::to_string(user); }

// What a follow or unfollow changes: both users' counts, the follower's feed and lists.
std::vector<cache::CacheKey> FollowKeys(int64_t user, int64_t target) {
  return {{Kind::kUser, UserKey(user)},
          {Kind::kUser, UserKey(target)},
          {Kind::kFeed, FeedKey(user)},
          {Kind::kFollowing, FollowingKey(user)},
          {Kind::kFollowers, FollowersKey(target)}};
}

Consistency From(bool primary) { return primary ? Consistency::kPrimary : Consistency::kReplica; }

// Sessions are cached as "user_id:expires_ms": an entry never outlives its session.
std::optional<int64_t> LiveSession(const std::string& v, int64_t now_ms) {
  size_t colon = v.find(':');
  if (colon == std::string::npos) return std::nullopt;
  int64_t user = 0, expires = 0;
  if (std::from_chars(v.data(), v.data() + colon, user).ec != std::errc{} ||
      std::from_chars(v.data() + colon + 1, v.data() + v.size(), expires).ec != std::errc{})
    return std::nullopt;
  if (expires <= now_ms) return std::nullopt;
  return user;
}

const char* Extension(std::string_view content_type) {
  if (content_type == "image/jpeg") return "jpg";
  if (content_type == "image/png") return "png";
  return "webp";
}

// Media keys name content: the first 128 bits of its SHA-256 and the format.
std::string MediaKey(std::string_view bytes, std::string_view content_type) {
  return Sha256Hex(bytes).substr(0, 32) + "." + Extension(content_type);
}

}  // namespace

Service::Service(data::Store& store, cache::Tiered& cache, queue::JobQueue& queue, Env& env,
                 metrics::Registry& metrics, ServiceOptions options)
    : store_(store),
      cache_(cache),
      queue_(queue),
      env_(env),
      metrics_(metrics),
      opt_(std::move(options)) {}

void Service::AddFollowerFeeds(int64_t owner_id, std::vector<cache::CacheKey>* keys) {
  // Beyond kMaxListedFollows followers, the feed TTL bounds how long a feed misses the photo.
  auto list = FollowList(Kind::kFollowers, owner_id);
  if (!list.ok()) return;
  for (int64_t id : ParseIdList(*list)) keys->push_back({Kind::kFeed, FeedKey(id)});
}

Result<std::string> Service::SignUp(const app::SignUp& in) {
  auto hash = HashPassword(in.password);
  if (!hash.ok()) return hash.error();
  data::UserRow u;
  // The user's logical shard for life (docs/sharding.md): log-in by handle finds it again.
  auto id = store_.NewId(data::LogicalShardOfHandle(in.handle, data::kDefaultLogicalShards));
  if (!id.ok()) return id.error();
  u.id = *id;
  u.handle = in.handle;
  u.display_name = in.display_name.value_or(in.handle);
  u.password_hash = std::move(*hash);
  u.created_ms = env_.WallMillis();
  auto created = store_.CreateUser(u);
  if (!created.ok()) return created.error();
  if (business_) business_->Event(BusinessEvent::kSignUp, created->id);
  return RenderUser(*created);
}

Result<NewSession> Service::LogIn(const app::LogIn& in) {
  // A dummy hash keeps the time of "no such user" equal to "wrong password".
  static const std::string kDummy = HashPassword("not-a-password").value();
  auto user = store_.GetUserByHandle(in.handle, Consistency::kPrimary);
  if (!user.ok() && user.error().status() != 404) return user.error();
  bool good = VerifyPassword(in.password, user.ok() ? user->password_hash : kDummy);
  if (!user.ok() || !good)
    return MakeError(Errc::kUnauthenticated, "bad_credentials", "wrong handle or password");
  NewSession s{user->id, NewSessionToken(env_), env_.WallMillis() + opt_.session_ttl_ms};
  if (Status st = store_.CreateSession({TokenHash(s.token), s.user_id, s.expires_ms}); !st.ok())
    return st.error();
  if (business_) business_->Event(BusinessEvent::kLogIn, s.user_id);
  return s;
}

Status Service::LogOut(std::string_view token) {
  std::string hash = TokenHash(token);
  Status st = store_.DeleteSession(hash);
  cache_.Invalidate({{Kind::kSession, SessionKey(hash)}});
  return st;
}

std::optional<int64_t> Service::CachedSession(std::string_view token) {
  auto v = cache_.Peek(Kind::kSession, SessionKey(TokenHash(token)));
  if (!v) return std::nullopt;
  auto user = LiveSession(*v, env_.WallMillis());
  if (user && business_) business_->Active(*user);  // no I/O: a set lookup, at most a queue
  return user;
}

Result<int64_t> Service::Authenticate(std::string_view token) {
  if (token.empty() || token.size() > 128)
    return MakeError(Errc::kUnauthenticated, "unauthenticated", "log in first");
  std::string hash = TokenHash(token);
  // A session is read from the primary: one made a moment ago on another node must work here.
  auto v = cache_.Get(Kind::kSession, SessionKey(hash), [&](bool) -> Result<std::string> {
    auto s = store_.GetSession(hash, env_.WallMillis(), Consistency::kPrimary);
    if (!s.ok()) return s.error();
    return std::to_string(s->user_id) + ":" + std::to_string(s->expires_ms);
  });
  if (!v.ok() && v.error().status() != 404) return v.error();
  auto user = v.ok() ? LiveSession(*v, env_.WallMillis()) : std::nullopt;
  if (!user)
    return MakeError(Errc::kUnauthenticated, "unauthenticated", "session unknown or expired");
  if (business_) business_->Active(*user);
  return *user;
}

std::optional<std::string> Service::CachedUser(int64_t id) {
  std::array<char, 24> buf;
  return cache_.Peek(Kind::kUser, UserKeyIn(id, buf));
}

Result<std::string> Service::User(int64_t id) {
  return cache_.Get(Kind::kUser, UserKey(id), [&](bool primary) -> Result<std::string> {
    auto u = store_.GetUser(id, From(primary));
    if (!u.ok()) return u.error();
    return RenderUser(*u);
  });
}

Result<std::string> Service::UserByHandle(std::string_view handle) {
  if (!ValidHandle(handle)) return MakeError(Errc::kNotFound, "not_found", "user not found");
  auto u = store_.GetUserByHandle(handle, Consistency::kReplica);
  if (!u.ok()) return u.error();
  return RenderUser(*u);
}

Result<std::string> Service::UpdateProfile(int64_t user_id, const ProfilePatch& patch) {
  auto u = store_.UpdateProfile(user_id, patch.display_name, patch.bio);
  if (!u.ok()) return u.error();
  cache_.Invalidate({{Kind::kUser, UserKey(user_id)}});
  return RenderUser(*u);
}

Status Service::Follow(int64_t user_id, int64_t target) {
  if (user_id == target)
    return MakeError(Errc::kBadInput, "cannot_follow_self", "you cannot follow yourself");
  Status st = store_.Follow(user_id, target, env_.WallMillis());
  if (!st.ok()) return st;
  cache_.Invalidate(FollowKeys(user_id, target));
  TimelineChanged(user_id, false);
  if (business_) business_->Event(BusinessEvent::kFollow, user_id);
  return Ok();
}

Result<std::string> Service::FollowList(Kind kind, int64_t user_id) {
  std::string key = kind == Kind::kFollowers ? FollowersKey(user_id) : FollowingKey(user_id);
  return cache_.Get(kind, key, [&](bool primary) -> Result<std::string> {
    if (auto u = store_.GetUser(user_id, From(primary)); !u.ok()) return u.error();
    auto ids = kind == Kind::kFollowers
                   ? store_.FollowerIds(user_id, kMaxListedFollows, From(primary))
                   : store_.FollowingIds(user_id, kMaxListedFollows, From(primary));
    if (!ids.ok()) return ids.error();
    return RenderIdList(*ids);
  });
}

Result<std::string> Service::Followers(int64_t user_id) {
  return FollowList(Kind::kFollowers, user_id);
}

Result<std::string> Service::Following(int64_t user_id) {
  return FollowList(Kind::kFollowing, user_id);
}

Status Service::Unfollow(int64_t user_id, int64_t target) {
  if (auto t = store_.GetUser(target, Consistency::kPrimary); !t.ok()) return t.error();
  Status st = store_.Unfollow(user_id, target);
  if (!st.ok()) return st;
  cache_.Invalidate(FollowKeys(user_id, target));
  TimelineChanged(user_id, true);
  return Ok();
}

Result<std::string> Service::Upload(int64_t user_id, std::string_view content_type,
                                    std::string_view bytes, std::string caption) {
  auto info = media::Probe(bytes, content_type, opt_.media);
  if (!info.ok()) return info.error();
  auto id = store_.NewId(data::ShardOf(user_id));  // the owner's shard: found by its id alone
  if (!id.ok()) return id.error();
  data::PhotoRow p;
  p.id = *id;
  p.owner_id = user_id;
  p.caption = std::move(caption);
  p.content_type = info->content_type;
  p.media_key = MediaKey(bytes, p.content_type);
  p.width = info->width;
  p.height = info->height;
  p.created_ms = env_.WallMillis();
  if (Status st = store_.PutBlob(p.media_key, p.content_type, bytes); !st.ok()) return st.error();
  if (Status st = store_.CreatePhoto(p); !st.ok()) return st.error();
  std::vector<cache::CacheKey> keys = {{Kind::kUser, UserKey(user_id)},
                                       {Kind::kPhotos, PhotosKey(user_id)}};
  AddFollowerFeeds(user_id, &keys);
  cache_.Invalidate(keys);
  PublishPost(p);
  if (business_) business_->Event(BusinessEvent::kUpload, user_id);
  return RenderPhoto(p);
}

std::optional<std::string> Service::CachedPhoto(int64_t id) {
  return cache_.Peek(Kind::kPhoto, PhotoKey(id));
}

Result<std::string> Service::Photo(int64_t id) {
  return cache_.Get(Kind::kPhoto, PhotoKey(id), [&](bool primary) -> Result<std::string> {
    auto p = store_.GetPhoto(id, From(primary));
    if (!p.ok()) return p.error();
    return RenderPhoto(*p);
  });
}

Result<std::string> Service::UserPhotos(int64_t owner_id, int64_t before, int limit) {
  auto load = [&](bool primary) -> Result<std::string> {
    if (auto u = store_.GetUser(owner_id, From(primary)); !u.ok()) return u.error();
    auto rows = store_.ListPhotos(owner_id, before, limit, From(primary));
    if (!rows.ok()) return rows.error();
    return RenderPhotoPage(*rows, limit);
  };
  if (before != 0 || limit != kCachedPageSize) return load(false);
  return cache_.Get(Kind::kPhotos, PhotosKey(owner_id), load);
}

Result<std::string> Service::Feed(int64_t user_id, int64_t before, int limit) {
  if (timelines_) return TimelineFeed(user_id, before, limit);
  return DatabaseFeed(user_id, before, limit);
}

Result<std::string> Service::DatabaseFeed(int64_t user_id, int64_t before, int limit) {
  auto load = [&](bool primary) -> Result<std::string> {
    auto rows = store_.Feed(user_id, before, limit, From(primary));
    if (!rows.ok()) return rows.error();
    return RenderPhotoPage(*rows, limit);
  };
  if (before != 0 || limit != kCachedPageSize) return load(false);
  return cache_.Get(Kind::kFeed, FeedKey(user_id), load);
}

Result<data::Blob> Service::Media(std::string_view key) { return store_.GetBlob(key); }

Result<std::string> Service::RequestEdit(int64_t user_id, int64_t photo_id, std::string_view body) {
  std::string canonical;
  auto ops = ParseEditOps(body, &canonical);
  if (!ops.ok()) return ops.error();
  auto photo = store_.GetPhoto(photo_id, Consistency::kPrimary);
  if (!photo.ok()) return photo.error();
  if (photo->owner_id != user_id)
    return MakeError(Errc::kForbidden, "not_owner", "only the photo's owner can edit it");
  media::ImageInfo info{photo->width, photo->height, photo->content_type};
  if (Status st = media::ValidateOps(info, *ops, opt_.media); !st.ok()) return st.error();
  auto id = store_.NewId(data::ShardOf(user_id));
  if (!id.ok()) return id.error();
  data::JobRow job;
  job.id = *id;
  job.photo_id = photo_id;
  job.owner_id = user_id;
  job.status = "queued";
  job.ops_json = std::move(canonical);
  job.created_ms = env_.WallMillis();
  if (Status st = store_.CreateJob(job); !st.ok()) return st.error();
  // If this enqueue is lost to a crash, the row is found queued: by RecoverJobs at the next
  // start, or by the workers' reconciler (ReconcileJobs).
  Status published = queue_.Enqueue(job.id);
  if (!published.ok()) published = RefuseUnqueuedJob(job, published.error());
  if (!published.ok()) return published.error();
  metrics_
      .GetCounter("millions_jobs_published_total", "Jobs published to the queue.",
                  {{"kind", "edit"}})
      .Inc();
  if (business_) business_->Event(BusinessEvent::kEdit, user_id);
  return RenderJob(job);
}

Status Service::RefuseUnqueuedJob(data::JobRow& job, const Error& publish_error) {
  // A publish that failed may still have reached the queue (its acknowledgement was lost), and
  // a worker may hold the job already. The job is failed only while it is still queued, so a
  // worker that gets it later skips it and the 503 is true; when a worker claimed it first, the
  // job was accepted after all: it is answered 202 like any other (docs/queue.md).
  auto failed =
      store_.FailQueuedJob(job.id, "not queued: " + publish_error.message, env_.WallMillis());
  if (!failed.ok() || *failed) return publish_error;
  log::Warn("publish failed but a worker had the job already: accepted",
            {{"job_id", job.id}, {"error", publish_error.message}});
  if (auto now = store_.GetJob(job.id, Consistency::kPrimary); now.ok()) job = std::move(*now);
  return Ok();
}

Result<std::string> Service::Job(int64_t user_id, int64_t job_id, bool* finished) {
  auto j = store_.GetJob(job_id, Consistency::kPrimary);
  if (!j.ok()) return j.error();
  if (j->owner_id != user_id)
    return MakeError(Errc::kForbidden, "not_owner", "only the photo's owner can see its jobs");
  if (finished) *finished = j->status == "done" || j->status == "failed";
  return RenderJob(*j);
}

Status Service::RecoverJobs() {
  auto ids = store_.UnfinishedJobs();
  if (!ids.ok()) return ids.error();
  for (int64_t id : *ids)
    if (Status st = queue_.Enqueue(id); !st.ok()) return st;
  if (!ids->empty()) log::Info("re-queued unfinished jobs", {{"jobs", int64_t(ids->size())}});
  return Ok();
}

Result<int> Service::ReconcileJobs(std::chrono::milliseconds age) {
  auto ids = store_.UnfinishedJobs();
  if (!ids.ok()) return ids.error();
  int republished = 0;
  int64_t before = env_.WallMillis() - age.count();
  for (int64_t id : *ids) {
    // Young jobs are still on their way into the queue; the ID carries the time of acceptance.
    if (data::MillisOf(id) > before) continue;
    std::optional<bool> held = queue_.Holds(id);
    if (!held) return MakeError(Errc::kUnavailable, "queue_unavailable", "the queue cannot tell");
    if (*held) continue;
    if (Status st = queue_.Enqueue(id); !st.ok()) return st.error();
    ++republished;
  }
  if (republished > 0)
    log::Warn("published again jobs the queue had lost", {{"jobs", int64_t(republished)}});
  return republished;
}

Service::JobOutcome Service::ProcessJob(const queue::Delivery& d, std::string* error,
                                        std::string* op) {
  auto job = store_.GetJob(d.job_id, Consistency::kPrimary);
  if (!job.ok()) {
    if (job.error().status() != 404) return JobOutcome::kRetry;
    if (error) *error = "no such job";
    return JobOutcome::kFailed;
  }
  // A redelivery of a finished job, or a job the web node failed because its publish failed.
  if (job->status == "done" || job->status == "failed") return JobOutcome::kSkipped;
  auto give_up = [&](std::string why) {
    (void)store_.FailJob(d.job_id, why, env_.WallMillis());
    if (error) *error = std::move(why);
    return JobOutcome::kFailed;
  };
  // Every attempt that began was counted in the row: a job that stopped its worker (killed it,
  // or ran past every lease) that often is a poison job, however the queue counts deliveries.
  if (job->attempts >= opt_.max_job_attempts)
    return give_up("gave up after " + std::to_string(job->attempts) +
                   " attempts that never finished (the image stops the worker)");
  auto fail = [&](const Error& e) {
    // Bad input cannot get better by retrying; infrastructure errors can, until the last try.
    bool permanent = e.status() < 500 || d.last || d.attempt >= opt_.max_job_attempts;
    if (!permanent) return JobOutcome::kRetry;
    return give_up(e.message);
  };
  // The claim is conditional: a job that finished since it was read above (the web node whose
  // publish timed out failed it first, and told its client 503) is not run.
  auto claimed = store_.MarkJobRunning(d.job_id);
  if (!claimed.ok()) return fail(claimed.error());
  if (!*claimed) return JobOutcome::kSkipped;
  auto photo = store_.GetPhoto(job->photo_id, Consistency::kPrimary);
  if (!photo.ok()) return fail(photo.error());
  auto blob = store_.GetBlob(photo->media_key);
  if (!blob.ok()) return fail(blob.error());
  auto ops = ParseStoredOps(job->ops_json);
  if (!ops.ok()) return fail(ops.error());
  if (op) *op = ops->size() == 1 ? OpName(ops->front().kind) : "multi";
  media::ImageInfo info{photo->width, photo->height, photo->content_type};
  auto out = media::ApplyOps(blob->bytes, info, *ops, opt_.media);
  if (!out.ok()) return fail(out.error());
  std::string key = MediaKey(out->bytes, out->info.content_type);
  if (Status st = store_.PutBlob(key, out->info.content_type, out->bytes); !st.ok())
    return fail(st.error());
  data::PhotoVersion v{d.job_id, key, out->info.width, out->info.height};
  if (Status st = store_.FinishJob(d.job_id, v, env_.WallMillis()); !st.ok())
    return fail(st.error());
  // The photo's versions changed: so did every page that shows it.
  std::vector<cache::CacheKey> keys = {{Kind::kPhoto, PhotoKey(job->photo_id)},
                                       {Kind::kPhotos, PhotosKey(job->owner_id)}};
  AddFollowerFeeds(job->owner_id, &keys);
  cache_.Invalidate(keys);
  return JobOutcome::kDone;
}

Result<std::optional<data::IdempotencyRecord>> Service::ClaimIdempotencyKey(
    std::string_view scope, std::string_view key, std::string_view fingerprint) {
  return store_.ClaimIdempotencyKey(scope, key, fingerprint, env_.WallMillis(), 60'000);
}

Status Service::FinishIdempotencyKey(std::string_view scope, std::string_view key, int status,
                                     std::string_view body) {
  return store_.FinishIdempotencyKey(scope, key, status, body);
}

Status Service::ReleaseIdempotencyKey(std::string_view scope, std::string_view key) {
  return store_.ReleaseIdempotencyKey(scope, key);
}

}  // namespace millions::app
