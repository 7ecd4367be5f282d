// The API's JSON bodies: strict parsing of what clients send (unknown fields, wrong types,
// bad lengths are 400s that name the field) and rendering of what we answer.
// These are the parsers the JSON fuzz target drives.
// Thread-safety: pure functions. Ownership: values only.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "data/store.h"
#include "media/media.h"

namespace millions::app {

inline constexpr size_t kMaxJsonBody = 64 * 1024;

struct SignUp {
  std::string handle;
  std::string password;
  std::optional<std::string> display_name;
};
struct LogIn {
  std::string handle;
  std::string password;
};
struct ProfilePatch {
  std::optional<std::string> display_name;
  std::optional<std::string> bio;
};

Result<SignUp> ParseSignUp(std::string_view body);
Result<LogIn> ParseLogIn(std::string_view body);
Result<ProfilePatch> ParseProfilePatch(std::string_view body);
// {"ops":[...]} -> ops; also returns the ops in canonical JSON for storing with the job.
Result<std::vector<media::EditOp>> ParseEditOps(std::string_view body, std::string* canonical);
// Parses ops stored by ParseEditOps (the "ops" array alone).
Result<std::vector<media::EditOp>> ParseStoredOps(std::string_view ops_json);
// "crop", "resize", "sharpen", "blur", "rotate" or "grayscale".
const char* OpName(media::EditOp::Kind kind);

bool ValidHandle(std::string_view handle);

std::string RenderUser(const data::UserRow& u);
std::string RenderPhoto(const data::PhotoRow& p);
std::string RenderJob(const data::JobRow& j);
std::string RenderPhotoPage(const std::vector<data::PhotoRow>& items, int limit);
// {"items":["id",...]} and back (ids that do not parse are skipped).
std::string RenderIdList(const std::vector<int64_t>& ids);
std::vector<int64_t> ParseIdList(std::string_view json);
std::string RenderSession(int64_t user_id, const std::string& token, int64_t expires_ms);

// "/media/KEY", or on the edge's origin ("http://host:port/media/KEY") once SetMediaOrigin
// named one: a web node of a topology with an edge calls it once at start-up, before any
// request, and never again (the rendered JSON of photos and jobs carries it).
std::string MediaUrl(const std::string& key);
void SetMediaOrigin(std::string origin);

}  // namespace millions::app
