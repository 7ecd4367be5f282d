// HttpServer: HTTP/1.1 on Boost.Beast coroutines. Keep-alive, pipelined requests answered in
// order, limits and timeouts from http::Limits (408/413/431/400), request ids, traceparent,
// per-route metrics, and a graceful drain.
// Thread-safety: Start/Drain from any thread; each connection runs on its own strand of the
// io_context, so handlers may run concurrently on several threads.
// Ownership: borrows the io_context and the metrics registry, which must outlive it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/http.h"
#include "core/http_limits.h"
#include "core/metrics.h"

namespace millions::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0 picks a free port
  std::string role = "web";
  Limits limits;
  // Both set: the listener speaks TLS (PEM files; TLS 1.2 and later).
  std::string tls_cert_file;
  std::string tls_key_file;
  // Request bodies above this many bytes (and chunked ones) reach the handler as
  // Request::body_stream instead of whole; 0 reads every body whole (the web tier).
  uint64_t stream_bodies_over = 0;
  // The io_context runs on one thread: connections skip their strands (a lock per handler).
  bool one_thread = false;
  // Contexts, each run by one thread (NodeHarness::contexts), over which accepted connections
  // are spread in turn; each connection then runs on its context alone, as with one_thread.
  // Empty: every connection on the server's own io_context.
  std::vector<boost::asio::io_context*> contexts;
  // Header lines written into every response ("Name: value\r\n" each), such as the web tier's
  // X-Content-Type-Options: set once here, they cost no header object per response.
  std::string extra_headers;
};

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& ioc, ServerOptions options, Handler handler,
             metrics::Registry* registry);
  ~HttpServer();
  // Binds and starts accepting. Throws std::system_error when the address is unusable.
  void Start();
  uint16_t port() const;
  // Stops accepting, closes idle connections, lets in-flight requests finish for up to
  // limits.drain_timeout, then closes the rest and calls `done` (on an io_context thread).
  void Drain(std::function<void()> done);
  bool draining() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace millions::http
