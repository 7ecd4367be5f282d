// SessionStore on PostgreSQL: sessions and Idempotency-Key claims (SQL only; routing in
// pg_executor.h).
#include "core/pg.h"
#include "data/pg_facets.h"
#include "data/sql_common.h"

namespace millions::data {
namespace {

using pg::Conn;
using pg::P;

class PgSessions final : public SessionStore {
 public:
  explicit PgSessions(std::shared_ptr<PgExecutor> ex) : ex_(std::move(ex)) {}

  Status CreateSession(const SessionRow& s) override {
    return ex_->Run("create_session",
                    "INSERT INTO sessions(token_hash, user_id, expires_ms) VALUES($1,$2,$3)",
                    {P(s.token_hash), P(s.user_id), P(s.expires_ms)});
  }

  Result<SessionRow> GetSession(std::string_view token_hash, int64_t now_ms,
                                Consistency c) override {
    return ex_->Read<SessionRow>(c, [&](Conn& conn) -> Result<SessionRow> {
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
    return ex_->Run("delete_session", "DELETE FROM sessions WHERE token_hash = $1",
                    {P(token_hash)});
  }

  Result<std::optional<IdempotencyRecord>> ClaimIdempotencyKey(std::string_view scope,
                                                               std::string_view key,
                                                               std::string_view fingerprint,
                                                               int64_t now_ms,
                                                               int64_t stale_ms) override {
    using Out = std::optional<IdempotencyRecord>;
    return ex_->Write<Out>([&](Conn& c) -> Result<Out> {
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
    return ex_->Run(
        "idem_finish",
        "UPDATE idempotency_keys SET status = $3, body = $4 WHERE scope = $1 AND key = $2",
        {P(scope), P(key), P(int64_t{status}), P(body)});
  }

  Status ReleaseIdempotencyKey(std::string_view scope, std::string_view key) override {
    return ex_->Run("idem_release",
                    "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status = 0",
                    {P(scope), P(key)});
  }

 private:
  std::shared_ptr<PgExecutor> ex_;
};

}  // namespace

std::unique_ptr<SessionStore> MakePgSessionStore(std::shared_ptr<PgExecutor> executor) {
  return std::make_unique<PgSessions>(std::move(executor));
}

}  // namespace millions::data
