// The PostgreSQL Store (stage 2 on): the same tables as the SQLite store, media blobs in bytea,
// every statement prepared once per connection, versioned migrations under an advisory lock
// so that several web nodes starting together migrate once.
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include "core/pg.h"
#include "data/pg_cluster.h"
#include "data/store.h"

namespace millions::data {
namespace {

using pg::Bytes;
using pg::Conn;
using pg::P;
using pg::Rows;

const char* const kMigrations[] = {
    R"sql(
CREATE TABLE users(
  id BIGINT PRIMARY KEY, handle TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL,
  bio TEXT NOT NULL DEFAULT '', password_hash TEXT NOT NULL, created_ms BIGINT NOT NULL);
CREATE TABLE follows(
  follower BIGINT NOT NULL, followee BIGINT NOT NULL, created_ms BIGINT NOT NULL,
  PRIMARY KEY(follower, followee));
CREATE INDEX follows_by_followee ON follows(followee, follower);
CREATE TABLE sessions(
  token_hash TEXT PRIMARY KEY, user_id BIGINT NOT NULL, expires_ms BIGINT NOT NULL);
CREATE TABLE blobs(key TEXT PRIMARY KEY, content_type TEXT NOT NULL, bytes BYTEA NOT NULL);
CREATE TABLE photos(
  id BIGINT PRIMARY KEY, owner_id BIGINT NOT NULL, caption TEXT NOT NULL,
  media_key TEXT NOT NULL, content_type TEXT NOT NULL, width BIGINT NOT NULL,
  height BIGINT NOT NULL, created_ms BIGINT NOT NULL);
CREATE INDEX photos_by_owner ON photos(owner_id, id DESC);
CREATE TABLE photo_versions(
  photo_id BIGINT NOT NULL, job_id BIGINT NOT NULL, media_key TEXT NOT NULL,
  width BIGINT NOT NULL, height BIGINT NOT NULL, PRIMARY KEY(photo_id, job_id));
CREATE TABLE jobs(
  id BIGINT PRIMARY KEY, photo_id BIGINT NOT NULL, owner_id BIGINT NOT NULL,
  status TEXT NOT NULL, ops TEXT NOT NULL, result_key TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '', created_ms BIGINT NOT NULL, finished_ms BIGINT NOT NULL DEFAULT 0,
  attempts BIGINT NOT NULL DEFAULT 0);
CREATE INDEX jobs_unfinished ON jobs(status) WHERE status IN ('queued', 'running');
)sql",
    R"sql(
CREATE TABLE idempotency_keys(
  scope TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, status INT NOT NULL,
  body TEXT NOT NULL, created_ms BIGINT NOT NULL, PRIMARY KEY(scope, key));
)sql",
};

Error NotFound(std::string_view what) {
  return MakeError(Errc::kNotFound, "not_found", std::string(what) + " not found");
}

constexpr const char* kUserCols =
    "SELECT u.id, u.handle, u.display_name, u.bio, u.password_hash, u.created_ms,"
    " (SELECT COUNT(*) FROM follows WHERE followee = u.id),"
    " (SELECT COUNT(*) FROM follows WHERE follower = u.id),"
    " (SELECT COUNT(*) FROM photos WHERE owner_id = u.id) FROM users u ";
constexpr const char* kPhotoCols =
    "SELECT p.id, p.owner_id, p.caption, p.media_key, p.content_type, p.width, p.height,"
    " p.created_ms FROM ";
constexpr const char* kJobCols =
    "SELECT id, photo_id, owner_id, status, ops, result_key, error, created_ms, finished_ms,"
    " attempts FROM jobs ";

UserRow ReadUser(const Rows& r, int i) {
  return UserRow{r.Int(i, 0), r.Text(i, 1), r.Text(i, 2), r.Text(i, 3), r.Text(i, 4),
                 r.Int(i, 5), r.Int(i, 6),  r.Int(i, 7),  r.Int(i, 8)};
}

JobRow ReadJob(const Rows& r, int i) {
  return JobRow{
      r.Int(i, 0),  r.Int(i, 1),  r.Int(i, 2), r.Text(i, 3), r.Text(i, 4),
      r.Text(i, 5), r.Text(i, 6), r.Int(i, 7), r.Int(i, 8),  static_cast<int>(r.Int(i, 9))};
}

Result<std::vector<PhotoRow>> ReadPhotos(Conn& c, const Rows& r) {
  std::vector<PhotoRow> out;
  for (int i = 0; i < r.size(); ++i) {
    PhotoRow p;
    p.id = r.Int(i, 0);
    p.owner_id = r.Int(i, 1);
    p.caption = r.Text(i, 2);
    p.media_key = r.Text(i, 3);
    p.content_type = r.Text(i, 4);
    p.width = static_cast<int>(r.Int(i, 5));
    p.height = static_cast<int>(r.Int(i, 6));
    p.created_ms = r.Int(i, 7);
    auto v = c.Exec("versions",
                    "SELECT job_id, media_key, width, height FROM photo_versions"
                    " WHERE photo_id = $1 ORDER BY job_id",
                    {P(p.id)});
    if (!v.ok()) return v.error();
    for (int j = 0; j < v->size(); ++j)
      p.versions.push_back({v->Int(j, 0), v->Text(j, 1), static_cast<int>(v->Int(j, 2)),
                            static_cast<int>(v->Int(j, 3))});
    out.push_back(std::move(p));
  }
  return out;
}

class PgStore : public Store {
 public:
  explicit PgStore(ClusterOptions o) : cluster_(std::move(o)) { Migrate(); }

  void RegisterMetrics(metrics::Registry& registry) override {
    auto get = [&](const char* role, const char* kind) {
      return &registry.GetCounter("millions_db_queries_total",
                                  "Database statements by the member role that ran them.",
                                  {{"shard", "0"}, {"member_role", role}, {"kind", kind}});
    };
    counters_ = {get("primary", "read"), get("replica", "read"), get("primary", "write")};
    for (const auto& name : cluster_.MemberNames())
      member_reads_[name] = &registry.GetCounter("millions_db_member_reads_total",
                                                 "Reads served by each database member.",
                                                 {{"shard", "0"}, {"member", name}});
    registry.AddCollector([this](std::string* out) { cluster_.RenderMetrics(out); });
  }

  Result<UserRow> CreateUser(const UserRow& u) override {
    Wrote(u.id);
    return Write<UserRow>([&](Conn& c) -> Result<UserRow> {
      auto r = c.Exec(
          "create_user",
          "INSERT INTO users(id, handle, display_name, bio, password_hash,"
          " created_ms) VALUES($1,$2,$3,$4,$5,$6)",
          {P(u.id), P(u.handle), P(u.display_name), P(u.bio), P(u.password_hash), P(u.created_ms)});
      if (!r.ok()) {
        if (pg::IsUniqueViolation(r.error()))
          return MakeError(Errc::kConflict, "handle_taken", "that handle is taken");
        return r.error();
      }
      return u;
    });
  }

  Result<UserRow> GetUser(int64_t id, Consistency c) override {
    return OneUser(ForUser(c, id), "user_by_id", "WHERE u.id = $1", P(id));
  }

  Result<UserRow> GetUserByHandle(std::string_view handle, Consistency c) override {
    return OneUser(c, "user_by_handle", "WHERE u.handle = $1", P(handle));
  }

  Result<UserRow> UpdateProfile(int64_t id, const std::optional<std::string>& display_name,
                                const std::optional<std::string>& bio) override {
    Wrote(id);
    Status st = Write<Unit>([&](Conn& c) -> Result<Unit> {
      auto r =
          c.Exec("update_profile",
                 "UPDATE users SET display_name = COALESCE($1, display_name),"
                 " bio = COALESCE($2, bio) WHERE id = $3",
                 {display_name ? P(*display_name) : pg::Null(), bio ? P(*bio) : pg::Null(), P(id)});
      if (!r.ok()) return r.error();
      if (r->affected() == 0) return NotFound("user");
      return Unit{};
    });
    if (!st.ok()) return st.error();
    return GetUser(id, Consistency::kPrimary);
  }

  Status Follow(int64_t follower, int64_t followee, int64_t now_ms) override {
    Wrote(follower);
    Result<bool> inserted = Write<bool>([&](Conn& c) -> Result<bool> {
      // One statement: the followee must exist, and following twice is a no-op.
      auto r = c.Exec("follow",
                      "INSERT INTO follows(follower, followee, created_ms)"
                      " SELECT $1, id, $3 FROM users WHERE id = $2"
                      " ON CONFLICT DO NOTHING RETURNING 1",
                      {P(follower), P(followee), P(now_ms)});
      if (!r.ok()) return r.error();
      return !r->empty();
    });
    if (!inserted.ok()) return inserted.error();
    if (!*inserted) {
      auto u = GetUser(followee, Consistency::kPrimary);
      if (!u.ok()) return u.error();
    }
    return Ok();
  }

  Status Unfollow(int64_t follower, int64_t followee) override {
    Wrote(follower);
    return Run("unfollow", "DELETE FROM follows WHERE follower = $1 AND followee = $2",
               {P(follower), P(followee)});
  }

  Result<std::vector<int64_t>> FollowerIds(int64_t user_id, int limit, Consistency c) override {
    return Ids(c, user_id, "follower_ids",
               "SELECT follower FROM follows WHERE followee = $1 ORDER BY follower LIMIT $2",
               limit);
  }

  Result<std::vector<int64_t>> FollowingIds(int64_t user_id, int limit, Consistency c) override {
    return Ids(c, user_id, "following_ids",
               "SELECT followee FROM follows WHERE follower = $1 ORDER BY followee LIMIT $2",
               limit);
  }

  Result<std::vector<int64_t>> Ids(Consistency c, int64_t user_id, const char* name,
                                   const char* sql, int limit) {
    return Read<std::vector<int64_t>>(
        ForUser(c, user_id), [&](Conn& conn) -> Result<std::vector<int64_t>> {
          auto r = conn.Exec(name, sql, {P(user_id), P(int64_t{limit})});
          if (!r.ok()) return r.error();
          std::vector<int64_t> out;
          for (int i = 0; i < r->size(); ++i) out.push_back(r->Int(i, 0));
          return out;
        });
  }

  Status CreateSession(const SessionRow& s) override {
    return Run("create_session",
               "INSERT INTO sessions(token_hash, user_id, expires_ms) VALUES($1,$2,$3)",
               {P(s.token_hash), P(s.user_id), P(s.expires_ms)});
  }

  Result<SessionRow> GetSession(std::string_view token_hash, int64_t now_ms,
                                Consistency c) override {
    return Read<SessionRow>(c, [&](Conn& conn) -> Result<SessionRow> {
      auto r = conn.Exec(
          "get_session",
          "SELECT user_id, expires_ms FROM sessions WHERE token_hash = $1 AND expires_ms > $2",
          {P(token_hash), P(now_ms)});
      if (!r.ok()) return r.error();
      if (r->empty()) return NotFound("session");
      return SessionRow{std::string(token_hash), r->Int(0, 0), r->Int(0, 1)};
    });
  }

  Status DeleteSession(std::string_view token_hash) override {
    return Run("delete_session", "DELETE FROM sessions WHERE token_hash = $1", {P(token_hash)});
  }

  Status PutBlob(std::string_view key, std::string_view content_type,
                 std::string_view bytes) override {
    return Run("put_blob",
               "INSERT INTO blobs(key, content_type, bytes) VALUES($1,$2,$3)"
               " ON CONFLICT (key) DO NOTHING",
               {P(key), P(content_type), Bytes(bytes)});
  }

  Result<Blob> GetBlob(std::string_view key) override {
    // Content-addressed: a copy on any replica is the same bytes.
    return Read<Blob>(Consistency::kReplica, [&](Conn& c) -> Result<Blob> {
      auto r = c.ExecBinary("get_blob", "SELECT content_type, bytes FROM blobs WHERE key = $1",
                            {P(key)});
      if (!r.ok()) return r.error();
      if (r->empty()) return NotFound("media");
      return Blob{r->Text(0, 0), r->Text(0, 1)};
    });
  }

  Status CreatePhoto(const PhotoRow& p) override {
    Wrote(p.owner_id);
    return Run("create_photo",
               "INSERT INTO photos(id, owner_id, caption, media_key, content_type, width, height,"
               " created_ms) VALUES($1,$2,$3,$4,$5,$6,$7,$8)",
               {P(p.id), P(p.owner_id), P(p.caption), P(p.media_key), P(p.content_type),
                P(int64_t{p.width}), P(int64_t{p.height}), P(p.created_ms)});
  }

  Result<PhotoRow> GetPhoto(int64_t id, Consistency c) override {
    static const std::string sql = std::string(kPhotoCols) + "photos p WHERE p.id = $1";
    auto rows = Photos(c, "get_photo", sql.c_str(), {P(id)}, /*empty_is_missing=*/true);
    if (!rows.ok()) return rows.error();
    return std::move(rows->front());
  }

  Result<std::vector<PhotoRow>> ListPhotos(int64_t owner_id, int64_t before, int limit,
                                           Consistency c) override {
    static const std::string sql = std::string(kPhotoCols) +
                                   "photos p WHERE p.owner_id = $1 AND p.id < $2"
                                   " ORDER BY p.id DESC LIMIT $3";
    return Photos(ForUser(c, owner_id), "list_photos", sql.c_str(),
                  {P(owner_id), P(before > 0 ? before : INT64_MAX), P(int64_t{limit})});
  }

  Result<std::vector<PhotoRow>> Feed(int64_t user_id, int64_t before, int limit,
                                     Consistency c) override {
    static const std::string sql = std::string(kPhotoCols) +
                                   "follows f JOIN photos p ON p.owner_id = f.followee"
                                   " WHERE f.follower = $1 AND p.id < $2"
                                   " ORDER BY p.id DESC LIMIT $3";
    return Photos(ForUser(c, user_id), "feed", sql.c_str(),
                  {P(user_id), P(before > 0 ? before : INT64_MAX), P(int64_t{limit})});
  }

  Status CreateJob(const JobRow& j) override {
    Wrote(j.owner_id);
    return Run(
        "create_job",
        "INSERT INTO jobs(id, photo_id, owner_id, status, ops, created_ms)"
        " VALUES($1,$2,$3,$4,$5,$6)",
        {P(j.id), P(j.photo_id), P(j.owner_id), P(j.status), P(j.ops_json), P(j.created_ms)});
  }

  Result<JobRow> GetJob(int64_t id, Consistency c) override {
    return Read<JobRow>(c, [&](Conn& conn) -> Result<JobRow> {
      static const std::string sql = std::string(kJobCols) + "WHERE id = $1";
      auto r = conn.Exec("get_job", sql.c_str(), {P(id)});
      if (!r.ok()) return r.error();
      if (r->empty()) return NotFound("job");
      return ReadJob(*r, 0);
    });
  }

  Result<std::vector<int64_t>> UnfinishedJobs() override {
    return Read<std::vector<int64_t>>(
        Consistency::kPrimary, [&](Conn& c) -> Result<std::vector<int64_t>> {
          auto r =
              c.Exec("unfinished_jobs",
                     "SELECT id FROM jobs WHERE status IN ('queued', 'running') ORDER BY id", {});
          if (!r.ok()) return r.error();
          std::vector<int64_t> out;
          for (int i = 0; i < r->size(); ++i) out.push_back(r->Int(i, 0));
          return out;
        });
  }

  Status MarkJobRunning(int64_t id) override {
    return Run("job_running",
               "UPDATE jobs SET status = 'running', attempts = attempts + 1 WHERE id = $1",
               {P(id)});
  }

  Status FinishJob(int64_t job_id, const PhotoVersion& v, int64_t now_ms) override {
    return WriteTx<Unit>([&](Conn& c) -> Result<Unit> {
      // A job redelivered after a crash may finish twice; the version is written once.
      auto ins = c.Exec("add_version",
                        "INSERT INTO photo_versions(photo_id, job_id, media_key, width, height)"
                        " SELECT photo_id, id, $2, $3, $4 FROM jobs WHERE id = $1"
                        " ON CONFLICT DO NOTHING",
                        {P(job_id), P(v.media_key), P(int64_t{v.width}), P(int64_t{v.height})});
      if (!ins.ok()) return ins.error();
      auto upd = c.Exec("finish_job",
                        "UPDATE jobs SET status = 'done', result_key = $2, finished_ms = $3,"
                        " error = '' WHERE id = $1",
                        {P(job_id), P(v.media_key), P(now_ms)});
      if (!upd.ok()) return upd.error();
      if (upd->affected() == 0) return NotFound("job");
      return Unit{};
    });
  }

  Status FailJob(int64_t job_id, std::string_view error, int64_t now_ms) override {
    return Run("fail_job",
               "UPDATE jobs SET status = 'failed', error = $2, finished_ms = $3 WHERE id = $1",
               {P(job_id), P(error), P(now_ms)});
  }

  Result<std::optional<IdempotencyRecord>> ClaimIdempotencyKey(std::string_view scope,
                                                               std::string_view key,
                                                               std::string_view fingerprint,
                                                               int64_t now_ms,
                                                               int64_t stale_ms) override {
    using Out = std::optional<IdempotencyRecord>;
    return Write<Out>([&](Conn& c) -> Result<Out> {
      auto ins = c.Exec("idem_claim",
                        "INSERT INTO idempotency_keys(scope, key, fingerprint, status, body,"
                        " created_ms) VALUES($1,$2,$3,0,'',$4) ON CONFLICT DO NOTHING RETURNING 1",
                        {P(scope), P(key), P(fingerprint), P(now_ms)});
      if (!ins.ok()) return ins.error();
      if (!ins->empty()) return Out{};
      auto take = c.Exec("idem_takeover",
                         "UPDATE idempotency_keys SET created_ms = $4 WHERE scope = $1 AND key = $2"
                         " AND fingerprint = $3 AND status = 0 AND created_ms < $5 RETURNING 1",
                         {P(scope), P(key), P(fingerprint), P(now_ms), P(now_ms - stale_ms)});
      if (!take.ok()) return take.error();
      if (!take->empty()) return Out{};
      auto r = c.Exec("idem_get",
                      "SELECT fingerprint, status, body, created_ms FROM idempotency_keys"
                      " WHERE scope = $1 AND key = $2",
                      {P(scope), P(key)});
      if (!r.ok()) return r.error();
      if (r->empty()) return Out{};  // released meanwhile: ours now is as good as any
      return Out{IdempotencyRecord{r->Text(0, 0), static_cast<int>(r->Int(0, 1)), r->Text(0, 2),
                                   r->Int(0, 3)}};
    });
  }

  Status FinishIdempotencyKey(std::string_view scope, std::string_view key, int status,
                              std::string_view body) override {
    return Run("idem_finish",
               "UPDATE idempotency_keys SET status = $3, body = $4 WHERE scope = $1 AND key = $2",
               {P(scope), P(key), P(int64_t{status}), P(body)});
  }

  Status ReleaseIdempotencyKey(std::string_view scope, std::string_view key) override {
    return Run("idem_release",
               "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status = 0",
               {P(scope), P(key)});
  }

 private:
  // Reads: on the member the consistency asks for; a replica that fails is skipped and the
  // read goes to another member (reads are safe to repeat); a row a replica does not have
  // yet (404) is asked of the primary, so a caller sees what was just created.
  template <class T>
  Result<T> Read(Consistency c, const std::function<Result<T>(Conn&)>& fn) {
    Need need = c == Consistency::kReplica ? Need::kReplica : Need::kPrimary;
    std::vector<std::string> avoid;
    Error last = MakeError(Errc::kUnavailable, "database_unavailable", "no member answered");
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto lease = cluster_.Acquire(need, avoid);
      if (!lease.ok()) return lease.error();
      Counted(lease->primary ? counters_.primary_read : counters_.replica_read);
      if (auto it = member_reads_.find(lease->member); it != member_reads_.end()) it->second->Inc();
      Result<T> r = fn(*lease->conn);
      if (r.ok()) return r;
      if (r.error().status() == 404 && !lease->primary) {
        need = Need::kPrimary;
        continue;
      }
      if (lease->conn->healthy()) return r;  // the statement's own error, not the member's
      cluster_.MarkDown(lease->member);
      avoid.push_back(lease->member);
      last = r.error();
    }
    return last;
  }

  // Writes: on the primary, waiting (bounded) for one during a failover. A statement that
  // fails because the primary went away is not repeated: it may have committed; the caller
  // gets a 503 and decides (Idempotency-Key).
  template <class T>
  Result<T> Write(const std::function<Result<T>(Conn&)>& fn) {
    auto lease = cluster_.Acquire(Need::kPrimary);
    if (!lease.ok()) return lease.error();
    Counted(counters_.primary_write);
    Result<T> r = fn(*lease->conn);
    if (!r.ok() && !lease->conn->healthy()) cluster_.MarkDown(lease->member);
    return r;
  }

  template <class T>
  Result<T> WriteTx(const std::function<Result<T>(Conn&)>& fn) {
    return Write<T>([&](Conn& c) -> Result<T> { return pg::InTx<T>(c, fn); });
  }

  Status Run(const char* name, const char* sql, std::initializer_list<pg::Param> params) {
    return Write<Unit>([&](Conn& c) -> Result<Unit> {
      auto r = c.Exec(name, sql, params);
      if (!r.ok()) return r.error();
      return Unit{};
    });
  }

  Result<UserRow> OneUser(Consistency c, const char* name, const char* where, pg::Param key) {
    return Read<UserRow>(c, [&](Conn& conn) -> Result<UserRow> {
      std::string sql = std::string(kUserCols) + where;
      auto r = conn.Exec(name, sql.c_str(), {key});
      if (!r.ok()) return r.error();
      if (r->empty()) return NotFound("user");
      return ReadUser(*r, 0);
    });
  }

  Result<std::vector<PhotoRow>> Photos(Consistency c, const char* name, const char* sql,
                                       std::initializer_list<pg::Param> params,
                                       bool empty_is_missing = false) {
    return Read<std::vector<PhotoRow>>(c, [&](Conn& conn) -> Result<std::vector<PhotoRow>> {
      auto r = conn.Exec(name, sql, params);
      if (!r.ok()) return r.error();
      if (empty_is_missing && r->empty()) return NotFound("photo");
      return ReadPhotos(conn, *r);
    });
  }

  // Read-your-writes: reads about a user who wrote through this node in the last
  // kReadYourWrites go to the primary (replicas may not have replayed the write yet).
  static constexpr int64_t kReadYourWritesMs = 2000;
  void Wrote(int64_t user_id) {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(kReadYourWritesMs);
    std::lock_guard lock(recent_mu_);
    if (recent_.size() > 100000) recent_.clear();  // bounded; the window is short anyway
    recent_[user_id] = until;
  }
  Consistency ForUser(Consistency c, int64_t user_id) {
    if (c == Consistency::kPrimary) return c;
    std::lock_guard lock(recent_mu_);
    auto it = recent_.find(user_id);
    if (it == recent_.end()) return c;
    if (it->second < std::chrono::steady_clock::now()) {
      recent_.erase(it);
      return c;
    }
    return Consistency::kPrimary;
  }

  static void Counted(metrics::Counter* c) {
    if (c) c->Inc();
  }

  void Migrate() {
    Status st = WriteTx<Unit>([](Conn& c) -> Result<Unit> {
      // Nodes starting together take turns; the lock is released at COMMIT.
      if (Status s = c.Simple("SELECT pg_advisory_xact_lock(7243120)"); !s.ok()) return s.error();
      if (Status s = c.Simple("CREATE TABLE IF NOT EXISTS schema_version(version BIGINT NOT NULL)");
          !s.ok())
        return s.error();
      auto r = c.Exec("schema_version", "SELECT COALESCE(MAX(version), 0) FROM schema_version", {});
      if (!r.ok()) return r.error();
      int64_t have = r->Int(0, 0);
      int64_t want = static_cast<int64_t>(std::size(kMigrations));
      if (have > want)
        return MakeError(Errc::kInternal, "schema_too_new",
                         "database schema is newer than this binary");
      for (int64_t v = have; v < want; ++v) {
        if (Status s = c.Simple(kMigrations[v]); !s.ok()) return s.error();
        auto ins =
            c.Exec("set_version", "INSERT INTO schema_version(version) VALUES($1)", {P(v + 1)});
        if (!ins.ok()) return ins.error();
      }
      return Unit{};
    });
    if (!st.ok()) throw std::runtime_error("migrating PostgreSQL: " + st.error().message);
  }

  struct Counters {
    metrics::Counter* primary_read = nullptr;
    metrics::Counter* replica_read = nullptr;
    metrics::Counter* primary_write = nullptr;
  };
  PgCluster cluster_;
  Counters counters_;
  std::map<std::string, metrics::Counter*> member_reads_;  // fixed once metrics are registered
  std::mutex recent_mu_;
  std::unordered_map<int64_t, std::chrono::steady_clock::time_point> recent_;
};

}  // namespace

std::unique_ptr<Store> OpenPgStore(const pg::Options& options) {
  ClusterOptions o;
  ClusterOptions::Member m;
  m.name = "pg";
  m.conninfo = options.conninfo;
  o.members.push_back(m);
  o.pool_size = options.pool_size;
  o.connect_timeout_s = options.connect_timeout_s;
  o.statement_timeout_ms = options.statement_timeout_ms;
  return std::make_unique<PgStore>(std::move(o));
}

std::unique_ptr<Store> OpenPgStore(const ClusterOptions& options) {
  return std::make_unique<PgStore>(options);
}

}  // namespace millions::data
