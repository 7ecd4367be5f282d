// A thin, safe layer over SQLite for the embedded (stage 1) implementations of the data and
// queue interfaces: a pool of connections in WAL mode, cached prepared statements, and
// transactions that retry on SQLITE_BUSY.
// Thread-safety: Db may be used from any thread; each Conn is used by one thread at a time
// (Db::Acquire hands it out exclusively). Ownership: Db owns its connections.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace millions::sqlite {

class Stmt {
 public:
  Stmt(sqlite3_stmt* s, sqlite3* db) : s_(s), db_(db) {}
  ~Stmt();  // resets and clears bindings, so the cached statement can be reused
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, std::string_view v);  // TEXT
  Stmt& BindBlob(int i, std::string_view v);
  Stmt& BindNull(int i);
  // Steps once: true when a row is ready, false when done. A failure is an Error.
  Result<bool> Step();
  // Steps to completion.
  Status Run();
  int64_t Int(int col) const;
  std::string Text(int col) const;
  bool IsNull(int col) const;
  // SQLite's extended result code of the last failed step (for constraint checks).
  int last_code() const { return last_code_; }

 private:
  sqlite3_stmt* s_;
  sqlite3* db_;
  int last_code_ = 0;
};

class Conn {
 public:
  explicit Conn(sqlite3* db) : db_(db) {}
  ~Conn();
  // Returns a cached prepared statement; aborts the process on SQL that does not compile
  // (a programming error, caught by the first test that runs the query).
  Stmt Prepare(const char* sql);
  Status Exec(const char* sql);
  sqlite3* raw() { return db_; }

 private:
  sqlite3* db_;
  std::unordered_map<const char*, sqlite3_stmt*> cache_;
};

class Db {
 public:
  // Opens `path` with `connections` connections; throws std::runtime_error on failure.
  Db(const std::string& path, int connections);
  ~Db();

  class Lease {
   public:
    Lease(Db* db, Conn* c) : db_(db), c_(c) {}
    Lease(Lease&& o) noexcept : db_(o.db_), c_(std::exchange(o.c_, nullptr)) {}
    ~Lease();
    Conn* operator->() { return c_; }
    Conn& operator*() { return *c_; }

   private:
    Db* db_;
    Conn* c_;
  };
  Lease Acquire();

  // Runs `fn` inside BEGIN IMMEDIATE ... COMMIT; rolls back when fn returns an error.
  template <class T>
  Result<T> Write(const std::function<Result<T>(Conn&)>& fn);

 private:
  friend class Lease;
  Status Begin(Conn& c);
  Status Commit(Conn& c);
  void Rollback(Conn& c);
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> all_;
  std::vector<Conn*> free_;
};

template <class T>
Result<T> Db::Write(const std::function<Result<T>(Conn&)>& fn) {
  Lease c = Acquire();
  if (Status s = Begin(*c); !s.ok()) return s.error();
  Result<T> r = fn(*c);
  if (!r.ok()) {
    Rollback(*c);
    return r;
  }
  if (Status s = Commit(*c); !s.ok()) {
    Rollback(*c);
    return s.error();
  }
  return r;
}

// Error for a failed SQLite call: 503 when the database is busy or locked, else 500.
Error DbError(sqlite3* db, int rc, std::string_view what);

}  // namespace millions::sqlite
