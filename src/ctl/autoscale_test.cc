// The autoscaler's rules on a fake clock: up one step per interval over a bound, down one node
// only after a cool-down below half of every bound, never past min or max, never a busy worker.
#include "ctl/autoscale.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "core/config.h"

namespace millions::ctl {
namespace {

using std::chrono::milliseconds;

AutoscaleTier WorkerCfg() {
  AutoscaleTier c;
  c.enabled = true;
  c.min = 2;
  c.max = 4;
  c.interval_ms = 1000;
  c.cooldown_ms = 5000;
  c.backlog_per_worker = 4;
  c.oldest_age_ms = 2000;
  return c;
}

AutoscaleTier WebCfg() {
  AutoscaleTier c = WorkerCfg();
  c.in_flight_per_node = 8;
  c.cpu = 0.8;
  c.p99_ms = 500;
  return c;
}

TierSample Workers(int nodes, double backlog, double oldest_ms, const char* idle = "worker2") {
  TierSample s;
  s.nodes = nodes;
  s.backlog = backlog;
  s.oldest_age_ms = oldest_ms;
  if (idle) s.idle_node = idle;
  return s;
}

TierSample Web(int nodes, double in_flight, double cpu, std::optional<double> p99) {
  TierSample s;
  s.nodes = nodes;
  s.in_flight = in_flight;
  s.cpu = cpu;
  s.p99_ms = p99;
  return s;
}

class AutoscaleTest : public ::testing::Test {
 protected:
  AutoClock::time_point now = AutoClock::time_point{} + std::chrono::hours(1);
  AutoscaleState st;
  void Advance(int ms) { now += milliseconds(ms); }
};

TEST_F(AutoscaleTest, BacklogOverItsBoundAddsOneWorkerPerInterval) {
  auto cfg = WorkerCfg();
  Decision d = Decide(Tier::kWorker, cfg, Workers(2, 40, 100), now, &st);
  EXPECT_EQ(d.target, 3);
  EXPECT_NE(d.reason.find("backlog 20/worker > 4/worker"), std::string::npos) << d.reason;
  // Still over, but within the interval: no second step.
  Advance(500);
  d = Decide(Tier::kWorker, cfg, Workers(3, 40, 100), now, &st);
  EXPECT_EQ(d.target, 3) << d.reason;
  EXPECT_NE(d.reason.find("waiting out the interval"), std::string::npos) << d.reason;
  Advance(500);
  EXPECT_EQ(Decide(Tier::kWorker, cfg, Workers(3, 40, 100), now, &st).target, 4);
  // At max: stays there, and says so.
  Advance(1000);
  d = Decide(Tier::kWorker, cfg, Workers(4, 40, 100), now, &st);
  EXPECT_EQ(d.target, 4);
  EXPECT_NE(d.reason.find("at max 4"), std::string::npos) << d.reason;
}

TEST_F(AutoscaleTest, OldJobAloneAddsAWorker) {
  Decision d = Decide(Tier::kWorker, WorkerCfg(), Workers(2, 1, 2500), now, &st);
  EXPECT_EQ(d.target, 3);
  EXPECT_NE(d.reason.find("oldest job 2500 ms > 2000 ms"), std::string::npos) << d.reason;
}

TEST_F(AutoscaleTest, ScalesDownOneIdleWorkerOnlyAfterTheCooldown) {
  auto cfg = WorkerCfg();
  ASSERT_EQ(Decide(Tier::kWorker, cfg, Workers(2, 40, 100), now, &st).target, 3);
  Advance(1000);
  // Between half the bound and the bound: neither up nor calm.
  Decision d = Decide(Tier::kWorker, cfg, Workers(3, 9, 100), now, &st);
  EXPECT_EQ(d.target, 3);
  EXPECT_EQ(d.reason, "within bounds");
  // Calm from the first of these samples: nothing until it has lasted cooldown_ms.
  for (int i = 0; i < 5; ++i) {
    Advance(1000);
    d = Decide(Tier::kWorker, cfg, Workers(3, 0, 0, "worker3"), now, &st);
    EXPECT_EQ(d.target, 3) << "at " << i << ": " << d.reason;
    EXPECT_NE(d.reason.find("cooling down"), std::string::npos) << d.reason;
  }
  Advance(1000);
  d = Decide(Tier::kWorker, cfg, Workers(3, 0, 0, "worker3"), now, &st);
  EXPECT_EQ(d.target, 2) << d.reason;
  EXPECT_EQ(d.remove, "worker3");
  // At min: never below it.
  Advance(60000);
  d = Decide(Tier::kWorker, cfg, Workers(2, 0, 0), now, &st);
  EXPECT_EQ(d.target, 2);
  EXPECT_NE(d.reason.find("at min 2"), std::string::npos) << d.reason;
}

TEST_F(AutoscaleTest, OneNodeLessPerCooldown) {
  auto cfg = WorkerCfg();
  Decide(Tier::kWorker, cfg, Workers(4, 0, 0), now, &st);
  Advance(5000);
  ASSERT_EQ(Decide(Tier::kWorker, cfg, Workers(4, 0, 0), now, &st).target, 3);
  Advance(1000);
  EXPECT_EQ(Decide(Tier::kWorker, cfg, Workers(3, 0, 0), now, &st).target, 3);
  Advance(4000);
  EXPECT_EQ(Decide(Tier::kWorker, cfg, Workers(3, 0, 0), now, &st).target, 2);
}

TEST_F(AutoscaleTest, NeverRemovesABusyWorker) {
  auto cfg = WorkerCfg();
  Decide(Tier::kWorker, cfg, Workers(3, 0, 0, nullptr), now, &st);
  Advance(10000);
  // Backlog 1 over 3 workers is calm, but the one job is running on every idle candidate:
  // none is idle, so the tier waits.
  Decision d = Decide(Tier::kWorker, cfg, Workers(3, 1, 100, nullptr), now, &st);
  EXPECT_EQ(d.target, 3);
  EXPECT_NE(d.reason.find("busy"), std::string::npos) << d.reason;
  Advance(1000);
  d = Decide(Tier::kWorker, cfg, Workers(3, 0, 0, "worker1"), now, &st);
  EXPECT_EQ(d.target, 2);
  EXPECT_EQ(d.remove, "worker1");
}

TEST_F(AutoscaleTest, ALoadSpikeRestartsTheCooldown) {
  auto cfg = WorkerCfg();
  Decide(Tier::kWorker, cfg, Workers(3, 0, 0), now, &st);
  Advance(4000);
  Decide(Tier::kWorker, cfg, Workers(3, 7, 0), now, &st);  // above half of 4/worker × 3
  Advance(1000);
  EXPECT_EQ(Decide(Tier::kWorker, cfg, Workers(3, 0, 0), now, &st).target, 3);
  Advance(4999);
  EXPECT_EQ(Decide(Tier::kWorker, cfg, Workers(3, 0, 0), now, &st).target, 3);
  Advance(1);
  EXPECT_EQ(Decide(Tier::kWorker, cfg, Workers(3, 0, 0), now, &st).target, 2);
}

TEST_F(AutoscaleTest, AnUnreadableTierNeverShrinks) {
  auto cfg = WorkerCfg();
  TierSample s;
  s.nodes = 3;
  s.idle_node = "worker3";
  for (int i = 0; i < 20; ++i) {
    Advance(1000);
    Decision d = Decide(Tier::kWorker, cfg, s, now, &st);
    EXPECT_EQ(d.target, 3) << d.reason;
  }
}

TEST_F(AutoscaleTest, OutsideMinAndMaxGoesStraightToTheBound) {
  auto cfg = WorkerCfg();
  EXPECT_EQ(Decide(Tier::kWorker, cfg, Workers(1, 0, 0), now, &st).target, 2);
  EXPECT_EQ(Decide(Tier::kWorker, cfg, Workers(6, 0, 0), now, &st).target, 4);
}

TEST_F(AutoscaleTest, WebNodesScaleOnInFlightCpuOrP99) {
  auto cfg = WebCfg();
  Decision d = Decide(Tier::kWeb, cfg, Web(2, 20, 0.1, 10), now, &st);
  EXPECT_EQ(d.target, 3);
  EXPECT_NE(d.reason.find("in flight 10/node > 8/node"), std::string::npos) << d.reason;
  AutoscaleState s2, s3;
  d = Decide(Tier::kWeb, cfg, Web(2, 0, 0.95, 10), now, &s2);
  EXPECT_EQ(d.target, 3);
  EXPECT_NE(d.reason.find("cpu 0.95"), std::string::npos) << d.reason;
  d = Decide(Tier::kWeb, cfg, Web(2, 0, 0.1, 900), now, &s3);
  EXPECT_EQ(d.target, 3);
  EXPECT_NE(d.reason.find("p99 900 ms > 500 ms"), std::string::npos) << d.reason;
}

TEST_F(AutoscaleTest, WebWithNoRequestsIsCalm) {
  auto cfg = WebCfg();
  Decide(Tier::kWeb, cfg, Web(3, 0, 0.01, std::nullopt), now, &st);
  Advance(5000);
  Decision d = Decide(Tier::kWeb, cfg, Web(3, 0, 0.01, std::nullopt), now, &st);
  EXPECT_EQ(d.target, 2) << d.reason;
  EXPECT_EQ(d.remove, "");  // any web node: the balancer drains whichever goes
}

TEST_F(AutoscaleTest, AZeroBoundIsNotLookedAt) {
  auto cfg = WebCfg();
  cfg.cpu = 0;
  EXPECT_EQ(Decide(Tier::kWeb, cfg, Web(2, 0, 5.0, 10), now, &st).target, 2);
}

TEST_F(AutoscaleTest, DecisionLogKeepsTheLastOnes) {
  DecisionLog log(3);
  for (int i = 0; i < 5; ++i) log.Add({"t", "worker", i, i + 1, "r", ""});
  auto l = log.List();
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(l.front().from, 2);
  EXPECT_EQ(l.back().from, 4);
}

std::string Write(const std::string& text) {
  std::string path = ::testing::TempDir() + "autoscale_test.toml";
  std::ofstream(path) << text;
  return path;
}

TEST(AutoscaleConfigTest, ReadsBothTablesAndRejectsUnknownKeysAndBadRanges) {
  auto t = topo::Topology::Load(
      Write("[autoscale.worker]\nenabled = true\nmin = 2\nmax = 4\ninterval_ms = 500\n"
            "cooldown_ms = 3000\nbacklog_per_worker = 3\noldest_age_ms = 1500\n"
            "[autoscale.web]\nenabled = true\nmin = 2\nmax = 3\nin_flight_per_node = 6\ncpu = 0.7\n"
            "p99_ms = 250\n"));
  AutoscaleConfig c = ReadAutoscale(t);
  EXPECT_TRUE(c.worker.enabled);
  EXPECT_EQ(c.worker.min, 2);
  EXPECT_EQ(c.worker.max, 4);
  EXPECT_EQ(c.worker.interval_ms, 500);
  EXPECT_EQ(c.worker.cooldown_ms, 3000);
  EXPECT_EQ(c.worker.backlog_per_worker, 3);
  EXPECT_EQ(c.worker.oldest_age_ms, 1500);
  EXPECT_EQ(c.web.max, 3);
  EXPECT_EQ(c.web.in_flight_per_node, 6);
  EXPECT_DOUBLE_EQ(c.web.cpu, 0.7);
  EXPECT_EQ(c.web.p99_ms, 250);
  t.Check({"*"});  // every key was read

  auto typo = topo::Topology::Load(Write("[autoscale.worker]\nbacklog_per_node = 3\n"));
  ReadAutoscale(typo);
  EXPECT_THROW(typo.Check({"*"}), config::ConfigError);
  // A web bound in the worker table is unknown there.
  auto wrong = topo::Topology::Load(Write("[autoscale.worker]\ncpu = 0.5\n"));
  ReadAutoscale(wrong);
  EXPECT_THROW(wrong.Check({"*"}), config::ConfigError);
  auto inverted = topo::Topology::Load(Write("[autoscale.web]\nmin = 3\nmax = 2\n"));
  EXPECT_THROW(ReadAutoscale(inverted), config::ConfigError);
  auto range = topo::Topology::Load(Write("[autoscale.web]\nmax = 40\n"));
  EXPECT_THROW(ReadAutoscale(range), config::ConfigError);
  // Absent: both disabled.
  auto none = topo::Topology::Load(Write("[deployment]\nname = \"x\"\n"));
  EXPECT_FALSE(ReadAutoscale(none).worker.enabled);
  EXPECT_FALSE(ReadAutoscale(none).web.enabled);
}

TEST(AutoscaleConfigTest, LocalTopologyScalesBothTiersFromTwoToFour) {
  auto t = topo::Topology::Load(MILLIONS_TOPOLOGIES "/local.toml");
  AutoscaleConfig c = ReadAutoscale(t);
  for (const AutoscaleTier* tier : {&c.worker, &c.web}) {
    EXPECT_TRUE(tier->enabled);
    EXPECT_EQ(tier->min, 2);
    EXPECT_EQ(tier->max, 4);
  }
  EXPECT_EQ(t.worker.size(), 2u);
  EXPECT_FALSE(t.nats.empty());
}

}  // namespace
}  // namespace millions::ctl
