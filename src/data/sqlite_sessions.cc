// SessionStore on SQLite: sessions and Idempotency-Key claims (SQL only; connections in
// sqlite_executor.h).
#include "data/sql_common.h"
#include "data/sqlite_facets.h"

namespace millions::data {
namespace {

using sqlite::Conn;
using sqlite::Stmt;

class SqliteSessions final : public SessionStore {
 public:
  explicit SqliteSessions(std::shared_ptr<SqliteExecutor> ex) : ex_(std::move(ex)) {}

  Status CreateSession(const SessionRow& row) override {
    return ex_->Run(
        "INSERT INTO sessions(token_hash, user_id, expires_ms) VALUES(?,?,?)",
        [&](Stmt& s) { s.Bind(1, row.token_hash).Bind(2, row.user_id).Bind(3, row.expires_ms); });
  }

  Result<SessionRow> GetSession(std::string_view token_hash, int64_t now_ms, Consistency) override {
    return ex_->Read([&](Conn& c) -> Result<SessionRow> {
      Stmt s = c.Prepare(
          "SELECT user_id, expires_ms FROM sessions WHERE token_hash = ? AND expires_ms > ?");
      s.Bind(1, token_hash).Bind(2, now_ms);
      auto r = s.Step();
      if (!r.ok()) return r.error();
      if (!*r) return NotFound("session");
      return SessionRow{std::string(token_hash), s.Int(0), s.Int(1)};
    });
  }

  Status DeleteSession(std::string_view token_hash) override {
    return ex_->Run("DELETE FROM sessions WHERE token_hash = ?",
                    [&](Stmt& s) { s.Bind(1, token_hash); });
  }

  Result<std::optional<IdempotencyRecord>> ClaimIdempotencyKey(std::string_view scope,
                                                               std::string_view key,
                                                               std::string_view fingerprint,
                                                               int64_t now_ms,
                                                               int64_t stale_ms) override {
    using Out = std::optional<IdempotencyRecord>;
    return ex_->Write<Out>([&](Conn& c) -> Result<Out> {
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
    return ex_->Run(
        "UPDATE idempotency_keys SET status = ?, body = ? WHERE scope = ? AND key = ?",
        [&](Stmt& s) { s.Bind(1, int64_t{status}).Bind(2, body).Bind(3, scope).Bind(4, key); });
  }

  Status ReleaseIdempotencyKey(std::string_view scope, std::string_view key) override {
    return ex_->Run("DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND status = 0",
                    [&](Stmt& s) { s.Bind(1, scope).Bind(2, key); });
  }

 private:
  std::shared_ptr<SqliteExecutor> ex_;
};

}  // namespace

std::unique_ptr<SessionStore> MakeSqliteSessionStore(std::shared_ptr<SqliteExecutor> executor) {
  return std::make_unique<SqliteSessions>(std::move(executor));
}

}  // namespace millions::data
