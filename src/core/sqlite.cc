#include "core/sqlite.h"

#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace millions::sqlite {

Error DbError(sqlite3* db, int rc, std::string_view what) {
  int primary = rc & 0xff;
  std::string msg = std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
    return MakeError(Errc::kUnavailable, "database_busy", msg);
  return MakeError(Errc::kInternal, "database_error", msg);
}

Stmt::~Stmt() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}

Stmt& Stmt::Bind(int i, int64_t v) {
  sqlite3_bind_int64(s_, i, v);
  return *this;
}
Stmt& Stmt::Bind(int i, std::string_view v) {
  sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::BindBlob(int i, std::string_view v) {
  sqlite3_bind_blob64(s_, i, v.data(), v.size(), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::BindNull(int i) {
  sqlite3_bind_null(s_, i);
  return *this;
}

Result<bool> Stmt::Step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  last_code_ = sqlite3_extended_errcode(db_);
  return DbError(db_, rc, "query failed");
}

Status Stmt::Run() {
  for (;;) {
    Result<bool> r = Step();
    if (!r.ok()) return r.error();
    if (!*r) return Ok();
  }
}

int64_t Stmt::Int(int col) const { return sqlite3_column_int64(s_, col); }
std::string Stmt::Text(int col) const {
  const void* p = sqlite3_column_blob(s_, col);
  int n = sqlite3_column_bytes(s_, col);
  return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}
bool Stmt::IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

Conn::~Conn() {
  for (auto& [sql, s] : cache_) sqlite3_finalize(s);
  sqlite3_close_v2(db_);
}

Stmt Conn::Prepare(const char* sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return Stmt(it->second, db_);
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) {
    fprintf(stderr, "sqlite: cannot prepare [%s]: %s\n", sql, sqlite3_errmsg(db_));
    std::abort();
  }
  cache_.emplace(sql, s);
  return Stmt(s, db_);
}

Status Conn::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    Error e = DbError(db_, rc, err ? err : "exec failed");
    sqlite3_free(err);
    return e;
  }
  return Ok();
}

Db::Db(const std::string& path, int connections) {
  for (int i = 0; i < connections; ++i) {
    sqlite3* raw = nullptr;
    int rc =
        sqlite3_open_v2(path.c_str(), &raw,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
      sqlite3_close_v2(raw);
      throw std::runtime_error("cannot open database " + path + ": " + msg);
    }
    sqlite3_busy_timeout(raw, 5000);
    auto c = std::make_unique<Conn>(raw);
    // WAL lets readers run beside the one writer. synchronous=NORMAL in WAL mode keeps every
    // committed transaction through a process crash (kill -9); only a power loss can drop the
    // last few, which docs/architecture.md states.
    for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                               "PRAGMA foreign_keys=ON", "PRAGMA temp_store=MEMORY"}) {
      if (Status s = c->Exec(pragma); !s.ok())
        throw std::runtime_error("cannot configure database " + path + ": " + s.error().message);
    }
    free_.push_back(c.get());
    all_.push_back(std::move(c));
  }
}

Db::~Db() = default;

Db::Lease::~Lease() {
  if (!c_) return;
  {
    std::lock_guard lock(db_->mu_);
    db_->free_.push_back(c_);
  }
  db_->cv_.notify_one();
}

Db::Lease Db::Acquire() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !free_.empty(); });
  Conn* c = free_.back();
  free_.pop_back();
  return Lease(this, c);
}

Status Db::Begin(Conn& c) { return c.Exec("BEGIN IMMEDIATE"); }
Status Db::Commit(Conn& c) { return c.Exec("COMMIT"); }
void Db::Rollback(Conn& c) { (void)c.Exec("ROLLBACK"); }

}  // namespace millions::sqlite
