// What the SQL of both dialects shares: the not-found error and the statement fragments that
// read the same in SQLite and PostgreSQL. Internal to src/data.
// Thread-safety: constants and pure functions. Ownership: none.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace millions::data {

inline Error NotFound(std::string_view what) {
  return MakeError(Errc::kNotFound, "not_found", std::string(what) + " not found");
}

// A user with its follower, following and photo counts; append the WHERE clause.
inline constexpr const char* kUserCols =
    "SELECT u.id, u.handle, u.display_name, u.bio, u.password_hash, u.created_ms,"
    " (SELECT COUNT(*) FROM follows WHERE followee = u.id),"
    " (SELECT COUNT(*) FROM follows WHERE follower = u.id),"
    " (SELECT COUNT(*) FROM photos WHERE owner_id = u.id) FROM users u ";

}  // namespace millions::data
