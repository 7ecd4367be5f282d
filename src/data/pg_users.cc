// UserStore on PostgreSQL: users and the follow graph (SQL only; routing in pg_executor.h).
#include "core/pg.h"
#include "data/pg_facets.h"
#include "data/sql_common.h"

namespace millions::data {
namespace {

using pg::Conn;
using pg::P;
using pg::Rows;

UserRow ReadUser(const Rows& r, int i) {
  return UserRow{r.Int(i, 0), r.Text(i, 1), r.Text(i, 2), r.Text(i, 3), r.Text(i, 4),
                 r.Int(i, 5), r.Int(i, 6),  r.Int(i, 7),  r.Int(i, 8)};
}

class PgUsers final : public UserStore {
 public:
  explicit PgUsers(std::shared_ptr<PgExecutor> ex) : ex_(std::move(ex)) {}

  Result<UserRow> CreateUser(const UserRow& u) override {
    return ex_->WriteFor<UserRow>(u.id, [&](Conn& c) -> Result<UserRow> {
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
    static const std::string sql = std::string(kUserCols) + "WHERE u.id = $1";
    return ex_->ReadFor<UserRow>(id, c,
                                 [&](Conn& conn) { return One(conn, "user_by_id", sql, P(id)); });
  }

  Result<UserRow> GetUserByHandle(std::string_view handle, Consistency c) override {
    static const std::string sql = std::string(kUserCols) + "WHERE u.handle = $1";
    return ex_->Read<UserRow>(
        c, [&](Conn& conn) { return One(conn, "user_by_handle", sql, P(handle)); });
  }

  Result<UserRow> UpdateProfile(int64_t id, const std::optional<std::string>& display_name,
                                const std::optional<std::string>& bio) override {
    Status st = ex_->WriteFor<Unit>(id, [&](Conn& c) -> Result<Unit> {
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
    Result<bool> inserted = ex_->WriteFor<bool>(follower, [&](Conn& c) -> Result<bool> {
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

  Status PutFollowEdge(int64_t follower, int64_t followee, int64_t now_ms) override {
    return ex_->RunFor(followee, "put_follow_edge",
                       "INSERT INTO follows(follower, followee, created_ms) VALUES($1,$2,$3)"
                       " ON CONFLICT DO NOTHING",
                       {P(follower), P(followee), P(now_ms)});
  }

  Status Unfollow(int64_t follower, int64_t followee) override {
    return ex_->RunFor(follower, "unfollow",
                       "DELETE FROM follows WHERE follower = $1 AND followee = $2",
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

 private:
  static Result<UserRow> One(Conn& conn, const char* name, const std::string& sql, pg::Param key) {
    auto r = conn.Exec(name, sql.c_str(), {key});
    if (!r.ok()) return r.error();
    if (r->empty()) return NotFound("user");
    return ReadUser(*r, 0);
  }

  Result<std::vector<int64_t>> Ids(Consistency c, int64_t user_id, const char* name,
                                   const char* sql, int limit) {
    return ex_->ReadFor<std::vector<int64_t>>(
        user_id, c, [&](Conn& conn) -> Result<std::vector<int64_t>> {
          auto r = conn.Exec(name, sql, {P(user_id), P(int64_t{limit})});
          if (!r.ok()) return r.error();
          std::vector<int64_t> out;
          for (int i = 0; i < r->size(); ++i) out.push_back(r->Int(i, 0));
          return out;
        });
  }

  std::shared_ptr<PgExecutor> ex_;
};

}  // namespace

std::unique_ptr<UserStore> MakePgUserStore(std::shared_ptr<PgExecutor> executor) {
  return std::make_unique<PgUsers>(std::move(executor));
}

}  // namespace millions::data
