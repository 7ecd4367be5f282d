// Private to core: the HttpServer's state shared by its two halves: http_server.cc (the
// listener: accept, drain, idle sweep, per-route metrics) and http_server_conn.cc (one
// connection's request loop: read, parse, call the handler, write the response).
// Thread-safety: as HttpServer; a ServerConn is used on its own strand.
// Ownership: Impl owns the acceptor, timers and connections; shared with running coroutines.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "core/http_server.h"
#include "core/metrics_http.h"
#include "core/readiness.h"

namespace millions::http {

struct ServerConn : std::enable_shared_from_this<ServerConn> {
  // With a TLS context the socket goes into `tls` and `stream` stays empty.
  ServerConn(boost::asio::io_context& io, boost::asio::any_io_executor s,
             boost::asio::ip::tcp::socket sock, boost::asio::ssl::context* ctx)
      : io(io),
        strand(s),
        stream(ctx ? boost::asio::ip::tcp::socket(s) : std::move(sock)),
        deadline(s) {
    if (ctx)
      tls = std::make_unique<boost::beast::ssl_stream<boost::beast::tcp_stream>>(std::move(sock),
                                                                                 *ctx);
  }
  ~ServerConn() { CloseRaw(); }
  ServerConn(const ServerConn&) = delete;
  ServerConn& operator=(const ServerConn&) = delete;
  boost::beast::tcp_stream& tcp() { return tls ? boost::beast::get_lowest_layer(*tls) : stream; }
  // A plain connection read through the context's poller is taken out of Asio's reactor
  // (Unregister, once, in Serve): its reads and its common writes are made on the descriptor
  // directly, so Asio's epoll set would only hear of every request a second time (an event
  // to dispatch, and a kernel callback per arriving segment, for nothing). It goes back
  // (Reregister) before any Asio operation: a write that would block, a streamed answer, a
  // request body read by Beast's parser. Both on the connection's strand.
  bool Unregister() { return !tls && net::ReleaseSocket(stream.socket(), raw, protocol); }
  // On failure the descriptor is closed with the connection (readiness.h).
  void Reregister() { net::RestoreSocket(stream.socket(), raw, protocol); }
  // Shuts down (how: SHUT_WR or SHUT_RDWR) and closes the socket, whichever owns it.
  void Close(int how) {
    ready.Detach();  // its waiting read ends: the descriptor is about to go
    if (raw >= 0) {
      ::shutdown(raw, how);
      CloseRaw();
      return;
    }
    boost::system::error_code ec;
    tcp().socket().shutdown(how == SHUT_WR ? boost::asio::ip::tcp::socket::shutdown_send
                                           : boost::asio::ip::tcp::socket::shutdown_both,
                            ec);
    tcp().socket().close(ec);
  }
  void CloseRaw() {
    if (raw < 0) return;
    ready.Detach();
    ::close(raw);
    raw = -1;
  }
  int raw = -1;  // the descriptor while it is out of Asio's reactor (owned then)
  boost::asio::ip::tcp protocol = boost::asio::ip::tcp::v4();
  boost::asio::io_context& io;          // the context the connection's socket belongs to
  boost::asio::any_io_executor strand;  // a strand, or the io_context itself when it has one thread
  boost::beast::tcp_stream stream;
  std::unique_ptr<boost::beast::ssl_stream<boost::beast::tcp_stream>> tls;
  // Reading a request is timed by `deadline`, not by the stream's own expiry: an expired
  // tcp_stream closes its socket, and a slow client must still get its 408.
  boost::asio::steady_timer deadline;
  bool timed_out = false;
  std::atomic<bool> idle{true};
  // While waiting for the next request: when the idle timeout closes the connection (steady
  // clock, ms; 0 when not waiting). The sweeper reads it: a timer per request cost more.
  std::atomic<int64_t> idle_deadline_ms{0};
  // On a one-thread server with plain TCP: request reads wait for the poller's word instead
  // of trying recv first (readiness.h). Detached before the socket closes.
  net::ReadyFd ready;
  // Answers to pipelined requests held back while the next request is already buffered, so
  // that a batch of them goes out in one send (http_server_conn.cc, WriteResponse). Sent
  // with the next answer that has nothing buffered behind it, or by FlushPending, posted when
  // the first is held: it runs as soon as the connection's coroutine yields (a handler that
  // waits on a database), so a held answer never waits for a slower one behind it.
  std::string pending_out;
  bool flush_posted = false;
  bool writing = false;  // an Asio write is under way: FlushPending leaves the socket alone
};

// Sends what pending_out holds, if the connection's own writes are not under way; what the
// socket does not take stays for the next answer's write. Posted by WriteResponse.
void FlushPending(ServerConn& c);

inline int64_t SteadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct HttpServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::io_context& io, ServerOptions o, Handler h, metrics::Registry* r)
      : ioc(io),
        opt(std::move(o)),
        handler(std::move(h)),
        reg(r),
        request_metrics(*r, opt.role),
        acceptor(io),
        drain_timer(io),
        sweep_timer(io) {
    open_conns = &reg->GetGauge("millions_http_open_connections", "Open client connections.",
                                {{"role", opt.role}});
    // Requests a handler holds now (the autoscaler's load signal for web nodes).
    in_flight = &reg->GetGauge("millions_http_requests_in_flight",
                               "Requests being handled or answered now.", {{"role", opt.role}});
  }

  boost::asio::io_context& ioc;
  ServerOptions opt;
  Handler handler;
  metrics::Registry* reg;
  metrics::HttpRequestMetrics request_metrics;  // per route: requests by method and code, latency
  boost::asio::ip::tcp::acceptor acceptor;
  boost::asio::steady_timer drain_timer;
  boost::asio::steady_timer sweep_timer;  // closes connections idle past limits.idle_timeout
  metrics::Gauge* open_conns;
  metrics::Gauge* in_flight;
  std::atomic<bool> draining{false};
  std::mutex mu;
  std::unordered_map<uint64_t, std::shared_ptr<ServerConn>> conns;
  uint64_t next_id = 0;
  size_t next_context = 0;  // AcceptLoop only
  std::function<void()> drain_done;

  boost::asio::awaitable<void> AcceptLoop();
  void Sweep();
  boost::asio::awaitable<void> Session(std::shared_ptr<ServerConn> c, uint64_t id);
  template <class Stream>
  boost::asio::awaitable<void> Serve(Stream& s, std::shared_ptr<ServerConn> c);
  template <class Stream>
  boost::asio::awaitable<void> WriteResponse(Stream& s, ServerConn& c, Response& resp,
                                             const Request* req, bool keep_alive,
                                             std::string& head_buf, bool hold);
  // Answers a request that cannot be served (bad input, too large, too slow) with `status`
  // and the contract's error body; the caller then closes the connection.
  template <class Stream>
  boost::asio::awaitable<void> Refuse(Stream& s, ServerConn& c, int status, std::string_view code,
                                      std::string_view message, std::string& head_buf);
  std::unique_ptr<boost::asio::ssl::context> ssl;
  void Record(const Request& req, int status, double seconds);
  void Forget(uint64_t id);
  void CloseConn(const std::shared_ptr<ServerConn>& c);
};

}  // namespace millions::http
