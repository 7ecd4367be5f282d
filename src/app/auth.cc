#include "app/auth.h"

#include <sodium.h>

namespace millions::app {

Result<std::string> HashPassword(std::string_view password) {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(),
                            crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return MakeError(Errc::kUnavailable, "out_of_memory", "could not hash the password now");
  }
  return std::string(out);
}

bool VerifyPassword(std::string_view password, const std::string& hash) {
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

std::string NewSessionToken(Env& env) {
  unsigned char raw[32];
  env.RandomBytes(raw, sizeof raw);
  char out[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  sodium_bin2base64(out, sizeof out, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return out;
}

std::string Sha256Hex(std::string_view bytes) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  char hex[crypto_hash_sha256_BYTES * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return hex;
}

std::string TokenHash(std::string_view token) { return Sha256Hex(token); }

Credentials ExtractCredentials(const http::Request& req) {
  if (auto auth = req.header("authorization")) {
    constexpr std::string_view kBearer = "Bearer ";
    if (auth->size() > kBearer.size() && http::IEquals(auth->substr(0, kBearer.size()), kBearer))
      return {AuthSource::kBearer, std::string(auth->substr(kBearer.size()))};
  }
  if (auto sid = req.cookie("sid"); sid && !sid->empty()) return {AuthSource::kCookie, *sid};
  return {};
}

Status CheckCsrf(const http::Request& req, const Credentials& creds) {
  const std::string& m = req.method;
  if (m == "GET" || m == "HEAD" || m == "OPTIONS") return Ok();
  auto origin = req.header("origin");
  auto host = req.header("host");
  bool same_origin = false;
  if (origin && host) {
    // The scheme is not checked: behind a TLS-terminating balancer the node sees plain HTTP.
    std::string_view o = *origin;
    size_t sep = o.find("://");
    same_origin = sep != std::string_view::npos && o.substr(sep + 3) == *host;
  }
  if (origin && !same_origin && *origin != "null")
    return MakeError(Errc::kForbidden, "csrf_failed", "cross-origin request refused");
  if (creds.source != AuthSource::kCookie) return Ok();
  auto fetch_site = req.header("sec-fetch-site");
  if (same_origin || (fetch_site && *fetch_site == "same-origin")) return Ok();
  return MakeError(Errc::kForbidden, "csrf_failed",
                   "cookie-authenticated requests need a same-origin Origin header");
}

}  // namespace millions::app
