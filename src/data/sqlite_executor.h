// SqliteExecutor: where every statement of the embedded (stage 1) store runs, apart from the
// SQL (sqlite_users.cc, sqlite_photos.cc, sqlite_jobs.cc, sqlite_sessions.cc). One file, one
// copy: reads take any connection (WAL readers do not block the writer), writes run in
// BEGIN IMMEDIATE ... COMMIT; the consistency a read asks for needs no routing.
// Thread-safety: every method may be called from any thread; calls block (BlockingPool).
// Ownership: owns the sqlite::Db (its connections); facets share the executor.
#pragma once

#include <functional>
#include <string>

#include "core/result.h"
#include "core/sqlite.h"
#include "data/facet_store.h"

namespace millions::data {

class SqliteExecutor {
 public:
  // Opens `path`; throws std::runtime_error when it cannot (start-up only).
  SqliteExecutor(const std::string& path, int connections) : db_(path, connections) {}

  // fn(sqlite::Conn&) -> Result<T>, on a connection of its own.
  template <class F>
  auto Read(F&& fn) {
    auto c = db_.Acquire();
    NoteMember(kMember);
    return fn(*c);
  }
  // fn inside a write transaction, rolled back when it returns an error.
  template <class T>
  Result<T> Write(const std::function<Result<T>(sqlite::Conn&)>& fn) {
    NoteMember(kMember);
    return db_.Write<T>(fn);
  }
  // One statement whose rows do not matter, in a write transaction; `bind` sets its parameters.
  Status Run(const char* sql, const std::function<void(sqlite::Stmt&)>& bind) {
    return Write<Unit>([&](sqlite::Conn& c) -> Result<Unit> {
      sqlite::Stmt s = c.Prepare(sql);
      bind(s);
      if (Status st = s.Run(); !st.ok()) return st.error();
      return Unit{};
    });
  }

 private:
  static constexpr const char* kMember = "sqlite";  // the store's only member, in log lines
  sqlite::Db db_;
};

}  // namespace millions::data
