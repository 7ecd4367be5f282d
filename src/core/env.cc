#include "core/env.h"

#include <sodium.h>

#include <cstring>
#include <ctime>
#include <stdexcept>

namespace millions {
namespace {

class RealEnv : public Env {
 public:
  RealEnv() {
    if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  }
  std::chrono::steady_clock::time_point Now() const override {
    return std::chrono::steady_clock::now();
  }
  int64_t WallMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  void RandomBytes(void* out, size_t n) override { randombytes_buf(out, n); }
};

}  // namespace

Env& Env::Default() {
  static RealEnv env;
  return env;
}

void FakeEnv::RandomBytes(void* out, size_t n) {
  auto* p = static_cast<unsigned char*>(out);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<unsigned char>(counter_++ * 131 + 7);
}

std::string FormatRfc3339(int64_t wall_ms) {
  time_t secs = static_cast<time_t>(wall_ms / 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[40];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(wall_ms % 1000));
  return buf;
}

}  // namespace millions
