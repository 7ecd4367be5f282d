#include "core/node_harness.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>
#include <csignal>

namespace millions::node {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

http::Response Get(const http::Router& r, const std::string& path) {
  auto m = r.Find("GET", path);
  EXPECT_EQ(m.outcome, http::Router::Outcome::kMatched) << path;
  http::Request req;
  boost::asio::io_context ioc;
  auto f = boost::asio::co_spawn(ioc, (*m.handler)(req), boost::asio::use_future);
  ioc.run();
  return f.get();
}

TEST(NodeHarness, OpsRoutesAnswerLivenessReadinessAndMetrics) {
  http::Router r;
  std::atomic<bool> ready{false};
  metrics::Registry registry;
  registry.GetCounter("millions_x_total", "x", {}).Inc();
  AddOpsRoutes(r, ready, registry);
  EXPECT_EQ(Get(r, "/livez").status, 200);
  EXPECT_EQ(Get(r, "/readyz").status, 503);
  ready = true;
  EXPECT_EQ(Get(r, "/readyz").status, 200);
  auto m = Get(r, "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("millions_x_total 1\n"), std::string::npos) << m.body;
}

// SIGTERM: the withdraw runs first, the drain only after the withdraw period, and Run returns
// once the drain says it is done.
TEST(NodeHarness, SignalWithdrawsThenDrainsThenStops) {
  NodeHarness h({.threads = 2, .withdraw = milliseconds(80)});
  std::vector<std::string> order;
  steady_clock::time_point withdrawn, drained;
  // Posted, so it is raised once Run has installed its handler.
  boost::asio::post(h.io(), [] { std::raise(SIGTERM); });
  h.Run(
      [&] {
        order.push_back("withdraw");
        withdrawn = steady_clock::now();
      },
      [&](std::function<void()> done) {
        order.push_back("drain");
        drained = steady_clock::now();
        done();
      });
  EXPECT_EQ(order, (std::vector<std::string>{"withdraw", "drain"}));
  EXPECT_GE(drained - withdrawn, milliseconds(80));
}

}  // namespace
}  // namespace millions::node
