#include "core/secret.h"

#include <sodium.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

namespace millions::secret {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string FromEnv(const std::string& name) {
  const char* dir = std::getenv(kEnv);
  if (!dir || !*dir) return "";
  return ReadFile(std::string(dir) + "/" + name);
}

std::string Derive(const std::string& key, const std::string& purpose) {
  if (key.empty() || sodium_init() < 0) return "";
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(purpose.data()),
                                purpose.size());
  crypto_auth_hmacsha256_final(&st, mac);
  char hex[2 * sizeof mac + 1];
  sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
  return hex;
}

bool Equal(const std::string& given, const std::string& want) {
  return given.size() == want.size() && sodium_memcmp(given.data(), want.data(), want.size()) == 0;
}

}  // namespace millions::secret
