// Env: the seam between millions and the outside world's time and randomness, as in LevelDB.
// Production code takes an Env&; tests pass a FakeEnv with a clock they move by hand.
// Thread-safety: every method may be called from any thread. Ownership: Default() is a static.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace millions {

class Env {
 public:
  virtual ~Env() = default;
  // Monotonic time for timeouts, TTLs and latencies.
  virtual std::chrono::steady_clock::time_point Now() const = 0;
  // Wall-clock milliseconds since the Unix epoch, for IDs and timestamps.
  virtual int64_t WallMillis() const = 0;
  // Fills `out` with cryptographically strong random bytes.
  virtual void RandomBytes(void* out, size_t n) = 0;
  static Env& Default();
};

// A clock that only moves when told; randomness is a counter. For unit tests.
class FakeEnv : public Env {
 public:
  std::chrono::steady_clock::time_point Now() const override { return now_; }
  int64_t WallMillis() const override { return wall_ms_; }
  void RandomBytes(void* out, size_t n) override;
  void Advance(std::chrono::milliseconds d) {
    now_ += d;
    wall_ms_ += d.count();
  }
  void SetWallMillis(int64_t ms) { wall_ms_ = ms; }

 private:
  std::chrono::steady_clock::time_point now_{};
  int64_t wall_ms_ = 1'800'000'000'000;  // 2027, after the ID epoch
  uint64_t counter_ = 0;
};

// RFC 3339 UTC with milliseconds, e.g. 2026-11-22T20:54:35.123Z.
std::string FormatRfc3339(int64_t wall_ms);

}  // namespace millions
