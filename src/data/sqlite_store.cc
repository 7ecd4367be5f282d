// The embedded (stage 1) Store: one SQLite file in WAL mode holding users, sessions, follows,
// photos, media blobs and edit jobs.
#include <sqlite3.h>

#include <stdexcept>

#include "core/sqlite.h"
#include "data/store.h"

namespace millions::data {
namespace {

using sqlite::Conn;
using sqlite::Stmt;

// Versioned migrations: index i brings the schema from version i to i+1. Never edit a shipped
// entry; append a new one.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE users(
  id INTEGER PRIMARY KEY, handle TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL,
  bio TEXT NOT NULL DEFAULT '', password_hash TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE follows(
  follower INTEGER NOT NULL, followee INTEGER NOT NULL, created_ms INTEGER NOT NULL,
  PRIMARY KEY(follower, followee)) WITHOUT ROWID;
CREATE INDEX follows_by_followee ON follows(followee, follower);
CREATE TABLE sessions(
  token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL, expires_ms INTEGER NOT NULL);
CREATE TABLE blobs(key TEXT PRIMARY KEY, content_type TEXT NOT NULL, bytes BLOB NOT NULL);
CREATE TABLE photos(
  id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL, caption TEXT NOT NULL,
  media_key TEXT NOT NULL, content_type TEXT NOT NULL, width INTEGER NOT NULL,
  height INTEGER NOT NULL, created_ms INTEGER NOT NULL);
CREATE INDEX photos_by_owner ON photos(owner_id, id DESC);
CREATE TABLE photo_versions(
  photo_id INTEGER NOT NULL, job_id INTEGER NOT NULL, media_key TEXT NOT NULL,
  width INTEGER NOT NULL, height INTEGER NOT NULL, PRIMARY KEY(photo_id, job_id));
CREATE TABLE jobs(
  id INTEGER PRIMARY KEY, photo_id INTEGER NOT NULL, owner_id INTEGER NOT NULL,
  status TEXT NOT NULL, ops TEXT NOT NULL, result_key TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL, finished_ms INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0);
CREATE INDEX jobs_unfinished ON jobs(status) WHERE status IN ('queued', 'running');
)sql",
    R"sql(
CREATE TABLE idempotency_keys(
  scope TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, status INTEGER NOT NULL,
  body TEXT NOT NULL, created_ms INTEGER NOT NULL, PRIMARY KEY(scope, key)) WITHOUT ROWID;
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

UserRow ReadUser(const Stmt& s) {
  UserRow u;
  u.id = s.Int(0);
  u.handle = s.Text(1);
  u.display_name = s.Text(2);
  u.bio = s.Text(3);
  u.password_hash = s.Text(4);
  u.created_ms = s.Int(5);
  u.followers = s.Int(6);
  u.following = s.Int(7);
  u.photos = s.Int(8);
  return u;
}

Result<UserRow> OneUser(Stmt& s) {
  auto r = s.Step();
  if (!r.ok()) return r.error();
  if (!*r) return NotFound("user");
  return ReadUser(s);
}

PhotoRow ReadPhoto(const Stmt& s) {
  PhotoRow p;
  p.id = s.Int(0);
  p.owner_id = s.Int(1);
  p.caption = s.Text(2);
  p.media_key = s.Text(3);
  p.content_type = s.Text(4);
  p.width = static_cast<int>(s.Int(5));
  p.height = static_cast<int>(s.Int(6));
  p.created_ms = s.Int(7);
  return p;
}

Status LoadVersions(Conn& c, PhotoRow* p) {
  Stmt s = c.Prepare(
      "SELECT job_id, media_key, width, height FROM photo_versions WHERE photo_id = ?"
      " ORDER BY job_id");
  s.Bind(1, p->id);
  for (;;) {
    auto r = s.Step();
    if (!r.ok()) return r.error();
    if (!*r) return Ok();
    p->versions.push_back(
        {s.Int(0), s.Text(1), static_cast<int>(s.Int(2)), static_cast<int>(s.Int(3))});
  }
}

Result<std::vector<PhotoRow>> ReadPhotos(Conn& c, Stmt& s) {
  std::vector<PhotoRow> out;
  for (;;) {
    auto r = s.Step();
    if (!r.ok()) return r.error();
    if (!*r) break;
    out.push_back(ReadPhoto(s));
  }
  for (auto& p : out)
    if (Status st = LoadVersions(c, &p); !st.ok()) return st.error();
  return out;
}

JobRow ReadJob(const Stmt& s) {
  JobRow j;
  j.id = s.Int(0);
  j.photo_id = s.Int(1);
  j.owner_id = s.Int(2);
  j.status = s.Text(3);
  j.ops_json = s.Text(4);
  j.result_key = s.Text(5);
  j.error = s.Text(6);
  j.created_ms = s.Int(7);
  j.finished_ms = s.Int(8);
  j.attempts = static_cast<int>(s.Int(9));
  return j;
}

class SqliteStore : public Store {
 public:
  SqliteStore(const std::string& path, int connections) : db_(path, connections) { Migrate(); }

  Result<UserRow> CreateUser(const UserRow& u) override {
    return db_.Write<UserRow>([&](Conn& c) -> Result<UserRow> {
      Stmt s = c.Prepare(
          "INSERT INTO users(id, handle, display_name, bio, password_hash, created_ms)"
          " VALUES(?,?,?,?,?,?)");
      s.Bind(1, u.id).Bind(2, u.handle).Bind(3, u.display_name).Bind(4, u.bio);
      s.Bind(5, u.password_hash).Bind(6, u.created_ms);
      if (Status st = s.Run(); !st.ok()) {
        if (s.last_code() == SQLITE_CONSTRAINT_UNIQUE)
          return MakeError(Errc::kConflict, "handle_taken", "that handle is taken");
        return st.error();
      }
      return u;
    });
  }

  Result<UserRow> GetUser(int64_t id, Consistency) override {
    auto c = db_.Acquire();
    static const std::string sql = std::string(kUserCols) + "WHERE u.id = ?";
    Stmt s = c->Prepare(sql.c_str());
    s.Bind(1, id);
    return OneUser(s);
  }

  Result<UserRow> GetUserByHandle(std::string_view handle, Consistency) override {
    auto c = db_.Acquire();
    static const std::string sql = std::string(kUserCols) + "WHERE u.handle = ?";
    Stmt s = c->Prepare(sql.c_str());
    s.Bind(1, handle);
    return OneUser(s);
  }

  Result<UserRow> UpdateProfile(int64_t id, const std::optional<std::string>& display_name,
                                const std::optional<std::string>& bio) override {
    Status st = db_.Write<Unit>([&](Conn& c) -> Result<Unit> {
      Stmt s = c.Prepare(
          "UPDATE users SET display_name = COALESCE(?, display_name), bio = COALESCE(?, bio)"
          " WHERE id = ?");
      display_name ? s.Bind(1, *display_name) : s.BindNull(1);
      bio ? s.Bind(2, *bio) : s.BindNull(2);
      s.Bind(3, id);
      if (Status r = s.Run(); !r.ok()) return r.error();
      if (sqlite3_changes(c.raw()) == 0) return NotFound("user");
      return Unit{};
    });
    if (!st.ok()) return st.error();
    return GetUser(id, Consistency::kPrimary);
  }

  Status Follow(int64_t follower, int64_t followee, int64_t now_ms) override {
    return db_.Write<Unit>([&](Conn& c) -> Result<Unit> {
      Stmt exists = c.Prepare("SELECT 1 FROM users WHERE id = ?");
      exists.Bind(1, followee);
      auto r = exists.Step();
      if (!r.ok()) return r.error();
      if (!*r) return NotFound("user");
      Stmt s =
          c.Prepare("INSERT OR IGNORE INTO follows(follower, followee, created_ms) VALUES(?,?,?)");
      s.Bind(1, follower).Bind(2, followee).Bind(3, now_ms);
      if (Status st = s.Run(); !st.ok()) return st.error();
      return Unit{};
    });
  }

  Status Unfollow(int64_t follower, int64_t followee) override {
    return Exec("DELETE FROM follows WHERE follower = ? AND followee = ?", follower, followee);
  }

  Result<std::vector<int64_t>> FollowerIds(int64_t user_id, int limit, Consistency) override {
    return Ids("SELECT follower FROM follows WHERE followee = ? ORDER BY follower LIMIT ?", user_id,
               limit);
  }

  Result<std::vector<int64_t>> FollowingIds(int64_t user_id, int limit, Consistency) override {
    return Ids("SELECT followee FROM follows WHERE follower = ? ORDER BY followee LIMIT ?", user_id,
               limit);
  }

  Result<std::vector<int64_t>> Ids(const char* sql, int64_t user_id, int limit) {
    auto c = db_.Acquire();
    Stmt s = c->Prepare(sql);
    s.Bind(1, user_id).Bind(2, int64_t{limit});
    std::vector<int64_t> out;
    for (;;) {
      auto row = s.Step();
      if (!row.ok()) return row.error();
      if (!*row) return out;
      out.push_back(s.Int(0));
    }
  }

  Status CreateSession(const SessionRow& row) override {
    return db_.Write<Unit>([&](Conn& c) -> Result<Unit> {
      Stmt s = c.Prepare("INSERT INTO sessions(token_hash, user_id, expires_ms) VALUES(?,?,?)");
      s.Bind(1, row.token_hash).Bind(2, row.user_id).Bind(3, row.expires_ms);
      if (Status st = s.Run(); !st.ok()) return st.error();
      return Unit{};
    });
  }

  Result<SessionRow> GetSession(std::string_view token_hash, int64_t now_ms, Consistency) override {
    auto c = db_.Acquire();
    Stmt s = c->Prepare(
        "SELECT user_id, expires_ms FROM sessions WHERE token_hash = ? AND expires_ms > ?");
    s.Bind(1, token_hash).Bind(2, now_ms);
    auto r = s.Step();
    if (!r.ok()) return r.error();
    if (!*r) return NotFound("session");
    return SessionRow{std::string(token_hash), s.Int(0), s.Int(1)};
  }

  Status DeleteSession(std::string_view token_hash) override {
    return db_.Write<Unit>([&](Conn& c) -> Result<Unit> {
      Stmt s = c.Prepare("DELETE FROM sessions WHERE token_hash = ?");
      s.Bind(1, token_hash);
      if (Status st = s.Run(); !st.ok()) return st.error();
      return Unit{};
    });
  }

  Status PutBlob(std::string_view key, std::string_view content_type,
                 std::string_view bytes) override {
    return db_.Write<Unit>([&](Conn& c) -> Result<Unit> {
      Stmt s = c.Prepare("INSERT OR IGNORE INTO blobs(key, content_type, bytes) VALUES(?,?,?)");
      s.Bind(1, key).Bind(2, content_type).BindBlob(3, bytes);
      if (Status st = s.Run(); !st.ok()) return st.error();
      return Unit{};
    });
  }

  Result<Blob> GetBlob(std::string_view key) override {
    auto c = db_.Acquire();
    Stmt s = c->Prepare("SELECT content_type, bytes FROM blobs WHERE key = ?");
    s.Bind(1, key);
    auto r = s.Step();
    if (!r.ok()) return r.error();
    if (!*r) return NotFound("media");
    return Blob{s.Text(0), s.Text(1)};
  }

  Status CreatePhoto(const PhotoRow& p) override {
    return db_.Write<Unit>([&](Conn& c) -> Result<Unit> {
      Stmt s = c.Prepare(
          "INSERT INTO photos(id, owner_id, caption, media_key, content_type, width, height,"
          " created_ms) VALUES(?,?,?,?,?,?,?,?)");
      s.Bind(1, p.id).Bind(2, p.owner_id).Bind(3, p.caption).Bind(4, p.media_key);
      s.Bind(5, p.content_type).Bind(6, int64_t{p.width}).Bind(7, int64_t{p.height});
      s.Bind(8, p.created_ms);
      if (Status st = s.Run(); !st.ok()) return st.error();
      return Unit{};
    });
  }

  Result<PhotoRow> GetPhoto(int64_t id, Consistency) override {
    auto c = db_.Acquire();
    Stmt s = c->Prepare(
        "SELECT id, owner_id, caption, media_key, content_type, width, height, created_ms"
        " FROM photos WHERE id = ?");
    s.Bind(1, id);
    auto rows = ReadPhotos(*c, s);
    if (!rows.ok()) return rows.error();
    if (rows->empty()) return NotFound("photo");
    return std::move(rows->front());
  }

  Result<std::vector<PhotoRow>> ListPhotos(int64_t owner_id, int64_t before, int limit,
                                           Consistency) override {
    auto c = db_.Acquire();
    Stmt s = c->Prepare(
        "SELECT id, owner_id, caption, media_key, content_type, width, height, created_ms"
        " FROM photos WHERE owner_id = ? AND id < ? ORDER BY id DESC LIMIT ?");
    s.Bind(1, owner_id).Bind(2, before > 0 ? before : INT64_MAX).Bind(3, int64_t{limit});
    return ReadPhotos(*c, s);
  }

  Result<std::vector<PhotoRow>> Feed(int64_t user_id, int64_t before, int limit,
                                     Consistency) override {
    auto c = db_.Acquire();
    // Fan-out on read: the photos of everyone the user follows, newest first.
    Stmt s = c->Prepare(
        "SELECT p.id, p.owner_id, p.caption, p.media_key, p.content_type, p.width, p.height,"
        " p.created_ms FROM follows f JOIN photos p ON p.owner_id = f.followee"
        " WHERE f.follower = ? AND p.id < ? ORDER BY p.id DESC LIMIT ?");
    s.Bind(1, user_id).Bind(2, before > 0 ? before : INT64_MAX).Bind(3, int64_t{limit});
    return ReadPhotos(*c, s);
  }

  Status CreateJob(const JobRow& j) override {
    return db_.Write<Unit>([&](Conn& c) -> Result<Unit> {
      Stmt s = c.Prepare(
          "INSERT INTO jobs(id, photo_id, owner_id, status, ops, created_ms) VALUES(?,?,?,?,?,?)");
      s.Bind(1, j.id).Bind(2, j.photo_id).Bind(3, j.owner_id).Bind(4, j.status);
      s.Bind(5, j.ops_json).Bind(6, j.created_ms);
      if (Status st = s.Run(); !st.ok()) return st.error();
      return Unit{};
    });
  }

  Result<JobRow> GetJob(int64_t id, Consistency) override {
    auto c = db_.Acquire();
    Stmt s = c->Prepare(
        "SELECT id, photo_id, owner_id, status, ops, result_key, error, created_ms, finished_ms,"
        " attempts FROM jobs WHERE id = ?");
    s.Bind(1, id);
    auto r = s.Step();
    if (!r.ok()) return r.error();
    if (!*r) return NotFound("job");
    return ReadJob(s);
  }

  Result<std::vector<int64_t>> UnfinishedJobs() override {
    auto c = db_.Acquire();
    Stmt s = c->Prepare("SELECT id FROM jobs WHERE status IN ('queued', 'running') ORDER BY id");
    std::vector<int64_t> out;
    for (;;) {
      auto r = s.Step();
      if (!r.ok()) return r.error();
      if (!*r) return out;
      out.push_back(s.Int(0));
    }
  }

  Status MarkJobRunning(int64_t id) override {
    return db_.Write<Unit>([&](Conn& c) -> Result<Unit> {
      Stmt s =
          c.Prepare("UPDATE jobs SET status = 'running', attempts = attempts + 1 WHERE id = ?");
      s.Bind(1, id);
      if (Status st = s.Run(); !st.ok()) return st.error();
      return Unit{};
    });
  }

  Status FinishJob(int64_t job_id, const PhotoVersion& v, int64_t now_ms) override {
    return db_.Write<Unit>([&](Conn& c) -> Result<Unit> {
      Stmt job = c.Prepare("SELECT photo_id, status FROM jobs WHERE id = ?");
      job.Bind(1, job_id);
      auto r = job.Step();
      if (!r.ok()) return r.error();
      if (!*r) return NotFound("job");
      int64_t photo_id = job.Int(0);
      // A job redelivered after a crash may finish twice; the version is written once.
      Stmt ins = c.Prepare(
          "INSERT OR IGNORE INTO photo_versions(photo_id, job_id, media_key, width, height)"
          " VALUES(?,?,?,?,?)");
      ins.Bind(1, photo_id).Bind(2, job_id).Bind(3, v.media_key);
      ins.Bind(4, int64_t{v.width}).Bind(5, int64_t{v.height});
      if (Status st = ins.Run(); !st.ok()) return st.error();
      Stmt upd = c.Prepare(
          "UPDATE jobs SET status = 'done', result_key = ?, finished_ms = ?, error = ''"
          " WHERE id = ?");
      upd.Bind(1, v.media_key).Bind(2, now_ms).Bind(3, job_id);
      if (Status st = upd.Run(); !st.ok()) return st.error();
      return Unit{};
    });
  }

  Status FailJob(int64_t job_id, std::string_view error, int64_t now_ms) override {
    return db_.Write<Unit>([&](Conn& c) -> Result<Unit> {
      Stmt s =
          c.Prepare("UPDATE jobs SET status = 'failed', error = ?, finished_ms = ? WHERE id = ?");
      s.Bind(1, error).Bind(2, now_ms).Bind(3, job_id);
      if (Status st = s.Run(); !st.ok()) return st.error();
      return Unit{};
    });
  }

 private:
  Result<std::optional<IdempotencyRecord>> ClaimIdempotencyKey(std::string_view scope,
                                                               std::string_view key,
                                                               std::string_view fingerprint,
                                                               int64_t now_ms,
                                                               int64_t stale_ms) override {
    using Out = std::optional<IdempotencyRecord>;
    return db_.Write<Out>([&](Conn& c) -> Result<Out> {
      Stmt ins = c.Prepare(
          "INSERT OR IGNORE INTO idempotency_keys(scope, key, fingerprint, status, body,"
          " created_ms) VALUES(?,?,?,0,'',?) RETURNING 1");
      ins.Bind(1, scope).Bind(2, key).Bind(3, fingerprint).Bind(4, now_ms);
      auto claimed = ins.Step();
      if (!claimed.ok()) return claimed.error();
      if (*claimed) return Out{};
      Stmt take = c.Prepare(
          "UPDATE idempotency_keys SET created_ms = ? WHERE scope = ? AND key = ?"
          " AND fingerprint = ? AND status = 0 AND created_ms < ? RETURNING 1");
      take.Bind(1, now_ms)
          .Bind(2, scope)
          .Bind(3, key)
          .Bind(4, fingerprint)
          .Bind(5, now_ms - stale_ms);
      auto taken = take.Step();
      if (!taken.ok()) return taken.error();
      if (*taken) return Out{};
      Stmt get = c.Prepare(
          "SELECT fingerprint, status, body, created_ms FROM idempotency_keys"
          " WHERE scope = ? AND key = ?");
      get.Bind(1, scope).Bind(2, key);
      auto row = get.Step();
      if (!row.ok()) return row.error();
      if (!*row) return Out{};
      return Out{
          IdempotencyRecord{get.Text(0), static_cast<int>(get.Int(1)), get.Text(2), get.Int(3)}};
    });
  }

  Status FinishIdempotencyKey(std::string_view scope, std::string_view key, int status,
                              std::string_view body) override {
    return db_.Write<Unit>([&](Conn& c) -> Result<Unit> {
      Stmt s =
          c.Prepare("UPDATE idempotency_keys SET status = ?, body = ? WHERE scope = ? AND key = ?");
      s.Bind(1, int64_t{status}).Bind(2, body).Bind(3, scope).Bind(4, key);
      if (Status st = s.Run(); !st.ok()) return st.error();
      return Unit{};
    });
  }

  Status ReleaseIdempotencyKey(std::string_view scope, std::string_view key) override {
    return db_.Write<Unit>([&](Conn& c) -> Result<Unit> {
      Stmt s = c.Prepare("DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND status = 0");
      s.Bind(1, scope).Bind(2, key);
      if (Status st = s.Run(); !st.ok()) return st.error();
      return Unit{};
    });
  }

  Status Exec(const char* sql, int64_t a, int64_t b) {
    return db_.Write<Unit>([&](Conn& c) -> Result<Unit> {
      Stmt s = c.Prepare(sql);
      s.Bind(1, a).Bind(2, b);
      if (Status st = s.Run(); !st.ok()) return st.error();
      return Unit{};
    });
  }

  void Migrate() {
    Status st = db_.Write<Unit>([&](Conn& c) -> Result<Unit> {
      if (Status s = c.Exec("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)");
          !s.ok())
        return s.error();
      Stmt q = c.Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version");
      auto r = q.Step();
      if (!r.ok()) return r.error();
      int64_t have = q.Int(0);
      int64_t want = static_cast<int64_t>(std::size(kMigrations));
      if (have > want)
        return MakeError(Errc::kInternal, "schema_too_new",
                         "database schema is newer than this binary");
      for (int64_t v = have; v < want; ++v) {
        if (Status s = c.Exec(kMigrations[v]); !s.ok()) return s.error();
        Stmt ins = c.Prepare("INSERT INTO schema_version(version) VALUES(?)");
        ins.Bind(1, v + 1);
        if (Status s = ins.Run(); !s.ok()) return s.error();
      }
      return Unit{};
    });
    if (!st.ok()) throw std::runtime_error("migrating the database: " + st.error().message);
  }

  sqlite::Db db_;
};

}  // namespace

std::unique_ptr<Store> OpenSqliteStore(const std::string& path, int connections) {
  return std::make_unique<SqliteStore>(path, connections);
}

}  // namespace millions::data
