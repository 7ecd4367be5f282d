#include "core/pg.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/log.h"

namespace millions::pg {

Param P(int64_t v) { return {std::to_string(v)}; }
Param P(std::string_view v) { return {std::string(v)}; }
Param Bytes(std::string_view v) { return {std::string(v), false, true}; }
Param Null() { return {"", true}; }

Rows::Rows(pg_result* r) : r_(r), n_(r ? PQntuples(r) : 0) {}
Rows::~Rows() {
  if (r_) PQclear(r_);
}
int64_t Rows::Int(int row, int col) const {
  if (PQfformat(r_, col) == 1) {  // binary int8
    const char* p = PQgetvalue(r_, row, col);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return static_cast<int64_t>(v);
  }
  return std::strtoll(PQgetvalue(r_, row, col), nullptr, 10);
}
std::string Rows::Text(int row, int col) const {
  return std::string(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
}
bool Rows::IsNull(int row, int col) const { return PQgetisnull(r_, row, col) == 1; }
int64_t Rows::affected() const {
  const char* n = PQcmdTuples(r_);
  return n && *n ? std::strtoll(n, nullptr, 10) : 0;
}

bool IsUniqueViolation(const Error& e) { return e.code == "sqlstate_23505"; }

Conn::~Conn() {
  if (c_) PQfinish(c_);
}

bool Conn::healthy() const { return c_ && PQstatus(c_) == CONNECTION_OK; }

bool Conn::Alive() {
  if (!healthy()) return false;
  pollfd p{PQsocket(c_), POLLIN, 0};
  if (poll(&p, 1, 0) <= 0) return true;  // nothing to read: as idle as it should be
  PQconsumeInput(c_);                    // reads the EOF (or a notice) and updates the status
  return PQstatus(c_) == CONNECTION_OK;
}

void Conn::Reset() {
  prepared_.clear();
  PQreset(c_);
}

namespace {

Error ConnError(pg_conn* c, std::string_view what) {
  return MakeError(Errc::kUnavailable, "database_unavailable",
                   std::string(what) + ": " + (c ? PQerrorMessage(c) : "no connection"));
}

// Turns a failed result into an Error; the result is consumed.
Error ResultError(pg_conn* c, PGresult* r) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string s = state ? state : "";  // copied: PQclear frees it
  std::string msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
  if (r) PQclear(r);
  if (PQstatus(c) != CONNECTION_OK) return ConnError(c, "connection lost");
  // Class 08 (connection), 57P (shutdown), 40001/40P01 (retryable), 55P03 (lock timeout),
  // 57014 (statement timeout): a tier is unavailable, worth retrying.
  if (s.rfind("08", 0) == 0 || s.rfind("57P", 0) == 0 || s == "40001" || s == "40P01" ||
      s == "55P03" || s == "57014" || s == "25006")
    return MakeError(Errc::kUnavailable, "database_unavailable", msg);
  return MakeError(Errc::kInternal, "sqlstate_" + s, msg);
}

}  // namespace

Status Conn::Simple(const char* sql) {
  PGresult* r = PQexec(c_, sql);
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return ResultError(c_, r);
  PQclear(r);
  return Ok();
}

Result<int64_t> Conn::CopyIn(const char* sql, std::string_view data) {
  PGresult* r = PQexec(c_, sql);
  if (!r || PQresultStatus(r) != PGRES_COPY_IN) return ResultError(c_, r);
  PQclear(r);
  // Pieces of at most 1 MiB: libpq buffers what it is given whole.
  constexpr size_t kPiece = 1 << 20;
  bool sent = true;
  for (size_t at = 0; at < data.size() && sent; at += kPiece) {
    const size_t n = std::min(kPiece, data.size() - at);
    sent = PQputCopyData(c_, data.data() + at, static_cast<int>(n)) == 1;
  }
  if (PQputCopyEnd(c_, sent ? nullptr : "the client failed to send") != 1)
    return ConnError(c_, "copy");
  r = PQgetResult(c_);
  if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
    Error e = ResultError(c_, r);
    while (PGresult* more = PQgetResult(c_)) PQclear(more);
    return e;
  }
  const char* tuples = PQcmdTuples(r);
  int64_t n = tuples && *tuples ? std::strtoll(tuples, nullptr, 10) : 0;
  PQclear(r);
  while (PGresult* more = PQgetResult(c_)) PQclear(more);
  return n;
}

std::string CopyText(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
  return out;
}

Result<std::string> Conn::EncryptPassword(const std::string& user, const std::string& password) {
  char* v = PQencryptPasswordConn(c_, password.c_str(), user.c_str(), nullptr);
  if (!v) return MakeError(Errc::kInternal, "encrypt_password", PQerrorMessage(c_));
  std::string out(v);
  PQfreemem(v);
  return out;
}

std::string Conn::QuoteIdentifier(const std::string& s) {
  char* q = PQescapeIdentifier(c_, s.c_str(), s.size());
  std::string out = q ? q : "";
  PQfreemem(q);
  return out;
}

std::string Conn::QuoteLiteral(const std::string& s) {
  char* q = PQescapeLiteral(c_, s.c_str(), s.size());
  std::string out = q ? q : "";
  PQfreemem(q);
  return out;
}

Result<Rows> Conn::Run(const char* name, const char* sql, std::initializer_list<Param> params,
                       int result_format) {
  if (!prepared_.count(name)) {
    PGresult* r = PQprepare(c_, name, sql, static_cast<int>(params.size()), nullptr);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) return ResultError(c_, r);
    PQclear(r);
    prepared_.insert(name);
  }
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  for (const Param& p : params) {
    values.push_back(p.null ? nullptr : p.value.data());
    lengths.push_back(static_cast<int>(p.value.size()));
    formats.push_back(p.binary ? 1 : 0);
  }
  PGresult* r = PQexecPrepared(c_, name, static_cast<int>(values.size()), values.data(),
                               lengths.data(), formats.data(), result_format);
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return ResultError(c_, r);
  return Rows(r);
}

Result<Rows> Conn::Exec(const char* name, const char* sql, std::initializer_list<Param> params) {
  return Run(name, sql, params, 0);
}

Result<Rows> Conn::ExecBinary(const char* name, const char* sql,
                              std::initializer_list<Param> params) {
  return Run(name, sql, params, 1);
}

Pool::Pool(Options options) : opt_(std::move(options)) {}
Pool::~Pool() = default;

Pool::Lease::~Lease() {
  if (c_) p_->Release(std::move(c_));
}

void Pool::Release(std::unique_ptr<Conn> c) {
  {
    std::lock_guard lock(mu_);
    if (c->healthy()) {
      idle_.push_back(std::move(c));
    } else {
      --open_;  // dropped; a new one is made on demand
    }
  }
  cv_.notify_one();
}

namespace {
// Server notices ("relation already exists, skipping") become debug log lines: stderr carries
// JSON only.
void OnNotice(void*, const char* message) {
  std::string m(message);
  while (!m.empty() && m.back() == '\n') m.pop_back();
  log::Debug("postgres notice", {{"notice", m}});  // the request's ids when on its thread
}
}  // namespace

Result<std::unique_ptr<Conn>> Pool::Connect() {
  std::string conninfo =
      opt_.conninfo + " connect_timeout=" + std::to_string(opt_.connect_timeout_s) +
      " options='-c statement_timeout=" + std::to_string(opt_.statement_timeout_ms) + "'";
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    Error e = ConnError(c, "cannot connect to PostgreSQL");
    PQfinish(c);
    return e;
  }
  PQsetNoticeProcessor(c, OnNotice, nullptr);
  return std::make_unique<Conn>(c);
}

Result<Pool::Lease> Pool::Acquire() {
  std::unique_lock lock(mu_);
  // Wait (bounded) for an idle connection when the pool is at its size.
  if (!cv_.wait_for(lock, std::chrono::milliseconds(opt_.statement_timeout_ms),
                    [&] { return !idle_.empty() || open_ < opt_.pool_size; }))
    return MakeError(Errc::kUnavailable, "database_busy", "no free database connection");
  while (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    // A server that died (failover, restart) left its idle connections readable at EOF: they
    // are dropped here, before a statement is sent on them and fails.
    if (c->Alive()) return Lease(this, std::move(c));
    --open_;
  }
  ++open_;
  lock.unlock();
  auto c = Connect();
  if (!c.ok()) {
    std::lock_guard relock(mu_);
    --open_;
    cv_.notify_one();
    return c.error();
  }
  return Lease(this, std::move(*c));
}

}  // namespace millions::pg
