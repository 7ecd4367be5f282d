// NodeHarness: what every server node (web, lb, and the roles to come) runs the same way: the io
// threads, SIGINT/SIGTERM handled as withdraw-then-drain, and the operations routes /livez,
// /readyz and /metrics (CONTRACT.md, "Operations").
// Thread-safety: construct and Run on one thread (Run blocks until the node has drained); io()
// is the context every listener and timer of the node runs on. AddOpsRoutes' handlers run on
// any io thread and only read the ready flag and the registry.
// Ownership: owns the io_context and its threads; borrows the ready flag, the registry and what
// the withdraw and drain callbacks touch, which must outlive Run.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/metrics.h"
#include "core/router.h"

namespace millions::http {
class HttpServer;
}

namespace millions::node {

// GET /livez: 200 while the process runs. GET /readyz: 200 while `ready`, else 503 (starting or
// draining). GET /metrics: the registry in Prometheus text.
void AddOpsRoutes(http::Router& r, const std::atomic<bool>& ready,
                  const metrics::Registry& registry);

// The admin listener of a node whose public listener is all proxying (the balancer, the edge):
// `routes` (AddOpsRoutes' and the node's own, e.g. /status) served on `address` ("host:port"),
// anything else a 404 JSON error, its request metrics in a registry of its own so that admin
// traffic never shows in the node's. Ownership: borrows `routes`, which must outlive it.
class AdminServer {
 public:
  AdminServer(boost::asio::io_context& ioc, const std::string& address, std::string role,
              http::Router& routes);
  ~AdminServer();
  void Start();
  void Drain(std::function<void()> done);

 private:
  metrics::Registry registry_;
  std::unique_ptr<http::HttpServer> server_;
};

struct HarnessOptions {
  int threads = 1;                        // io threads, Run's own included
  std::chrono::milliseconds withdraw{0};  // /readyz fails this long before the drain starts
  // With threads == 1: the io_context is built with BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO, so
  // the reactor takes no lock per operation. Only for a node whose other threads never touch
  // io() (no posts from a blocking pool); the balancer's checker has its own client.
  bool unsafe_one_thread = false;
  // With threads > 1: one io_context per thread (each run by its one thread) instead of one
  // context shared by all: a connection lives on one thread, with no strand, no lock per
  // operation and no handoff between threads (docs/performance.md). io() is the first;
  // contexts() lists them all for a server to spread its connections over.
  bool context_per_thread = false;
};

class NodeHarness {
 public:
  explicit NodeHarness(HarnessOptions options);
  NodeHarness(const NodeHarness&) = delete;
  NodeHarness& operator=(const NodeHarness&) = delete;

  boost::asio::io_context& io() { return ioc_; }
  // Every context the node runs: io() first, then one per further thread when
  // context_per_thread is set.
  std::vector<boost::asio::io_context*> contexts();

  // Runs the io threads until the node has drained. On the first SIGINT or SIGTERM `withdraw`
  // runs (the node turns /readyz 503 but still serves, so balancers stop sending to it), then
  // after options.withdraw `drain(done)` (stop accepting, finish in-flight requests); `done`
  // stops the io threads and Run returns.
  void Run(std::function<void()> withdraw, std::function<void(std::function<void()> done)> drain);

 private:
  HarnessOptions opt_;
  boost::asio::io_context ioc_;
  std::vector<std::unique_ptr<boost::asio::io_context>> extra_;
};

}  // namespace millions::node
