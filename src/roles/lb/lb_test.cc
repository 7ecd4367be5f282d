#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "roles/lb/balancer.h"
#include "roles/lb/health.h"
#include "roles/lb/proxy_internal.h"
#include "roles/lb/rate_limiter.h"
#include "roles/lb/settings.h"

namespace millions::lb {
namespace {

Pool MakePool(std::vector<int> weights) {
  Pool p;
  for (size_t i = 0; i < weights.size(); ++i)
    p.backends.push_back({"b" + std::to_string(i), "127.0.0.1:" + std::to_string(9000 + i),
                          weights[i], std::make_shared<BackendStats>()});
  return p;
}

std::map<int, int> Count(Policy& policy, const Pool& pool, int n, int exclude = -1) {
  std::map<int, int> out;
  std::mt19937_64 rng(7);
  for (int i = 0; i < n; ++i) out[policy.Pick(pool, {"", rng()}, exclude)]++;
  return out;
}

TEST(Policies, EveryNameMakesAPolicyAndUnknownNamesDoNot) {
  for (const auto& name : PolicyNames()) EXPECT_NE(MakePolicy(name), nullptr) << name;
  EXPECT_EQ(MakePolicy("random"), nullptr);
}

TEST(Policies, EveryPolicySkipsUnhealthyAndExcludedAndFailsWhenNoneIsLeft) {
  for (const auto& name : PolicyNames()) {
    auto policy = MakePolicy(name);
    Pool pool = MakePool({1, 1, 1});
    policy->Rebuild(pool);
    pool.backends[1].stats->healthy = false;
    auto counts = Count(*policy, pool, 300, /*exclude=*/0);
    EXPECT_EQ(counts.size(), 1u) << name;
    EXPECT_EQ(counts.count(2), 1u) << name;
    pool.backends[0].stats->healthy = false;
    pool.backends[2].stats->healthy = false;
    EXPECT_EQ(policy->Pick(pool, {"k", 1}, -1), -1) << name;
  }
}

TEST(Policies, RoundRobinTakesTurns) {
  auto rr = MakePolicy("round_robin");
  Pool pool = MakePool({1, 1, 1});
  int a = rr->Pick(pool, {}, -1), b = rr->Pick(pool, {}, -1), c = rr->Pick(pool, {}, -1);
  EXPECT_EQ(std::set<int>({a, b, c}).size(), 3u);
  EXPECT_EQ(rr->Pick(pool, {}, -1), a);
}

TEST(Policies, WeightedRoundRobinGivesEachItsShareInterleaved) {
  auto wrr = MakePolicy("weighted_round_robin");
  Pool pool = MakePool({5, 1, 1});
  std::vector<int> seq;
  for (int i = 0; i < 7; ++i) seq.push_back(wrr->Pick(pool, {}, -1));
  EXPECT_EQ(std::count(seq.begin(), seq.end(), 0), 5);
  EXPECT_EQ(std::count(seq.begin(), seq.end(), 1), 1);
  // Smooth: the heavy backend's turns are spread out, not five in a row.
  int run = 0, longest = 0;
  for (int x : seq) longest = std::max(longest, run = x == 0 ? run + 1 : 0);
  EXPECT_LE(longest, 2);

  auto counts = Count(*wrr, pool, 700);
  EXPECT_EQ(counts[0], 500);
  EXPECT_EQ(counts[2], 100);
}

TEST(Policies, SlowStartScalesWeight) {
  auto wrr = MakePolicy("weighted_round_robin");
  Pool pool = MakePool({1, 1});
  pool.backends[1].stats->weight_factor = 0.25;
  auto counts = Count(*wrr, pool, 1000);
  EXPECT_EQ(counts[1], 200);  // 0.25 against 1
}

TEST(Policies, LeastOutstandingPicksTheLeastBusy) {
  auto lo = MakePolicy("least_outstanding");
  Pool pool = MakePool({1, 1, 1});
  pool.backends[0].stats->outstanding = 5;
  pool.backends[1].stats->outstanding = 1;
  pool.backends[2].stats->outstanding = 3;
  for (int i = 0; i < 10; ++i) EXPECT_EQ(lo->Pick(pool, {}, -1), 1);
}

TEST(Policies, PowerOfTwoChoicesAvoidsTheBusierOfTwo) {
  auto p2c = MakePolicy("p2c");
  Pool pool = MakePool({1, 1});
  pool.backends[0].stats->outstanding = 10;
  auto counts = Count(*p2c, pool, 200);
  EXPECT_EQ(counts[1], 200);
  Pool three = MakePool({1, 1, 1});
  three.backends[0].stats->outstanding = 10;
  counts = Count(*p2c, three, 3000);
  // The busy one wins only when drawn twice, which two distinct draws never do.
  EXPECT_EQ(counts[0], 0);
  EXPECT_GT(counts[1], 1000);
  EXPECT_GT(counts[2], 1000);
}

TEST(Policies, ConsistentHashIsStableAndMovesFewKeys) {
  auto ch = MakePolicy("consistent_hash");
  Pool pool = MakePool({1, 1, 1, 1});
  ch->Rebuild(pool);
  std::map<std::string, std::string> before;
  for (int i = 0; i < 2000; ++i) {
    std::string key = "user" + std::to_string(i);
    int a = ch->Pick(pool, {key, 0}, -1);
    EXPECT_EQ(ch->Pick(pool, {key, 99}, -1), a);  // the random draw does not matter
    before[key] = pool.backends[a].name;
  }
  Pool smaller = pool;
  smaller.backends.erase(smaller.backends.begin() + 2);  // b2 leaves
  ch->Rebuild(smaller);
  int moved = 0;
  for (const auto& [key, name] : before) {
    std::string now = smaller.backends[ch->Pick(smaller, {key, 0}, -1)].name;
    if (name != "b2") {
      EXPECT_EQ(now, name) << key;  // only b2's keys move
    }
    moved += now != name;
  }
  EXPECT_GT(moved, 300);
  EXPECT_LT(moved, 700);
}

TEST(Health, FallAndRiseFromActiveChecks) {
  FakeEnv env;
  auto stats = std::make_shared<BackendStats>();
  BackendHealth h({.rise = 2, .fall = 2}, env, stats);
  EXPECT_TRUE(stats->healthy);
  h.OnCheck(false);
  EXPECT_TRUE(stats->healthy);
  h.OnCheck(false);
  EXPECT_FALSE(stats->healthy);
  h.OnCheck(true);
  EXPECT_FALSE(stats->healthy);
  h.OnCheck(true);
  EXPECT_TRUE(stats->healthy);
}

TEST(Health, OutliersAreEjectedForLongerEachTime) {
  FakeEnv env;
  auto stats = std::make_shared<BackendStats>();
  HealthOptions o;
  o.consecutive_failures = 3;
  o.base_ejection = std::chrono::milliseconds(1000);
  o.slow_start = std::chrono::milliseconds(0);
  BackendHealth h(o, env, stats);
  h.OnRequest(true);
  h.OnRequest(true);
  h.OnRequest(false);  // a success breaks the run
  h.OnRequest(true);
  h.OnRequest(true);
  EXPECT_TRUE(stats->healthy);
  h.OnRequest(true);
  EXPECT_FALSE(stats->healthy);
  env.Advance(std::chrono::milliseconds(1000));
  h.Tick();
  EXPECT_TRUE(stats->healthy);
  for (int i = 0; i < 3; ++i) h.OnRequest(true);
  EXPECT_FALSE(stats->healthy);
  env.Advance(std::chrono::milliseconds(1500));
  h.Tick();
  EXPECT_FALSE(stats->healthy);  // the second ejection lasts 2 s
  env.Advance(std::chrono::milliseconds(500));
  h.Tick();
  EXPECT_TRUE(stats->healthy);
  EXPECT_EQ(h.ejections(), 2);
}

TEST(Health, SlowStartRampsTheWeight) {
  FakeEnv env;
  auto stats = std::make_shared<BackendStats>();
  HealthOptions o;
  o.fall = 1;
  o.rise = 1;
  o.slow_start = std::chrono::milliseconds(10000);
  BackendHealth h(o, env, stats);
  EXPECT_DOUBLE_EQ(stats->weight_factor, 1.0);  // healthy from the start: no ramp
  h.OnCheck(false);
  h.OnCheck(true);
  EXPECT_DOUBLE_EQ(stats->weight_factor, 0.0);
  env.Advance(std::chrono::milliseconds(5000));
  h.Tick();
  EXPECT_DOUBLE_EQ(stats->weight_factor, 0.5);
  env.Advance(std::chrono::milliseconds(6000));
  h.Tick();
  EXPECT_DOUBLE_EQ(stats->weight_factor, 1.0);
}

TEST(RateLimiter, ABurstPerAddressThenNoMoreUntilReconfigured) {
  RateLimiter off(0, 1);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(off.Allow("10.0.0.1"));
  RateLimiter rl(0.001, 2);  // a token every 1000 s: none comes back during the test
  EXPECT_TRUE(rl.Allow("10.0.0.1"));
  EXPECT_TRUE(rl.Allow("10.0.0.1"));
  EXPECT_FALSE(rl.Allow("10.0.0.1"));
  EXPECT_TRUE(rl.Allow("10.0.0.2"));  // its own bucket
  rl.Configure(0.001, 1);             // a reload starts every bucket full again
  EXPECT_TRUE(rl.Allow("10.0.0.1"));
  EXPECT_FALSE(rl.Allow("10.0.0.1"));
}

TEST(RateLimiter, StaysBoundedUnderAnAddressSpray) {
  RateLimiter rl(0.001, 1);
  for (int i = 0; i < 100005; ++i) EXPECT_TRUE(rl.Allow(std::to_string(i)));
}

TEST(Settings, HealthOptionsComeFromTheSettings) {
  Settings s;
  s.rise = 3;
  s.fall = 4;
  s.consecutive_failures = 7;
  s.base_ejection_ms = 100;
  s.max_ejection_ms = 900;
  s.slow_start_ms = 0;
  HealthOptions h = ToHealthOptions(s);
  EXPECT_EQ(h.rise, 3);
  EXPECT_EQ(h.fall, 4);
  EXPECT_EQ(h.consecutive_failures, 7);
  EXPECT_EQ(h.base_ejection, std::chrono::milliseconds(100));
  EXPECT_EQ(h.max_ejection, std::chrono::milliseconds(900));
  EXPECT_EQ(h.slow_start, std::chrono::milliseconds(0));
}

TEST(Membership, UnderUpstreamTlsThePoolDialsTlsListenersOnly) {
  membership::Members m = {{"web1", "127.0.0.1:1", 1, "127.0.0.1:2"},
                           {"web2", "127.0.0.1:3", 1, ""}};
  auto plain = ToBackends(m, false);
  ASSERT_EQ(plain.size(), 2u);
  EXPECT_EQ(plain[0].address, "127.0.0.1:1");
  // Never a plain listener in a TLS pool: web2, which has no TLS listener, is left out.
  auto tls = ToBackends(m, true);
  ASSERT_EQ(tls.size(), 1u);
  EXPECT_EQ(tls[0].name, "web1");
  EXPECT_EQ(tls[0].address, "127.0.0.1:2");
  EXPECT_EQ(ToMembers(tls, true)[0].tls_address, "127.0.0.1:2");
}

TEST(Metrics, BackendGaugesAreCollectedFromThePool) {
  LbConfig cfg;
  cfg.settings.consecutive_failures = 2;
  for (std::string name : {"good", "bad"})
    cfg.backends.push_back({name, "127.0.0.1:1", 1, std::make_shared<BackendStats>()});
  Proxy proxy(cfg);
  auto bad = cfg.backends[1].stats;  // the pool keeps the stats it was given
  bad->health->OnRequest(true);
  bad->health->OnRequest(true);  // ejected
  std::string text = proxy.registry().Render();
  EXPECT_NE(text.find("# TYPE millions_lb_backend_up gauge"), std::string::npos) << text;
  EXPECT_NE(text.find("millions_lb_backend_up{backend=\"good\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("millions_lb_backend_up{backend=\"bad\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE millions_lb_ejections_total counter"), std::string::npos);
  EXPECT_NE(text.find("millions_lb_ejections_total{backend=\"good\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("millions_lb_ejections_total{backend=\"bad\"} 1\n"), std::string::npos);
}

}  // namespace
}  // namespace millions::lb
