// A thin, safe layer over libpq for the PostgreSQL implementations of the data and queue
// interfaces: a bounded pool of connections, prepared statements by name, parameters as text
// (or binary for blobs), transactions, and errors as Results.
// Calls block: they run on a BlockingPool, never on an event loop (docs/architecture.md).
// Thread-safety: Pool may be used from any thread; a Conn is used by one thread at a time
// (Pool::Acquire hands it out exclusively). Ownership: the Pool owns its connections.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

struct pg_conn;
struct pg_result;

namespace millions::pg {

struct Options {
  std::string conninfo;  // libpq keyword/value string or URI
  int pool_size = 8;
  int connect_timeout_s = 5;
  int statement_timeout_ms = 10'000;
};

struct Param {
  std::string value;
  bool null = false;
  bool binary = false;
};
Param P(int64_t v);
Param P(std::string_view v);
Param Bytes(std::string_view v);  // bytea, sent in binary
Param Null();
// `v` escaped for COPY's text format (backslash, tab, newline, carriage return).
std::string CopyText(std::string_view v);

// The rows of one result. Owns the PGresult.
class Rows {
 public:
  explicit Rows(pg_result* r);
  Rows(Rows&& o) noexcept : r_(std::exchange(o.r_, nullptr)), n_(o.n_) {}
  Rows& operator=(Rows&&) = delete;
  ~Rows();
  int size() const { return n_; }
  bool empty() const { return n_ == 0; }
  int64_t Int(int row, int col) const;
  std::string Text(int row, int col) const;
  // A bytea column selected as binary (the whole query's results are binary when asked).
  bool IsNull(int row, int col) const;
  int64_t affected() const;

 private:
  pg_result* r_;
  int n_;
};

class Conn {
 public:
  explicit Conn(pg_conn* c) : c_(c) {}
  ~Conn();
  // Runs a statement prepared once per connection under `name`. Results come back as text.
  Result<Rows> Exec(const char* name, const char* sql, std::initializer_list<Param> params);
  // Same, with results in binary (for bytea payloads); integer columns then need IntBinary.
  Result<Rows> ExecBinary(const char* name, const char* sql, std::initializer_list<Param> params);
  // Plain SQL without parameters (BEGIN, migrations).
  Status Simple(const char* sql);
  // COPY ... FROM STDIN (`sql`) with `data` in COPY's text format (rows ending in '\n', columns
  // separated by '\t', fields escaped with CopyText): the number of rows copied. For bulk loads
  // (`millions seed`), on a connection no one else uses meanwhile.
  Result<int64_t> CopyIn(const char* sql, std::string_view data);
  // The server's verifier for `password` (SCRAM-SHA-256 under password_encryption's default),
  // computed here by libpq: an ALTER ROLE ... PASSWORD with it puts no clear password on the
  // wire or in the server's logs.
  Result<std::string> EncryptPassword(const std::string& user, const std::string& password);
  // `s` quoted as an SQL identifier or literal for this connection.
  std::string QuoteIdentifier(const std::string& s);
  std::string QuoteLiteral(const std::string& s);
  bool healthy() const;
  // healthy(), and the server has not closed the connection while it sat idle.
  bool Alive();
  void Reset();

 private:
  Result<Rows> Run(const char* name, const char* sql, std::initializer_list<Param> params,
                   int result_format);
  pg_conn* c_;
  std::set<std::string> prepared_;
};

class Pool {
 public:
  // Connects lazily: a database that is down at start-up is a 503 per request, not a crash.
  explicit Pool(Options options);
  ~Pool();

  class Lease {
   public:
    Lease(Pool* p, std::unique_ptr<Conn> c) : p_(p), c_(std::move(c)) {}
    Lease(Lease&& o) noexcept = default;
    ~Lease();
    Conn* operator->() { return c_.get(); }
    Conn& operator*() { return *c_; }
    explicit operator bool() const { return c_ != nullptr; }

   private:
    Pool* p_;
    std::unique_ptr<Conn> c_;
  };
  // A healthy connection, or 503 database_unavailable when none can be made.
  Result<Lease> Acquire();

  // Runs `fn` inside BEGIN ... COMMIT; rolls back when fn returns an error.
  template <class T>
  Result<T> Tx(const std::function<Result<T>(Conn&)>& fn);

 private:
  Result<std::unique_ptr<Conn>> Connect();
  void Release(std::unique_ptr<Conn> c);
  Options opt_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> idle_;
  int open_ = 0;  // connections handed out or idle
};

// Runs `fn` on `c` inside BEGIN ... COMMIT; rolls back when fn returns an error.
template <class T>
Result<T> InTx(Conn& c, const std::function<Result<T>(Conn&)>& fn) {
  if (Status s = c.Simple("BEGIN"); !s.ok()) return s.error();
  Result<T> r = fn(c);
  if (!r.ok()) {
    (void)c.Simple("ROLLBACK");
    return r;
  }
  if (Status s = c.Simple("COMMIT"); !s.ok()) return s.error();
  return r;
}

template <class T>
Result<T> Pool::Tx(const std::function<Result<T>(Conn&)>& fn) {
  auto lease = Acquire();
  if (!lease.ok()) return lease.error();
  return InTx<T>(**lease, fn);
}

// True for a unique-constraint violation (SQLSTATE 23505).
bool IsUniqueViolation(const Error& e);

}  // namespace millions::pg
