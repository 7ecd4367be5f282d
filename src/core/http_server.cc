#include "core/http_server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <unordered_map>

#include "core/http_convert.h"
#include "core/log.h"

namespace millions::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

namespace {

struct Conn {
  // With a TLS context the socket goes into `tls` and `stream` stays empty.
  Conn(asio::any_io_executor s, tcp::socket sock, asio::ssl::context* ctx)
      : strand(s), stream(ctx ? tcp::socket(s) : std::move(sock)), deadline(s) {
    if (ctx) tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(std::move(sock), *ctx);
  }
  beast::tcp_stream& tcp() { return tls ? beast::get_lowest_layer(*tls) : stream; }
  asio::any_io_executor strand;  // a strand, or the io_context itself when it has one thread
  beast::tcp_stream stream;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  // Reading a request is timed by `deadline`, not by the stream's own expiry: an expired
  // tcp_stream closes its socket, and a slow client must still get its 408.
  asio::steady_timer deadline;
  bool timed_out = false;
  std::atomic<bool> idle{true};
  // While waiting for the next request: when the idle timeout closes the connection (steady
  // clock, ms; 0 when not waiting). The sweeper reads it: a timer per request cost more.
  std::atomic<int64_t> idle_deadline_ms{0};
};

int64_t SteadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Cancels the connection's pending read when `d` passes. Runs on the connection's strand.
void Arm(const std::shared_ptr<Conn>& c, std::chrono::milliseconds d) {
  c->deadline.expires_after(d);
  c->deadline.async_wait([c](beast::error_code ec) {
    if (ec) return;
    c->timed_out = true;
    c->tcp().socket().cancel(ec);
  });
}

// What to answer when reading a request fails; 0 means close without answering.
int StatusForReadError(const beast::error_code& ec, bool got_bytes) {
  if (ec == bhttp::error::header_limit) return 431;
  if (ec == bhttp::error::body_limit) return 413;
  if (ec == beast::error::timeout) return got_bytes ? 408 : 0;
  if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
      ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
      ec == asio::error::bad_descriptor)
    return 0;
  if (ec == bhttp::error::partial_message) return 0;  // client went away mid-request
  if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category()) return 400;
  return 0;
}

const char* CodeFor(int status) {
  switch (status) {
    case 408:
      return "request_timeout";
    case 413:
      return "payload_too_large";
    case 431:
      return "headers_too_large";
    default:
      return "bad_request";
  }
}

std::string_view MethodLabel(std::string_view m) {
  static constexpr std::string_view kKnown[] = {"GET",    "HEAD",  "POST",   "PUT",
                                                "DELETE", "PATCH", "OPTIONS"};
  for (auto k : kKnown)
    if (k == m) return k;
  return "other";
}

// The body of a request that the handler reads as it arrives (ServerOptions::
// stream_bodies_over), in pieces of up to 64 KiB. Valid until the handler returns.
template <class Stream>
class StreamedBody final : public BodyStream {
 public:
  StreamedBody(Stream& s, beast::flat_buffer& buf, bhttp::request_parser<bhttp::string_body>&& p,
               const Limits& lim)
      : s_(s), buf_(buf), parser_(std::move(p)), lim_(lim) {
    parser_.body_limit(lim.max_body_bytes);
  }

  awaitable<Status> Read(std::string& piece) override {
    piece.clear();
    if (finished_ || failed_) co_return MakeError(Errc::kBadInput, "bad_body", "body unavailable");
    auto& tcp = beast::get_lowest_layer(s_);
    while (!parser_.is_done()) {
      piece.resize(64 * 1024);
      parser_.get().body().data = piece.data();
      parser_.get().body().size = piece.size();
      tcp.expires_after(lim_.request_timeout);
      beast::error_code ec;
      co_await bhttp::async_read(s_, buf_, parser_, asio::redirect_error(use_awaitable, ec));
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) {
        failed_ = true;
        piece.clear();
        co_return MakeError(ec == bhttp::error::body_limit ? Errc::kTooLarge : Errc::kBadInput,
                            ec == bhttp::error::body_limit ? "payload_too_large" : "bad_body",
                            ec.message());
      }
      piece.resize(piece.size() - parser_.get().body().size);
      if (!piece.empty()) co_return Ok();
    }
    piece.clear();
    co_return Ok();
  }

  // True when the whole body was read: the connection can carry the next request.
  bool Finish() {
    bool whole = parser_.is_done() && !failed_;
    finished_ = true;
    return whole;
  }

 private:
  Stream& s_;
  beast::flat_buffer& buf_;
  bhttp::request_parser<bhttp::buffer_body> parser_;
  const Limits& lim_;
  bool failed_ = false;
  bool finished_ = false;
};

// Writes `bufs` whole. On plain TCP it first offers them straight to the socket, which takes
// a small response at once: no reactor operation and no event-loop round trip; what the
// kernel does not take goes out asynchronously. Errors throw, as use_awaitable does.
template <class Stream, class Buffers>
awaitable<void> WriteAll(Stream& s, const Buffers& bufs) {
  if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
    auto& sock = s.socket();
    beast::error_code ec;
    if (!sock.non_blocking()) sock.non_blocking(true, ec);
    size_t n = sock.write_some(bufs, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec = {};
      n = 0;
    }
    if (ec) throw boost::system::system_error(ec);
    if (n == asio::buffer_size(bufs)) co_return;
    beast::buffers_suffix<Buffers> rest(bufs);
    rest.consume(n);
    co_await asio::async_write(s, rest, use_awaitable);
  } else {
    co_await asio::async_write(s, bufs, use_awaitable);
  }
}

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io, ServerOptions o, Handler h, metrics::Registry* r)
      : ioc(io),
        opt(std::move(o)),
        handler(std::move(h)),
        reg(r),
        acceptor(io),
        drain_timer(io),
        sweep_timer(io) {
    open_conns = &reg->GetGauge("millions_http_open_connections", "Open client connections.",
                                {{"role", opt.role}});
  }

  asio::io_context& ioc;
  ServerOptions opt;
  Handler handler;
  metrics::Registry* reg;
  tcp::acceptor acceptor;
  asio::steady_timer drain_timer;
  asio::steady_timer sweep_timer;  // closes connections idle past limits.idle_timeout
  metrics::Gauge* open_conns;
  std::atomic<bool> draining{false};
  std::mutex mu;
  std::unordered_map<uint64_t, std::shared_ptr<Conn>> conns;
  uint64_t next_id = 0;
  std::function<void()> drain_done;

  awaitable<void> AcceptLoop();
  void Sweep();
  awaitable<void> Session(std::shared_ptr<Conn> c, uint64_t id);
  template <class Stream>
  awaitable<void> Serve(Stream& s, std::shared_ptr<Conn> c);
  template <class Stream>
  awaitable<void> WriteResponse(Stream& s, Response& resp, const Request* req, bool keep_alive);
  std::unique_ptr<asio::ssl::context> ssl;
  void Record(const Request& req, int status, double seconds);
  void Forget(uint64_t id);
  void CloseConn(const std::shared_ptr<Conn>& c);
};

HttpServer::HttpServer(asio::io_context& ioc, ServerOptions options, Handler handler,
                       metrics::Registry* registry)
    : impl_(std::make_shared<Impl>(ioc, std::move(options), std::move(handler), registry)) {}

HttpServer::~HttpServer() = default;

void HttpServer::Start() {
  if (!impl_->opt.tls_cert_file.empty()) {
    // Throws (start-up) when the files are missing or do not match.
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    ctx->use_certificate_chain_file(impl_->opt.tls_cert_file);
    ctx->use_private_key_file(impl_->opt.tls_key_file, asio::ssl::context::pem);
    impl_->ssl = std::move(ctx);
  }
  auto& a = impl_->acceptor;
  tcp::endpoint ep(asio::ip::make_address(impl_->opt.host), static_cast<uint16_t>(impl_->opt.port));
  a.open(ep.protocol());
  a.set_option(asio::socket_base::reuse_address(true));
  a.bind(ep);
  a.listen(asio::socket_base::max_listen_connections);
  asio::co_spawn(impl_->ioc, impl_->AcceptLoop(), asio::detached);
  impl_->Sweep();
}

uint16_t HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

bool HttpServer::draining() const { return impl_->draining.load(); }

void HttpServer::Drain(std::function<void()> done) {
  auto self = impl_;
  asio::post(self->ioc, [self, done = std::move(done)]() mutable {
    if (self->draining.exchange(true)) return;
    self->sweep_timer.cancel();
    beast::error_code ec;
    self->acceptor.close(ec);
    std::vector<std::shared_ptr<Conn>> idle;
    {
      std::lock_guard lock(self->mu);
      self->drain_done = std::move(done);
      for (auto& [id, c] : self->conns)
        if (c->idle.load()) idle.push_back(c);
      if (self->conns.empty()) {
        asio::post(self->ioc, std::exchange(self->drain_done, nullptr));
        return;
      }
    }
    for (auto& c : idle) self->CloseConn(c);
    // Requests still running when the drain timeout fires are cut off.
    self->drain_timer.expires_after(self->opt.limits.drain_timeout);
    self->drain_timer.async_wait([self](beast::error_code) {
      std::vector<std::shared_ptr<Conn>> all;
      {
        std::lock_guard lock(self->mu);
        for (auto& [id, c] : self->conns) all.push_back(c);
      }
      for (auto& c : all) self->CloseConn(c);
    });
  });
}

void HttpServer::Impl::CloseConn(const std::shared_ptr<Conn>& c) {
  asio::post(c->strand, [c] {
    beast::error_code ec;
    c->tcp().socket().shutdown(tcp::socket::shutdown_both, ec);
    c->tcp().socket().close(ec);
  });
}

void HttpServer::Impl::Forget(uint64_t id) {
  std::function<void()> done;
  {
    std::lock_guard lock(mu);
    conns.erase(id);
    if (draining && conns.empty() && drain_done) done = std::exchange(drain_done, nullptr);
  }
  open_conns->Add(-1);
  if (done) {
    drain_timer.cancel();
    asio::post(ioc, std::move(done));
  }
}

void HttpServer::Impl::Sweep() {
  auto period = std::clamp(opt.limits.idle_timeout / 4, std::chrono::milliseconds(10),
                           std::chrono::milliseconds(1000));
  sweep_timer.expires_after(period);
  sweep_timer.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->draining) return;
    int64_t now = SteadyMillis();
    std::vector<std::shared_ptr<Conn>> expired;
    {
      std::lock_guard lock(self->mu);
      for (auto& [id, c] : self->conns) {
        int64_t d = c->idle_deadline_ms.load(std::memory_order_relaxed);
        if (d != 0 && d <= now) expired.push_back(c);
      }
    }
    for (auto& c : expired) self->CloseConn(c);
    self->Sweep();
  });
}

awaitable<void> HttpServer::Impl::AcceptLoop() {
  auto self = shared_from_this();
  for (;;) {
    beast::error_code ec;
    tcp::socket sock = co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (draining || ec == asio::error::operation_aborted) co_return;
      // EMFILE and friends: back off briefly instead of spinning.
      log::Warn("accept failed", {{"error", ec.message()}});
      asio::steady_timer t(ioc, std::chrono::milliseconds(50));
      co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    // Responses go out in as few writes as we can make, so Nagle only ever delays (streamed
    // bodies, 100 Continue); every proxy we compare with turns it off too.
    sock.set_option(tcp::no_delay(true), ec);
    uint64_t id;
    std::shared_ptr<Conn> c;
    {
      std::lock_guard lock(mu);
      if (conns.size() >= opt.limits.max_connections) {
        sock.close(ec);
        continue;
      }
      id = next_id++;
      asio::any_io_executor ex = opt.one_thread ? asio::any_io_executor(ioc.get_executor())
                                                : asio::any_io_executor(asio::make_strand(ioc));
      c = std::make_shared<Conn>(ex, std::move(sock), ssl.get());
      conns.emplace(id, c);
    }
    open_conns->Add(1);
    asio::co_spawn(c->strand, Session(c, id), asio::detached);
  }
}

void HttpServer::Impl::Record(const Request& req, int status, double seconds) {
  // Looking a series up formats its labels under the registry's lock; each thread keeps the
  // handles it has used, so the hot path is one hash lookup and two atomic adds.
  struct Handles {
    metrics::Counter* requests;
    metrics::Histogram* duration;
  };
  thread_local std::unordered_map<std::string, Handles> cache;
  std::string_view route = req.route.empty() ? std::string_view("unmatched") : req.route;
  std::string_view method = MethodLabel(req.method);
  std::string key;
  key.reserve(route.size() + 32);
  key.append(reinterpret_cast<const char*>(&reg), sizeof reg).append(opt.role).push_back('\0');
  key.append(route).append(method).append(std::to_string(status));
  auto it = cache.find(key);
  if (it == cache.end()) {
    std::string r(route);
    Handles h{&reg->GetCounter("millions_http_requests_total", "HTTP requests answered.",
                               {{"role", opt.role},
                                {"route", r},
                                {"method", std::string(method)},
                                {"code", std::to_string(status)}}),
              &reg->GetHistogram("millions_http_request_duration_seconds",
                                 "Time from the end of the request headers to the response "
                                 "written.",
                                 {{"role", opt.role}, {"route", r}})};
    if (cache.size() > 4096) cache.clear();  // bounded: routes, methods and codes are few
    it = cache.emplace(std::move(key), h).first;
  }
  it->second.requests->Inc();
  it->second.duration->Observe(seconds);
}

template <class Stream>
awaitable<void> HttpServer::Impl::WriteResponse(Stream& s, Response& resp, const Request* req,
                                                bool keep_alive) {
  // Written by hand (ResponseHead) and sent with gather writes: one syscall for a whole small
  // response, the body never copied.
  auto& tcp = beast::get_lowest_layer(s);
  tcp.expires_after(opt.limits.request_timeout);
  bool head = req && req->method == "HEAD";
  bool no_body =
      resp.status == 204 || resp.status == 304 || (resp.status >= 100 && resp.status < 200);
  std::string_view id = req ? std::string_view(req->request_id) : std::string_view();
  if (resp.body_stream && !no_body) {
    std::string h = ResponseHead(resp, id, keep_alive, resp.body_length);
    co_await asio::async_write(s, asio::buffer(h), use_awaitable);
    if (head) co_return;
    const bool chunked = !resp.body_length;
    uint64_t sent = 0;
    std::string piece;
    for (;;) {
      Status st = co_await resp.body_stream->Read(piece);
      // Mid-body there is no status left to send: the connection is cut instead.
      if (!st.ok()) throw std::system_error(std::make_error_code(std::errc::io_error));
      if (piece.empty()) break;
      tcp.expires_after(opt.limits.request_timeout);
      if (chunked) {
        char size[24];
        int n = std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
        std::array<asio::const_buffer, 3> bufs{asio::buffer(size, static_cast<size_t>(n)),
                                               asio::buffer(piece), asio::buffer("\r\n", 2)};
        co_await asio::async_write(s, bufs, use_awaitable);
      } else {
        sent += piece.size();
        if (sent > *resp.body_length)
          throw std::system_error(std::make_error_code(std::errc::message_size));
        co_await asio::async_write(s, asio::buffer(piece), use_awaitable);
      }
    }
    if (chunked) {
      co_await asio::async_write(s, asio::buffer("0\r\n\r\n", 5), use_awaitable);
    } else if (sent != *resp.body_length) {
      throw std::system_error(std::make_error_code(std::errc::message_size));
    }
    co_return;
  }
  std::string_view body = !resp.static_body.empty() ? resp.static_body : resp.body;
  std::optional<uint64_t> length;
  if (!no_body) length = body.size();
  std::string h = ResponseHead(resp, id, keep_alive, length);
  if (head || no_body || body.empty()) {
    co_await WriteAll(s, asio::const_buffer(h.data(), h.size()));
  } else {
    std::array<asio::const_buffer, 2> bufs{asio::buffer(h), asio::buffer(body)};
    co_await WriteAll(s, bufs);
  }
}

awaitable<void> HttpServer::Impl::Session(std::shared_ptr<Conn> c, uint64_t id) {
  auto self = shared_from_this();
  if (c->tls) {
    co_await Serve(*c->tls, c);
  } else {
    co_await Serve(c->stream, c);
  }
  beast::error_code ec;
  c->tcp().socket().shutdown(tcp::socket::shutdown_send, ec);
  c->tcp().socket().close(ec);
  Forget(id);
}

template <class Stream>
awaitable<void> HttpServer::Impl::Serve(Stream& s, std::shared_ptr<Conn> c) {
  constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
  beast::flat_buffer buf;
  auto& tcp = beast::get_lowest_layer(s);
  const Limits& lim = opt.limits;
  if constexpr (kTls) {
    beast::error_code ec;
    tcp.expires_after(lim.header_timeout);
    co_await s.async_handshake(asio::ssl::stream_base::server,
                               asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;  // not TLS, or too slow: nothing to answer
  }
  std::string remote;
  {
    beast::error_code ec;
    remote = tcp.socket().remote_endpoint(ec).address().to_string();  // once, not per request
  }
  try {
    for (;;) {
      c->idle = true;
      if (draining) break;
      beast::error_code ec;
      if (buf.size() == 0) {
        tcp.expires_never();  // the sweeper times this wait out
        c->idle_deadline_ms.store(SteadyMillis() + lim.idle_timeout.count(),
                                  std::memory_order_relaxed);
        size_t n =
            co_await s.async_read_some(buf.prepare(8192), asio::redirect_error(use_awaitable, ec));
        c->idle_deadline_ms.store(0, std::memory_order_relaxed);
        if (ec) break;  // idle timeout or the client closed: nothing to answer
        buf.commit(n);
      }
      c->idle = false;
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(static_cast<uint32_t>(lim.max_header_bytes));
      parser.body_limit(lim.max_body_bytes);
      // Timers are armed only when we must wait for more bytes: a request whose header (and
      // body) came in one read costs no timer operations at all.
      bool armed = false;
      auto arm = [&](std::chrono::milliseconds d) {
        if (!armed) tcp.expires_never();
        Arm(c, d);
        armed = true;
      };
      // Gather the whole header block first, so its raw bytes can be checked before parsing.
      size_t end;
      int early = 0;  // a status to answer before parsing, or 0
      while ((end = HeaderEnd(std::string_view(static_cast<const char*>(buf.data().data()),
                                               buf.size()))) == std::string_view::npos) {
        if (buf.size() > lim.max_header_bytes) {
          early = 431;
          break;
        }
        if (!armed) arm(lim.header_timeout);
        size_t n =
            co_await s.async_read_some(buf.prepare(8192), asio::redirect_error(use_awaitable, ec));
        if (ec) break;
        buf.commit(n);
      }
      if (!ec && early == 0) {
        Status raw =
            CheckRawHeader(std::string_view(static_cast<const char*>(buf.data().data()), end));
        if (!raw.ok()) early = 400;
      }
      if (early != 0) {
        if (armed) c->deadline.cancel();
        Response err = JsonError(early, CodeFor(early),
                                 early == 431 ? "headers too large" : "malformed header");
        Request r;
        r.request_id = NewRequestId();
        co_await WriteResponse(s, err, &r, false);
        Record(r, early, 0);
        break;
      }
      if (!ec) {
        // The whole header block is in the buffer: parse it in place, no read operation.
        size_t used = parser.put(buf.data(), ec);
        buf.consume(used);
        if (!ec && !parser.is_header_done()) ec = bhttp::error::partial_message;
      }
      auto t0 = std::chrono::steady_clock::now();
      // A large (or chunked) body is handed to the handler as a stream when the server is
      // set up for it (the balancer): it is never held whole.
      bool stream =
          !ec && opt.stream_bodies_over > 0 &&
          (parser.chunked() || parser.content_length().value_or(0) > opt.stream_bodies_over);
      if (!ec) {
        auto expect = parser.get()[bhttp::field::expect];
        if (IEquals(expect, "100-continue")) {
          static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
          co_await asio::async_write(s, asio::buffer(kContinue.data(), kContinue.size()),
                                     use_awaitable);
        }
        if (!stream && !parser.is_done() && buf.size() > 0) {
          // The part of the body that came with the header, parsed in place.
          parser.eager(true);
          size_t used = parser.put(buf.data(), ec);
          buf.consume(used);
          if (ec == bhttp::error::need_more) ec = {};
        }
        if (!ec && !stream && !parser.is_done()) {
          arm(lim.request_timeout);
          co_await bhttp::async_read(s, buf, parser, asio::redirect_error(use_awaitable, ec));
        }
      }
      if (armed) c->deadline.cancel();
      if (ec) {
        int status = c->timed_out ? 408 : StatusForReadError(ec, true);
        if (status != 0) {
          Response err = JsonError(status, CodeFor(status), ec.message());
          Request r;
          r.request_id = NewRequestId();
          co_await WriteResponse(s, err, &r, false);
          Record(r, status, 0);
        }
        break;
      }
      std::shared_ptr<StreamedBody<Stream>> body;
      Result<Request> parsed = MakeError(Errc::kInternal, "internal", "unset");
      if (stream) {
        parsed = ConvertRequest(parser.get(), {}, lim);
      } else {
        auto msg = parser.release();
        parsed = ConvertRequest(msg, std::move(msg.body()), lim);
      }
      if (!parsed.ok()) {
        Response err =
            JsonError(parsed.error().status(), parsed.error().code, parsed.error().message);
        Request r;
        r.request_id = NewRequestId();
        co_await WriteResponse(s, err, &r, false);
        Record(r, err.status, 0);
        break;
      }
      Request& req = parsed.value();
      req.remote_addr = remote;
      req.tls = kTls;
      if (stream) {
        if (auto n = parser.content_length()) req.body_length = *n;
        body = std::make_shared<StreamedBody<Stream>>(s, buf, std::move(parser), lim);
        req.body_stream = body;
      }
      Response resp;
      try {
        resp = co_await handler(req);
      } catch (const std::exception& e) {
        log::Write(log::Level::kError, {req.request_id, req.trace_id}, "handler threw",
                   {{"error", e.what()}, {"route", req.route}});
        resp = JsonError(500, "internal", "internal error");
      }
      // A body the handler left unread (or that failed) leaves the stream mid-message.
      if (body && !body->Finish()) req.keep_alive = false;
      bool keep = req.keep_alive && !draining;
      int status = resp.status;
      co_await WriteResponse(s, resp, &req, keep);
      Record(req, status,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      if (!keep) break;
    }
  } catch (const std::exception&) {
    // A write failed: the client is gone. Nothing to answer.
  }
}

}  // namespace millions::http
