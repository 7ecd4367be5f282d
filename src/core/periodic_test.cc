// Periodic: calls repeat at the interval, the first at once or after one interval, and Stop
// returns without waiting out a long interval.
#include "core/periodic.h"

#include <gtest/gtest.h>

#include <atomic>

namespace millions::node {
namespace {

using namespace std::chrono_literals;

TEST(Periodic, CallsRepeatUntilStopped) {
  std::atomic<int> calls{0};
  Periodic p(5ms, [&] { ++calls; });
  for (int i = 0; i < 400 && calls < 3; ++i) std::this_thread::sleep_for(5ms);
  p.Stop();
  int seen = calls;
  EXPECT_GE(seen, 3);
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(calls, seen) << "no call after Stop";
}

TEST(Periodic, FirstCallAtOnceOrAfterTheInterval) {
  std::atomic<int> now{0}, later{0};
  Periodic a(1h, [&] { ++now; });
  Periodic b(
      1h, [&] { ++later; }, Periodic::First::kAfterInterval);
  for (int i = 0; i < 400 && now == 0; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(now, 1);
  EXPECT_EQ(later, 0);
}

TEST(Periodic, StopDoesNotWaitOutTheInterval) {
  std::atomic<int> calls{0};
  auto t0 = std::chrono::steady_clock::now();
  {
    Periodic p(1h, [&] { ++calls; });
    for (int i = 0; i < 400 && calls == 0; ++i) std::this_thread::sleep_for(5ms);
  }  // the destructor stops it
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace millions::node
