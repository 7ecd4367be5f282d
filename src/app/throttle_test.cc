#include "app/throttle.h"

#include <gtest/gtest.h>

namespace millions::app {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

struct Fixture {
  explicit Fixture(ThrottleOptions o = {})
      : t(o, std::make_unique<cache::LocalCounters>(env, 1000), registry) {}
  // One log-in with a wrong password: 429 (the seconds) or 401 (0).
  int64_t Wrong(std::string_view handle, std::string_view source) {
    LoginCheck c = t.CheckLogin(handle, source);
    if (c.retry_after_s > 0) return c.retry_after_s;
    t.LoginFailed(handle, source, c.under_attack);
    return 0;
  }
  FakeEnv env;
  metrics::Registry registry;
  Throttle t;
};

TEST(LoginBackoff, DoublesFromTheLimitUpToTheCap) {
  ThrottleOptions o;
  EXPECT_EQ(LoginBackoff(o, 4, false), milliseconds(0));
  EXPECT_EQ(LoginBackoff(o, 5, false), seconds(60));
  EXPECT_EQ(LoginBackoff(o, 6, false), seconds(120));
  EXPECT_EQ(LoginBackoff(o, 7, false), seconds(240));
  EXPECT_EQ(LoginBackoff(o, 10, false), seconds(900));
  EXPECT_EQ(LoginBackoff(o, 1000, false), seconds(900));
  // Under attack every source gets one failure.
  EXPECT_EQ(LoginBackoff(o, 1, true), seconds(60));
}

TEST(Throttle, SixthWrongPasswordWithinAMinuteIsRefused) {
  Fixture f;
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(f.Wrong("alice", "10.0.0.1"), 0) << i;
    f.env.Advance(seconds(5));
  }
  int64_t retry = f.Wrong("alice", "10.0.0.1");
  EXPECT_GT(retry, 0);
  EXPECT_LE(retry, 60);
  // A correct password from that address is refused too (checked before the password).
  EXPECT_GT(f.t.CheckLogin("alice", "10.0.0.1").retry_after_s, 0);
  // Another address, another account: untouched.
  EXPECT_EQ(f.t.CheckLogin("alice", "10.0.0.2").retry_after_s, 0);
  EXPECT_EQ(f.t.CheckLogin("bob", "10.0.0.1").retry_after_s, 0);
}

TEST(Throttle, BackoffDoublesThenSuccessForgets) {
  Fixture f;
  for (int i = 0; i < 5; ++i) f.Wrong("alice", "a");
  EXPECT_EQ(f.t.CheckLogin("alice", "a").retry_after_s, 60);
  f.env.Advance(seconds(61));
  EXPECT_EQ(f.Wrong("alice", "a"), 0);  // allowed again, and wrong: 6th failure
  EXPECT_EQ(f.t.CheckLogin("alice", "a").retry_after_s, 120);
  f.env.Advance(seconds(121));
  f.t.LoginSucceeded("alice", "a");
  for (int i = 0; i < 4; ++i) EXPECT_EQ(f.Wrong("alice", "a"), 0);
  EXPECT_EQ(f.t.CheckLogin("alice", "a").retry_after_s, 0);
}

TEST(Throttle, FailuresAreForgottenAfterTheWindow) {
  Fixture f;
  for (int i = 0; i < 4; ++i) f.Wrong("alice", "a");
  f.env.Advance(seconds(61));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(f.Wrong("alice", "a"), 0);
  EXPECT_EQ(f.t.CheckLogin("alice", "a").retry_after_s, 0);
}

TEST(Throttle, AnAttackFromManySourcesSlowsButNeverLocksTheOwnerOut) {
  ThrottleOptions o;
  o.attack_failures = 20;
  Fixture f(o);
  for (int i = 0; i < 100; ++i) f.Wrong("alice", "bot" + std::to_string(i % 10));
  LoginCheck owner = f.t.CheckLogin("alice", "home");
  EXPECT_EQ(owner.retry_after_s, 0) << "the owner's address is not blocked";
  EXPECT_TRUE(owner.under_attack);
  // A wrong password while under attack is slowed, and one failure blocks that source.
  EXPECT_EQ(f.t.LoginFailed("alice", "bot99", true), milliseconds(1000));
  EXPECT_GT(f.t.CheckLogin("alice", "bot99").retry_after_s, 0);
  // Other accounts are not under attack.
  EXPECT_FALSE(f.t.CheckLogin("bob", "bot1").under_attack);
}

TEST(Throttle, SignUpsPerSourceAndMinute) {
  ThrottleOptions o;
  o.signup_per_minute = 3;
  Fixture f(o);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(f.t.CheckSignUp("a"), 0);
  f.env.Advance(seconds(20));
  EXPECT_EQ(f.t.CheckSignUp("a"), 40);
  EXPECT_EQ(f.t.CheckSignUp("b"), 0);
  f.env.Advance(seconds(41));
  EXPECT_EQ(f.t.CheckSignUp("a"), 0);
}

TEST(Throttle, DisabledLetsEverythingThrough) {
  ThrottleOptions o;
  o.enabled = false;
  Fixture f(o);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(f.Wrong("alice", "a"), 0);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(f.t.CheckSignUp("a"), 0);
}

TEST(ClientAddress, ForwardedOnlyFromTrustedBalancers) {
  http::Request r;
  r.remote_addr = "127.0.0.5";
  r.headers.push_back({"X-Forwarded-For", "198.51.100.7"});
  EXPECT_EQ(ClientAddress(r, {}), "127.0.0.5");
  EXPECT_EQ(ClientAddress(r, {"127.0.0.1"}), "127.0.0.5");
  EXPECT_EQ(ClientAddress(r, {"127.0.0.1", "127.0.0.5"}), "198.51.100.7");
  r.headers.back().value = "203.0.113.1, 198.51.100.8";
  EXPECT_EQ(ClientAddress(r, {"127.0.0.5"}), "198.51.100.8");
}

}  // namespace
}  // namespace millions::app
