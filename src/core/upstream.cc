#include "core/upstream.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/config.h"
#include "core/http_convert.h"
#include "core/http_head.h"
#include "core/readiness.h"
#include "core/tls.h"
#include "core/upstream_internal.h"

namespace millions::upstream {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::awaitable;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;

bool Idempotent(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "PUT" || m == "DELETE";
}

bool ShouldRetry(const Outcome& out, std::string_view method, int attempt) {
  // A streamed body cannot be sent twice once any of it went out.
  if (out.client_error || out.body_sent) return false;
  return out.failure == Failure::kConnect || out.failure == Failure::kHandshake ||
         (out.failure == Failure::kReset && Idempotent(method) && attempt == 0);
}

void FillFromView(const http::ResponseHeadView& v, http::Response& r) {
  r.status = v.status;
  size_t need = 0;
  for (size_t i = 0; i < v.count; ++i)
    need += v.fields[i].name.size() + v.fields[i].value.size() + 4;
  r.raw_headers.reserve(need);
  for (size_t i = 0; i < v.count; ++i) {
    std::string_view name = v.fields[i].name;
    if (HopByHop(name) || http::IEquals(name, "x-request-id")) continue;
    r.raw_headers.append(name).append(": ").append(v.fields[i].value).append("\r\n");
  }
}

void FillFromFields(const bhttp::fields& fields, http::Response& r) {
  // Passed through as one pre-formatted block: a string per header was an allocation each.
  r.raw_headers.reserve(512);
  for (const auto& f : fields) {
    // The server writes X-Request-Id itself (the id the backend echoes).
    if (HopByHop(f.name_string()) || http::IEquals(f.name_string(), "x-request-id")) continue;
    r.raw_headers.append(f.name_string()).append(": ").append(f.value()).append("\r\n");
  }
}

std::string_view RequestIdOf(const http::ResponseHeadView& v) {
  if (!v.request_id) return {};
  for (size_t i = 0; i < v.count; ++i)
    if (http::IEquals(v.fields[i].name, "x-request-id")) return v.fields[i].value;
  return {};
}

// Over TLS anything readable on an idle connection means the peer closed it: a server sends
// nothing unasked but its close_notify.
bool PeerClosed(int fd, bool tls) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  if (tls) return true;
  char c;
  return recv(p.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
}

namespace {

// What a failed read of the backend's answer means: past the backend timeout (the stream's
// expiry, or the poller's deadline), or a cut connection.
Failure ReadFailure(const beast::error_code& ec) {
  return ec == beast::error::timeout || ec == asio::error::timed_out ? Failure::kTimeout
                                                                     : Failure::kReset;
}

}  // namespace

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// A pooled connection to a backend, with its read buffer (kept: no allocation per request).
// With a TLS context the connected socket goes into `tls` (its session kept for the
// connection's life) and `stream` stays empty, as in the server's ServerConn.
// A plain connection read through the context's poller (readiness.h) is taken out of Asio's
// reactor (Unregister): its reads and its common writes are made on the descriptor directly,
// so Asio's epoll set would only hear of every answer a second time (an event, and a callback
// in the kernel per arriving segment, for nothing). It goes back to Asio (Reregister) the
// first time an operation needs Asio: a write that would block, a response for Beast's parser.
struct PooledConn {
  PooledConn(asio::io_context& ioc, asio::ip::tcp::socket sock, asio::ssl::context* tls_ctx)
      : ctx(&ioc), stream(tls_ctx ? asio::ip::tcp::socket(ioc) : std::move(sock)) {
    if (tls_ctx) tls = std::make_unique<TlsStream>(std::move(sock), *tls_ctx);
  }
  ~PooledConn() {
    if (raw < 0) return;
    ready.Detach();  // before the descriptor goes
    ::close(raw);
  }
  PooledConn(const PooledConn&) = delete;
  PooledConn& operator=(const PooledConn&) = delete;
  beast::tcp_stream& tcp() { return tls ? beast::get_lowest_layer(*tls) : stream; }
  int fd() { return raw >= 0 ? raw : tcp().socket().native_handle(); }
  // Out of Asio's reactor (one epoll_ctl, once per connection); false if it stays there.
  bool Unregister() { return !tls && net::ReleaseSocket(stream.socket(), raw, protocol); }
  // Back into Asio's reactor before an Asio operation; on failure the descriptor is closed with
  // the connection (readiness.h).
  void Reregister() { net::RestoreSocket(stream.socket(), raw, protocol); }
  asio::io_context* ctx;  // a connection is used only on its own context
  beast::tcp_stream stream;
  std::unique_ptr<TlsStream> tls;
  beast::flat_buffer buf;
  Clock::time_point idle_since;
  int raw = -1;  // the descriptor while it is out of Asio's reactor (owned then)
  asio::ip::tcp protocol = asio::ip::tcp::v4();
  net::ReadyFd ready;  // after the streams: detached before the socket closes
};

namespace {

// The connection's I/O, on its TLS stream when it has one, else on the TCP stream. None is a
// coroutine: each returns the operation's awaitable, so no frame is added. Timed by the TCP
// stream's expiry (set per request), or, for ReadSome on a connection attached to the poller,
// by `deadline`.
awaitable<size_t> ReadSome(PooledConn& up, asio::mutable_buffer b, beast::error_code& ec,
                           Clock::time_point deadline) {
  if (up.ready.attached()) return up.ready.Read(b, ec, deadline);
  up.Reregister();
  if (up.tls) return up.tls->async_read_some(b, asio::redirect_error(use_awaitable, ec));
  return up.stream.async_read_some(b, asio::redirect_error(use_awaitable, ec));
}

template <class Buffers>
awaitable<size_t> Write(PooledConn& up, const Buffers& b, beast::error_code& ec) {
  up.Reregister();
  if (up.tls) return asio::async_write(*up.tls, b, asio::redirect_error(use_awaitable, ec));
  return asio::async_write(up.stream, b, asio::redirect_error(use_awaitable, ec));
}

template <class Parser>
awaitable<size_t> ReadHeader(PooledConn& up, Parser& p, beast::error_code& ec) {
  up.Reregister();
  if (up.tls)
    return bhttp::async_read_header(*up.tls, up.buf, p, asio::redirect_error(use_awaitable, ec));
  return bhttp::async_read_header(up.stream, up.buf, p, asio::redirect_error(use_awaitable, ec));
}

template <class Parser>
awaitable<size_t> ReadMessage(PooledConn& up, Parser& p, beast::error_code& ec) {
  up.Reregister();
  if (up.tls) return bhttp::async_read(*up.tls, up.buf, p, asio::redirect_error(use_awaitable, ec));
  return bhttp::async_read(up.stream, up.buf, p, asio::redirect_error(use_awaitable, ec));
}

}  // namespace

class ConnectionPool {
 public:
  explicit ConnectionPool(Options o) : opt(o) {}
  std::unique_ptr<PooledConn> TakeIdle(const std::string& name, asio::io_context* ctx);
  void GiveBack(const std::string& name, std::unique_ptr<PooledConn> c);

  const Options opt;
  mutable std::mutex mu;
  // Per context (a node may run one per thread), per backend.
  std::unordered_map<asio::io_context*,
                     std::unordered_map<std::string, std::vector<std::unique_ptr<PooledConn>>>>
      idle;
};

std::unique_ptr<PooledConn> ConnectionPool::TakeIdle(const std::string& name,
                                                     asio::io_context* ctx) {
  auto now = Clock::now();
  std::lock_guard lock(mu);
  auto& v = idle[ctx][name];
  while (!v.empty()) {
    auto u = std::move(v.back());
    v.pop_back();
    // A backend closes a keep-alive connection after its idle timeout (seconds), so one used
    // moments ago is good without asking the kernel: that check was a syscall per request.
    if (now - u->idle_since < std::chrono::milliseconds(50) ||
        !PeerClosed(u->fd(), u->tls != nullptr))
      return u;
  }
  return nullptr;
}

void ConnectionPool::GiveBack(const std::string& name, std::unique_ptr<PooledConn> u) {
  u->idle_since = Clock::now();
  std::lock_guard lock(mu);
  auto& v = idle[u->ctx][name];
  if (v.size() < opt.max_idle_per_backend) v.push_back(std::move(u));
}

namespace {

// A response body streamed from a backend to the client. It owns the backend connection until
// the body ends, then gives it back to the pool (when the backend keeps it alive).
class UpstreamBody final : public http::BodyStream {
 public:
  UpstreamBody(std::shared_ptr<ConnectionPool> pool, std::string backend,
               std::unique_ptr<PooledConn> up, bhttp::response_parser<bhttp::string_body>&& p)
      : pool_(std::move(pool)),
        backend_(std::move(backend)),
        up_(std::move(up)),
        parser_(std::move(p)) {
    parser_.body_limit(std::numeric_limits<uint64_t>::max());
  }

  awaitable<Status> Read(std::string& piece) override {
    piece.clear();
    if (!up_) co_return MakeError(Errc::kUnavailable, "backend_failed", "backend body ended");
    while (!parser_.is_done()) {
      piece.resize(64 * 1024);
      parser_.get().body().data = piece.data();
      parser_.get().body().size = piece.size();
      up_->tcp().expires_after(pool_->opt.backend_timeout);
      beast::error_code ec;
      co_await ReadMessage(*up_, parser_, ec);
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) {
        up_.reset();
        piece.clear();
        co_return MakeError(Errc::kUnavailable, "backend_failed", ec.message());
      }
      piece.resize(piece.size() - parser_.get().body().size);
      if (!piece.empty()) co_return Ok();
    }
    piece.clear();
    if (parser_.keep_alive() && up_->buf.size() == 0) pool_->GiveBack(backend_, std::move(up_));
    up_.reset();
    co_return Ok();
  }

 private:
  std::shared_ptr<ConnectionPool> pool_;
  std::string backend_;
  std::unique_ptr<PooledConn> up_;
  bhttp::response_parser<bhttp::buffer_body> parser_;
};

// Sends req's streamed body, chunked when its length is unknown. A failure of the client's side
// is recorded in `out.client_error` (its error is the answer) and ends the send.
awaitable<beast::error_code> SendBody(PooledConn& up, const http::Request& req, Outcome& out,
                                      std::chrono::milliseconds timeout) {
  beast::error_code ec;
  std::string piece;
  const bool chunked = !req.body_length;
  for (;;) {
    Status st = co_await req.body_stream->Read(piece);
    if (!st.ok()) {
      out.client_error = st.error();
      co_return make_error_code(beast::errc::io_error);
    }
    out.body_sent = true;
    up.tcp().expires_after(timeout);
    if (piece.empty()) {
      if (chunked) co_await Write(up, asio::buffer("0\r\n\r\n", 5), ec);
      co_return ec;
    }
    if (chunked) {
      char size[24];
      int n = std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
      if (up.tls) {
        // Over TLS one buffer at a time (as the server writes: a gather write past 16 KiB
        // through Beast's ssl_stream stalled).
        co_await Write(up, asio::buffer(size, static_cast<size_t>(n)), ec);
        if (!ec) co_await Write(up, asio::buffer(piece), ec);
        if (!ec) co_await Write(up, asio::buffer("\r\n", 2), ec);
      } else {
        std::array<asio::const_buffer, 3> bufs{asio::buffer(size, static_cast<size_t>(n)),
                                               asio::buffer(piece), asio::buffer("\r\n", 2)};
        co_await Write(up, bufs, ec);
      }
    } else {
      co_await Write(up, asio::buffer(piece), ec);
    }
    if (ec) co_return ec;
  }
}

}  // namespace

Client::Client(Options options)
    : pool_(std::make_shared<ConnectionPool>(options)),
      pipes_(options.pipeline_depth > 1 && options.one_thread && !options.tls
                 ? MakePipePool(options)
                 : nullptr),
      opt_(options) {}

Client::~Client() = default;

size_t Client::PipelinedCount(const std::string& backend) const {
  return pipes_ ? PipeCount(*pipes_, backend) : 0;
}

Client::PipelineCounts Client::Pipelining() const {
  return pipes_ ? PipeCounts(*pipes_) : PipelineCounts{};
}

size_t Client::IdleCount(const std::string& backend) const {
  std::lock_guard lock(pool_->mu);
  size_t n = 0;
  for (const auto& [ctx, backends] : pool_->idle) {
    auto it = backends.find(backend);
    if (it != backends.end()) n += it->second.size();
  }
  return n;
}

// GCC 12 pairs Asio's frame allocator (aligned_new, inlined) with the frame's own operator
// delete and warns that they mismatch; they are the pair Asio defines for each other.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
awaitable<Outcome> Client::Forward(const std::string& backend, std::string_view address,
                                   std::string_view head, const http::Request& req) {
  Outcome out;
  // The context this request runs on (one of several when the node runs one per thread): its
  // backend connections are made and pooled there.
  auto ex = co_await asio::this_coro::executor;
  auto& ctx = static_cast<asio::io_context&>(asio::query(ex, asio::execution::context));
  if (pipes_ && req.method == "GET" && !req.body_stream && req.body.empty())
    co_return co_await ForwardPipelined(pipes_, backend, address, head, req, ctx);
  auto up = pool_->TakeIdle(backend, &ctx);
  bool reused = up != nullptr;
  beast::error_code ec;
  if (!up) {
    auto hp = config::ParseHostPort(std::string(address));
    beast::tcp_stream conn(ctx);
    conn.expires_after(opt_.connect_timeout);
    asio::ip::tcp::endpoint ep(asio::ip::make_address(hp.host, ec), static_cast<uint16_t>(hp.port));
    if (!ec) co_await conn.async_connect(ep, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      out.failure = Failure::kConnect;
      co_return out;
    }
    conn.socket().set_option(asio::ip::tcp::no_delay(true), ec);
    up = std::make_unique<PooledConn>(ctx, conn.release_socket(), opt_.tls.get());
    if (up->tls) {
      // Once per connection: it is pooled with its session. Bounded as the connect is; a
      // handshake that fails (a certificate that does not verify or name this host included)
      // is the backend's failure, and the request never reached it.
      if (!tls::Expect(up->tls->native_handle(), hp.host)) {
        out.failure = Failure::kHandshake;
        out.detail = "cannot expect the host " + hp.host;
        co_return out;
      }
      up->tcp().expires_after(opt_.connect_timeout);
      co_await up->tls->async_handshake(asio::ssl::stream_base::client,
                                        asio::redirect_error(use_awaitable, ec));
      if (ec) {
        out.failure = Failure::kHandshake;
        out.detail = tls::HandshakeError(up->tls->native_handle(),
                                         ec == beast::error::timeout ? "timeout" : ec.message());
        co_return out;
      }
    } else if (opt_.one_thread) {
      up->stream.socket().non_blocking(true, ec);
      if (!ec && up->ready.Attach(ctx, up->stream.socket().native_handle())) up->Unregister();
      ec = {};
    }
  }
  // The request as one gather write: the caller's header block, then the client's body
  // untouched.
  up->tcp().expires_after(opt_.backend_timeout);
  if (req.body_stream) {
    co_await Write(*up, asio::buffer(head.data(), head.size()), ec);
    if (!ec) ec = co_await SendBody(*up, req, out, opt_.backend_timeout);
  } else if (up->tls) {
    std::array<asio::const_buffer, 2> bufs{asio::buffer(head.data(), head.size()),
                                           asio::buffer(req.body)};
    if (head.size() + req.body.size() <= 16 * 1024) {
      co_await Write(*up, bufs, ec);  // one record
    } else {
      // One buffer at a time: see SendBody.
      co_await Write(*up, bufs[0], ec);
      if (!ec) co_await Write(*up, bufs[1], ec);
    }
  } else {
    std::array<asio::const_buffer, 2> bufs{asio::buffer(head.data(), head.size()),
                                           asio::buffer(req.body)};
    // Offered to the socket directly first: a small request goes out without an event-loop
    // round trip; the rest (if any) asynchronously.
    size_t n = 0;
    if (up->raw >= 0) {
      n = net::SendNow(up->raw, bufs, ec);
    } else {
      auto& sock = up->stream.socket();
      if (!sock.non_blocking()) sock.non_blocking(true, ec);
      n = sock.write_some(bufs, ec);
    }
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec = {};
      n = 0;
    }
    if (!ec && n < head.size() + req.body.size()) {
      beast::buffers_suffix<std::array<asio::const_buffer, 2>> rest(bufs);
      rest.consume(n);
      co_await Write(*up, rest, ec);
    }
  }
  if (ec) {
    // A write that fails on a fresh connection never reached the backend either.
    out.failure = reused ? Failure::kReset : Failure::kConnect;
    co_return out;
  }
  // The common response (Content-Length framed, plain fields, small) is read without Beast's
  // parser: its header block is gathered in the connection's buffer and read in place
  // (http_head.h); anything else goes to the full parser over the same buffered bytes.
  if (req.method != "HEAD") {
    const auto deadline = Clock::now() + opt_.backend_timeout;
    size_t end;
    while ((end = http::HeaderEnd(std::string_view(static_cast<const char*>(up->buf.data().data()),
                                                   up->buf.size()))) == std::string_view::npos &&
           up->buf.size() < kFastHeadBytes) {
      size_t n = co_await ReadSome(*up, up->buf.prepare(16 * 1024), ec, deadline);
      if (ec) {
        out.failure = ReadFailure(ec);
        co_return out;
      }
      up->buf.commit(n);
    }
    http::ResponseHeadView& v = FastView();
    std::string_view block;
    if (end != std::string_view::npos)
      block = std::string_view(static_cast<const char*>(up->buf.data().data()), end);
    if (!block.empty() && http::ParseResponseHead(block, v) == http::FastHead::kOk &&
        v.content_length <= opt_.stream_over) {
      FillFromView(v, out.response);
      const bool close = v.close;
      const size_t length = static_cast<size_t>(v.content_length);
      up->buf.consume(end);  // `v` is not used past here
      while (up->buf.size() < length) {
        size_t n = co_await ReadSome(*up, up->buf.prepare(length - up->buf.size()), ec, deadline);
        if (ec) {
          out.failure = ReadFailure(ec);
          co_return out;
        }
        up->buf.commit(n);
      }
      out.response.body.assign(static_cast<const char*>(up->buf.data().data()), length);
      up->buf.consume(length);
      if (!close && up->buf.size() == 0) pool_->GiveBack(backend, std::move(up));
      co_return out;
    }
  }
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(boost::none);  // only bodies up to stream_over are read whole, below
  if (req.method == "HEAD") parser.skip(true);
  co_await ReadHeader(*up, parser, ec);
  if (ec) {
    out.failure = ReadFailure(ec);
    co_return out;
  }
  const auto& res = parser.get();
  out.response.status = static_cast<int>(res.result_int());
  FillFromFields(res, out.response);
  auto length = parser.content_length();
  if (!parser.is_done() && (!length || *length > opt_.stream_over)) {
    if (length) out.response.body_length = *length;
    out.response.body_stream =
        std::make_shared<UpstreamBody>(pool_, backend, std::move(up), std::move(parser));
    co_return out;
  }
  if (!parser.is_done() && up->buf.size() > 0) {
    // The body that came with the header, parsed in place: usually all of it.
    parser.eager(true);
    up->buf.consume(parser.put(up->buf.data(), ec));
    if (ec == bhttp::error::need_more) ec = {};
  }
  if (!ec && !parser.is_done()) co_await ReadMessage(*up, parser, ec);
  if (ec) {
    out.failure = ReadFailure(ec);
    co_return out;
  }
  bool keep = parser.keep_alive();
  out.response.body = std::move(parser.get().body());
  if (keep && up->buf.size() == 0) pool_->GiveBack(backend, std::move(up));
  co_return out;
}
#pragma GCC diagnostic pop

}  // namespace millions::upstream
