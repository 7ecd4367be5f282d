// The upstream client a proxying role (the balancer now, the edge next) forwards requests with:
// a keep-alive connection pool per backend (plain TCP, or TLS with the backend's certificate
// verified), one request forwarded with its body streamed in both directions, connect,
// handshake and backend timeouts, and the retry rules. Which backend to try
// (first, and after a failure) is the caller's policy: Forward takes one backend, and
// ShouldRetry says whether the caller may pick another and call Forward again.
// Beast stays out of this header (as in http.h): a body too large to hold is an
// http::BodyStream, and the connection type lives in upstream.cc.
// Thread-safety: Forward may run on many io_context threads at once, and on several contexts
// (a connection is made and reused on the context of the request that made it); the pool
// takes a lock only to take or give back a connection.
// Ownership: a connection belongs to the io_context of the request that made it, which must
// outlive the client; a streamed response body shares the pool, so it may outlive the client.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/http.h"
#include "core/result.h"

namespace boost::asio::ssl {
class context;
}

namespace millions::upstream {

struct Options {
  std::chrono::milliseconds connect_timeout{1000};
  // Bounds each wait on the backend: a write, the response header, each piece of the body.
  std::chrono::milliseconds backend_timeout{30000};
  // Response bodies up to this size are read whole; larger ones and those of unknown length
  // reach the caller as Response::body_stream, read as they arrive.
  uint64_t stream_over = 256 * 1024;
  size_t max_idle_per_backend = 256;
  // Above 1 (and with one_thread, without tls): GETs without a body are pipelined, up to this
  // many on a connection: those forwarded to one backend in the same turn of a context's
  // event loop go out in one send on one connection, and a backend that holds back its
  // answers to a batch (our HttpServer does) answers them in one send. A request never waits
  // behind one sent in an earlier turn; each answer must carry its request's X-Request-Id
  // when the request had one (upstream_pipe.cc). Other requests use a connection each.
  size_t pipeline_depth = 1;
  // Every io_context Forward runs on is run by one thread (one thread, or a context per
  // thread): backend answers are read when the poller says they came, without a failed recv
  // first (readiness.h), and a plain connection leaves Asio's reactor until it needs Asio (a
  // write that would block, an answer for Beast's parser).
  bool one_thread = false;
  // Set: every backend connection is TLS, verified with this client context (core/tls.h: the
  // CA it trusts); the backend's certificate must name the host of the address dialled. The
  // handshake is bounded by connect_timeout and made once per pooled connection.
  std::shared_ptr<boost::asio::ssl::context> tls;
};

enum class Failure {
  kNone,
  kConnect,    // the backend never saw the request: connect failed, or a write on a new connection
  kHandshake,  // TLS: the handshake failed or timed out, or the certificate did not verify
  kReset,      // a reused connection failed, or the response was cut: the backend may have seen it
  kTimeout,    // the backend did not answer within backend_timeout
};

struct Outcome {
  Failure failure = Failure::kNone;
  // The backend's answer when failure is kNone: status, its headers pre-formatted in
  // raw_headers (hop-by-hop headers and X-Request-Id dropped), and the body, whole or streamed.
  http::Response response;
  // Some of a streamed request body went out: the request cannot be sent again.
  bool body_sent = false;
  // Reading the client's body failed (too large, malformed): the client's error, not the
  // backend's; it answers the request as is.
  std::optional<Error> client_error;
  // kHandshake: why, for the caller's log line (the certificate check's reason, or the error).
  std::string detail;
};

// Methods a backend may see twice (RFC 9110 9.2.2).
bool Idempotent(std::string_view method);

// The retry rule: a request that never reached a backend (kConnect, kHandshake) may go to
// another one; an idempotent one that may have (kReset) may be sent again once, on the first
// attempt only; a streamed body that partly went out, a timeout and a client error never are.
// `attempt` counts from 0.
bool ShouldRetry(const Outcome& outcome, std::string_view method, int attempt);

// How many backends a request is tried on at most.
inline constexpr int kMaxAttempts = 3;

// Headers that describe one hop and are never passed on (RFC 9110 7.6.1), plus Content-Length,
// which the forwarding side writes itself. Inline: the fuzz targets use it without the client.
inline bool HopByHop(std::string_view name) {
  for (const char* h :
       {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "transfer-encoding", "upgrade", "content-length"})
    if (http::IEquals(name, h)) return true;
  return false;
}

class ConnectionPool;  // upstream.cc: idle connections per backend
class PipePool;        // upstream_pipe.cc: pipelined connections per backend

class Client {
 public:
  explicit Client(Options options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends `head` (the request line and header block, framing included, ending in a blank line:
  // which headers a backend sees is the caller's policy) and then req's body, whole or read
  // from req.body_stream, to the backend `address` (host:port, a literal IP) over a pooled
  // connection of `backend` (a stable name: the pool key); reads the response. A connection
  // goes back to the pool when the backend keeps it alive and the response was read to its end.
  // Never throws: failures are in the Outcome.
  boost::asio::awaitable<Outcome> Forward(const std::string& backend, std::string_view address,
                                          std::string_view head, const http::Request& req);

  // Idle connections pooled for `backend` (tests).
  size_t IdleCount(const std::string& backend) const;
  // Pipelined connections open to `backend`, busy or idle (tests).
  size_t PipelinedCount(const std::string& backend) const;

  // Since start, over every backend: GETs sent pipelined, the sends that carried them (their
  // ratio is the mean batch), and pipelined connections dropped (a cut, Connection: close, an
  // answer with another request's id, a failed connect). Zeros when pipelining is off.
  struct PipelineCounts {
    uint64_t requests = 0;
    uint64_t sends = 0;
    uint64_t dropped = 0;
  };
  PipelineCounts Pipelining() const;

 private:
  std::shared_ptr<ConnectionPool> pool_;
  std::shared_ptr<PipePool> pipes_;
  Options opt_;
};

}  // namespace millions::upstream
