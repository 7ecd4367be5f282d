// UserStore on SQLite: users and the follow graph (SQL only; connections in sqlite_executor.h).
#include <sqlite3.h>

#include "data/sql_common.h"
#include "data/sqlite_facets.h"

namespace millions::data {
namespace {

using sqlite::Conn;
using sqlite::Stmt;

Result<UserRow> OneUser(Stmt& s) {
  auto r = s.Step();
  if (!r.ok()) return r.error();
  if (!*r) return NotFound("user");
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

class SqliteUsers final : public UserStore {
 public:
  explicit SqliteUsers(std::shared_ptr<SqliteExecutor> ex) : ex_(std::move(ex)) {}

  Result<UserRow> CreateUser(const UserRow& u) override {
    return ex_->Write<UserRow>([&](Conn& c) -> Result<UserRow> {
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
    static const std::string sql = std::string(kUserCols) + "WHERE u.id = ?";
    return ex_->Read([&](Conn& c) {
      Stmt s = c.Prepare(sql.c_str());
      s.Bind(1, id);
      return OneUser(s);
    });
  }

  Result<UserRow> GetUserByHandle(std::string_view handle, Consistency) override {
    static const std::string sql = std::string(kUserCols) + "WHERE u.handle = ?";
    return ex_->Read([&](Conn& c) {
      Stmt s = c.Prepare(sql.c_str());
      s.Bind(1, handle);
      return OneUser(s);
    });
  }

  Result<UserRow> UpdateProfile(int64_t id, const std::optional<std::string>& display_name,
                                const std::optional<std::string>& bio) override {
    Status st = ex_->Write<Unit>([&](Conn& c) -> Result<Unit> {
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
    return ex_->Write<Unit>([&](Conn& c) -> Result<Unit> {
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

  Status PutFollowEdge(int64_t follower, int64_t followee, int64_t now_ms) override {
    return ex_->Run("INSERT OR IGNORE INTO follows(follower, followee, created_ms) VALUES(?,?,?)",
                    [&](Stmt& s) { s.Bind(1, follower).Bind(2, followee).Bind(3, now_ms); });
  }

  Status Unfollow(int64_t follower, int64_t followee) override {
    return ex_->Run("DELETE FROM follows WHERE follower = ? AND followee = ?",
                    [&](Stmt& s) { s.Bind(1, follower).Bind(2, followee); });
  }

  Result<std::vector<int64_t>> FollowerIds(int64_t user_id, int limit, Consistency) override {
    return Ids("SELECT follower FROM follows WHERE followee = ? ORDER BY follower LIMIT ?", user_id,
               limit);
  }

  Result<std::vector<int64_t>> FollowingIds(int64_t user_id, int limit, Consistency) override {
    return Ids("SELECT followee FROM follows WHERE follower = ? ORDER BY followee LIMIT ?", user_id,
               limit);
  }

 private:
  Result<std::vector<int64_t>> Ids(const char* sql, int64_t user_id, int limit) {
    return ex_->Read([&](Conn& c) -> Result<std::vector<int64_t>> {
      Stmt s = c.Prepare(sql);
      s.Bind(1, user_id).Bind(2, int64_t{limit});
      std::vector<int64_t> out;
      for (;;) {
        auto row = s.Step();
        if (!row.ok()) return row.error();
        if (!*row) return out;
        out.push_back(s.Int(0));
      }
    });
  }

  std::shared_ptr<SqliteExecutor> ex_;
};

}  // namespace

std::unique_ptr<UserStore> MakeSqliteUserStore(std::shared_ptr<SqliteExecutor> executor) {
  return std::make_unique<SqliteUsers>(std::move(executor));
}

}  // namespace millions::data
