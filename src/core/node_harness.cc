#include "core/node_harness.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <thread>
#include <vector>

#include "core/config.h"
#include "core/http_server.h"
#include "core/log.h"

namespace millions::node {

using boost::asio::awaitable;

void AddOpsRoutes(http::Router& r, const std::atomic<bool>& ready,
                  const metrics::Registry& registry) {
  r.Add("GET", "/livez", [](http::Request&) -> awaitable<http::Response> {
    co_return http::Json(200, "{\"ok\":true}");
  });
  r.Add("GET", "/readyz", [&ready](http::Request&) -> awaitable<http::Response> {
    if (!ready) co_return http::JsonError(503, "not_ready", "starting or draining");
    co_return http::Json(200, "{\"ready\":true}");
  });
  r.Add("GET", "/metrics", [&registry](http::Request&) -> awaitable<http::Response> {
    http::Response resp;
    resp.body = registry.Render();
    resp.set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    co_return resp;
  });
}

AdminServer::AdminServer(boost::asio::io_context& ioc, const std::string& address, std::string role,
                         http::Router& routes) {
  auto hp = config::ParseHostPort(address);
  http::ServerOptions o;
  o.host = hp.host;
  o.port = hp.port;
  o.role = std::move(role);
  server_ = std::make_unique<http::HttpServer>(
      ioc, o,
      [&routes](http::Request& req) -> awaitable<http::Response> {
        auto m = routes.Find(req.method, req.path);
        if (m.outcome != http::Router::Outcome::kMatched)
          co_return http::JsonError(404, "not_found", "no such admin route");
        req.route = std::string(m.route);
        co_return co_await (*m.handler)(req);
      },
      &registry_);
}

AdminServer::~AdminServer() = default;
void AdminServer::Start() { server_->Start(); }
void AdminServer::Drain(std::function<void()> done) { server_->Drain(std::move(done)); }

namespace {

int ConcurrencyHint(const HarnessOptions& o) {
  if (o.threads == 1 && o.unsafe_one_thread) return BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO;
  // Each context of a context-per-thread node is run by one thread, but other threads post to
  // it and register sockets with it (the acceptor): locked, with one-thread scheduling.
  return o.context_per_thread ? 1 : o.threads;
}

}  // namespace

NodeHarness::NodeHarness(HarnessOptions options) : opt_(options), ioc_(ConcurrencyHint(opt_)) {
  if (opt_.context_per_thread)
    for (int i = 1; i < opt_.threads; ++i)
      extra_.push_back(std::make_unique<boost::asio::io_context>(1));
}

std::vector<boost::asio::io_context*> NodeHarness::contexts() {
  std::vector<boost::asio::io_context*> out{&ioc_};
  for (auto& c : extra_) out.push_back(c.get());
  return out;
}

void NodeHarness::Run(std::function<void()> withdraw,
                      std::function<void(std::function<void()> done)> drain) {
  boost::asio::signal_set signals(ioc_, SIGINT, SIGTERM);
  boost::asio::steady_timer timer(ioc_);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    // Withdraw first: balancers see /readyz fail and stop sending before this node stops
    // accepting and closes its idle connections.
    log::Info("withdrawing", {{"signal", sig}, {"withdraw_ms", int64_t(opt_.withdraw.count())}});
    withdraw();
    timer.expires_after(opt_.withdraw);
    timer.async_wait([&](const boost::system::error_code&) {
      log::Info("draining");
      drain([this] {
        ioc_.stop();
        for (auto& c : extra_) c->stop();
      });
    });
  });
  std::vector<std::thread> threads;
  // The further contexts have no work of their own until a connection lands on them.
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards;
  for (auto& c : extra_) {
    guards.push_back(boost::asio::make_work_guard(*c));
    threads.emplace_back([&c] { c->run(); });
  }
  if (extra_.empty())
    for (int i = 1; i < opt_.threads; ++i) threads.emplace_back([this] { ioc_.run(); });
  ioc_.run();
  for (auto& c : extra_) c->stop();
  for (auto& t : threads) t.join();
}

}  // namespace millions::node
