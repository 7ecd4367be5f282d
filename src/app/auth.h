// Credentials: argon2id password hashes (libsodium), 256-bit random session tokens stored only
// as their SHA-256, and the CSRF rule for cookie-authenticated requests.
// Thread-safety: pure functions; HashPassword and VerifyPassword are deliberately slow (tens of
// milliseconds, 64 MiB) and must run on a BlockingPool. Ownership: values only.
#pragma once

#include <string>
#include <string_view>

#include "core/env.h"
#include "core/http.h"
#include "core/result.h"

namespace millions::app {

Result<std::string> HashPassword(std::string_view password);
bool VerifyPassword(std::string_view password, const std::string& hash);

// 32 random bytes, base64url without padding (43 characters).
std::string NewSessionToken(Env& env);
// Lower-case hex SHA-256: what the store keeps instead of the token.
std::string TokenHash(std::string_view token);
std::string Sha256Hex(std::string_view bytes);

// Where a request's credentials came from.
enum class AuthSource { kNone, kCookie, kBearer };
struct Credentials {
  AuthSource source = AuthSource::kNone;
  std::string token;
};
Credentials ExtractCredentials(const http::Request& req);

// State-changing requests with a session cookie must be same-origin: Origin equal to the
// request's own origin, or Sec-Fetch-Site: same-origin. A request with a mismatched Origin is
// refused whatever its credentials. Bearer requests are exempt (no ambient authority).
Status CheckCsrf(const http::Request& req, const Credentials& creds);

}  // namespace millions::app
