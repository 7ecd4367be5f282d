// UserStore: the store facet for users and the follow graph. Sharding routes every call by the
// user it is about (the routing key is named on each method); a follow lives with its follower.
// Errors: Result/Status; 404 not_found, 409 handle_taken, 503 when the database is unavailable.
// Thread-safety: every method may be called from any thread; calls block (run them on a
// BlockingPool). Ownership: an implementation owns or shares its connections.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "data/rows.h"

namespace millions::data {

class UserStore {
 public:
  virtual ~UserStore() = default;

  // Routed by user.id. 409 handle_taken when the handle exists.
  virtual Result<UserRow> CreateUser(const UserRow& user) = 0;
  // Routed by id.
  virtual Result<UserRow> GetUser(int64_t id, Consistency c) = 0;
  // Not routable by user: a sharded store keeps a handle -> id index.
  virtual Result<UserRow> GetUserByHandle(std::string_view handle, Consistency c) = 0;
  // Routed by id; 404 when the user does not exist. Returns the row as written.
  virtual Result<UserRow> UpdateProfile(int64_t id, const std::optional<std::string>& display_name,
                                        const std::optional<std::string>& bio) = 0;
  // Routed by follower. Both idempotent; 404 when the followee does not exist.
  virtual Status Follow(int64_t follower, int64_t followee, int64_t now_ms) = 0;
  virtual Status Unfollow(int64_t follower, int64_t followee) = 0;
  // The sharded store's copy of a follow edge on the followee's cluster (sharded_store.h): the
  // edge alone, with no check that either user lives here. Idempotent. Unfollow removes it.
  virtual Status PutFollowEdge(int64_t follower, int64_t followee, int64_t now_ms) = 0;
  // Routed by user_id. Who follows `user_id` / whom it follows: user ids, ascending, at most
  // `limit`.
  virtual Result<std::vector<int64_t>> FollowerIds(int64_t user_id, int limit, Consistency c) = 0;
  virtual Result<std::vector<int64_t>> FollowingIds(int64_t user_id, int limit, Consistency c) = 0;
};

}  // namespace millions::data
