#include "core/secret.h"

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

}  // namespace millions::secret
