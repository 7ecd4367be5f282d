// One connection of the HttpServer: its request loop (read and check the header block, parse,
// stream or read the body, call the handler) and the response writer.
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <cerrno>
#include <cstdio>

#include "core/http_convert.h"
#include "core/http_head.h"
#include "core/http_server_impl.h"
#include "core/log.h"

namespace millions::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

namespace {

// Cancels the connection's pending read when `d` passes. Runs on the connection's strand.
void Arm(const std::shared_ptr<ServerConn>& c, std::chrono::milliseconds d) {
  c->deadline.expires_after(d);
  c->deadline.async_wait([c](beast::error_code ec) {
    if (ec) return;
    c->timed_out = true;
    c->ready.Cancel();
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
awaitable<void> WriteAll(Stream& s, ServerConn& c, const Buffers& bufs) {
  if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
    beast::error_code ec;
    size_t n = 0;
    if (c.raw >= 0) {
      n = net::SendNow(c.raw, bufs, ec);
    } else {
      auto& sock = s.socket();
      if (!sock.non_blocking()) sock.non_blocking(true, ec);
      n = sock.write_some(bufs, ec);
    }
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec = {};
      n = 0;
    }
    if (ec) throw boost::system::system_error(ec);
    if (n == asio::buffer_size(bufs)) co_return;
    beast::buffers_suffix<Buffers> rest(bufs);
    rest.consume(n);
    c.Reregister();
    c.writing = true;
    struct Done {
      ServerConn& c;
      ~Done() { c.writing = false; }
    } done{c};
    co_await asio::async_write(s, rest, use_awaitable);
  } else {
    // One buffer at a time: a gather write of a head and a body past 16 KiB through Beast's
    // ssl_stream sent the head and then stalled (a 2 MiB hit on the edge's tls_listen never
    // arrived; edge_test). Small answers still go as one record.
    if (asio::buffer_size(bufs) <= 16 * 1024) {
      co_await asio::async_write(s, bufs, use_awaitable);
    } else {
      for (auto it = asio::buffer_sequence_begin(bufs); it != asio::buffer_sequence_end(bufs);
           ++it) {
        asio::const_buffer b = *it;
        if (b.size() > 0) co_await asio::async_write(s, b, use_awaitable);
      }
    }
  }
}

// One read of whatever has arrived. On plain TCP straight from the socket: these reads are
// timed by the connection's own deadline and the idle sweeper, so the stream's per-operation
// timer bookkeeping would be wasted work on every request.
// Not a coroutine itself: it returns the operation's awaitable, so no frame is added.
template <class Stream>
awaitable<size_t> ReadSome(Stream& s, net::ReadyFd& ready, asio::mutable_buffer b,
                           beast::error_code& ec) {
  if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
    if (ready.attached()) return ready.Read(b, ec);
    return s.socket().async_read_some(b, asio::redirect_error(use_awaitable, ec));
  } else {
    return s.async_read_some(b, asio::redirect_error(use_awaitable, ec));
  }
}

// Writes what pending_out holds before an answer that is not simply appended to it.
template <class Stream>
awaitable<void> WritePending(Stream& s, ServerConn& c) {
  if (c.pending_out.empty()) co_return;
  co_await WriteAll(s, c, asio::const_buffer(c.pending_out.data(), c.pending_out.size()));
  c.pending_out.clear();
}

// At most this many bytes of answers are held back for one send.
constexpr size_t kMaxPending = 64 * 1024;

}  // namespace

void FlushPending(ServerConn& c) {
  c.flush_posted = false;
  if (c.writing || c.raw < 0 || c.pending_out.empty()) return;
  beast::error_code ec;
  size_t n =
      net::SendNow(c.raw, asio::const_buffer(c.pending_out.data(), c.pending_out.size()), ec);
  // An error or a full socket leaves the bytes: the connection's next write meets the same
  // condition and ends the session or waits, in order.
  c.pending_out.erase(0, n);
}

template <class Stream>
awaitable<void> HttpServer::Impl::WriteResponse(Stream& s, ServerConn& c, Response& resp,
                                                const Request* req, bool keep_alive, std::string& h,
                                                bool hold) {
  // Written by hand (ResponseHead) and sent with gather writes: one syscall for a whole small
  // response, the body never copied.
  auto& tcp = beast::get_lowest_layer(s);
  tcp.expires_after(opt.limits.request_timeout);
  bool head = req && req->method == "HEAD";
  bool no_body =
      resp.status == 204 || resp.status == 304 || (resp.status >= 100 && resp.status < 200);
  std::string_view id = req ? std::string_view(req->request_id) : std::string_view();
  h.clear();
  if (resp.body_stream && !no_body) {
    co_await WritePending(s, c);
    c.Reregister();  // written by Asio, piece by piece
    AppendResponseHead(h, resp, id, keep_alive, resp.body_length, opt.extra_headers);
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
  AppendResponseHead(h, resp, id, keep_alive, length, opt.extra_headers);
  if (head || no_body) body = {};
  if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
    // The next request is already here (pipelined): this answer waits to go out with the
    // next one's (one send for the batch), flushed at once if a handler yields meanwhile.
    if (hold && c.raw >= 0 && c.pending_out.size() + h.size() + body.size() <= kMaxPending) {
      c.pending_out.append(h).append(body);
      if (!c.flush_posted) {
        c.flush_posted = true;
        asio::post(c.io, [conn = c.shared_from_this()] { FlushPending(*conn); });
      }
      co_return;
    }
    if (!c.pending_out.empty()) {
      std::array<asio::const_buffer, 3> bufs{asio::buffer(c.pending_out), asio::buffer(h),
                                             asio::buffer(body.data(), body.size())};
      co_await WriteAll(s, c, bufs);
      c.pending_out.clear();
      co_return;
    }
  }
  if (body.empty()) {
    co_await WriteAll(s, c, asio::const_buffer(h.data(), h.size()));
  } else {
    std::array<asio::const_buffer, 2> bufs{asio::buffer(h), asio::buffer(body)};
    co_await WriteAll(s, c, bufs);
  }
}

template <class Stream>
awaitable<void> HttpServer::Impl::Refuse(Stream& s, ServerConn& c, int status,
                                         std::string_view code, std::string_view message,
                                         std::string& head_buf) {
  Response err = JsonError(status, code, message);
  Request r;
  r.request_id = NewRequestId();
  co_await WriteResponse(s, c, err, &r, false, head_buf, false);
  Record(r, err.status, 0);
}

awaitable<void> HttpServer::Impl::Session(std::shared_ptr<ServerConn> c, uint64_t id) {
  auto self = shared_from_this();
  if (c->tls) {
    co_await Serve(*c->tls, c);
  } else {
    co_await Serve(c->stream, c);
  }
  c->Close(SHUT_WR);
  Forget(id);
}

template <class Stream>
awaitable<void> HttpServer::Impl::Serve(Stream& s, std::shared_ptr<ServerConn> c) {
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
  if constexpr (!kTls) {
    // One thread runs this server: reads wait for the kernel's word (readiness.h).
    if (opt.one_thread || !opt.contexts.empty()) {
      beast::error_code ec;
      tcp.socket().non_blocking(true, ec);
      if (!ec && c->ready.Attach(c->io, tcp.socket().native_handle())) c->Unregister();
    }
  }
  // Reused from request to request on this connection: their storage is allocated once.
  Request req;
  std::string head_buf;
  RequestHeadView fast;
  try {
    for (;;) {
      c->idle = true;
      if (draining) break;
      beast::error_code ec;
      if (buf.size() == 0) {
        tcp.expires_never();  // the sweeper times this wait out
        c->idle_deadline_ms.store(SteadyMillis() + lim.idle_timeout.count(),
                                  std::memory_order_relaxed);
        size_t n = co_await ReadSome(s, c->ready, buf.prepare(8192), ec);
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
        size_t n = co_await ReadSome(s, c->ready, buf.prepare(8192), ec);
        if (ec) break;
        buf.commit(n);
      }
      // The block may have arrived whole in one read past the bound: the bound still holds.
      if (!ec && early == 0 && end > lim.max_header_bytes) early = 431;
      if (!ec && early == 0) {
        Status raw =
            CheckRawHeader(std::string_view(static_cast<const char*>(buf.data().data()), end));
        if (!raw.ok()) early = 400;
      }
      if (early != 0) {
        if (armed) c->deadline.cancel();
        co_await Refuse(s, *c, early, CodeFor(early),
                        early == 431 ? "headers too large" : "malformed header", head_buf);
        break;
      }
      bool fast_ok = false;
      Status fast_st = Ok();
      if (!ec &&
          ParseRequestHead(std::string_view(static_cast<const char*>(buf.data().data()), end),
                           fast) == FastHead::kOk) {
        // The common request (no body, plain fields): read in place without Beast's parser;
        // the views are used before the buffer is consumed.
        fast_st =
            FillRequest(fast.method, fast.target, fast.version, fast.fields, fast.count, lim, req);
        buf.consume(end);
        fast_ok = true;
      }
      // Beast's parser and Asio's reads and writes serve the rest of this path (a body, 100
      // Continue): the socket goes back to Asio's reactor for the connection's life, after
      // the answers held for a batch.
      if (!fast_ok) {
        co_await WritePending(s, *c);
        c->Reregister();
      }
      if (!ec && !fast_ok) {
        // The whole header block is in the buffer: parse it in place, no read operation.
        size_t used = parser.put(buf.data(), ec);
        buf.consume(used);
        if (!ec && !parser.is_header_done()) ec = bhttp::error::partial_message;
      }
      auto t0 = std::chrono::steady_clock::now();
      std::shared_ptr<StreamedBody<Stream>> body;
      Status converted = fast_st;
      if (fast_ok) {
        if (armed) c->deadline.cancel();
      } else {
        // The full parser's path: a request with a body, or one the fast reader left to it.
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
          // Named, not a temporary of the co_await expression (GCC 12 destroys those twice).
          std::string why = ec.message();
          if (status != 0) co_await Refuse(s, *c, status, CodeFor(status), why, head_buf);
          break;
        }
        Result<Request> parsed = MakeError(Errc::kInternal, "internal", "unset");
        if (stream) {
          parsed = ConvertRequest(parser.get(), {}, lim);
        } else {
          auto msg = parser.release();
          parsed = ConvertRequest(msg, std::move(msg.body()), lim);
        }
        if (parsed.ok()) {
          req = std::move(parsed.value());
          if (stream) {
            if (auto n = parser.content_length()) req.body_length = *n;
            body = std::make_shared<StreamedBody<Stream>>(s, buf, std::move(parser), lim);
            req.body_stream = body;
          }
        } else {
          converted = parsed.error();
        }
      }
      if (!converted.ok()) {
        co_await Refuse(s, *c, converted.error().status(), converted.error().code,
                        converted.error().message, head_buf);
        break;
      }
      req.remote_addr = remote;
      req.tls = kTls;
      Response resp;
      // In flight from the handler's start to the answer's last byte (or the write's failure).
      struct InFlight {
        metrics::Gauge* g;
        explicit InFlight(metrics::Gauge* gauge) : g(gauge) { g->Add(1); }
        ~InFlight() { g->Add(-1); }
      } counted(in_flight);
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
      // Held back when the next request (pipelined) is already whole in the buffer.
      const bool hold = keep && buf.size() > 0 &&
                        HeaderEnd(std::string_view(static_cast<const char*>(buf.data().data()),
                                                   buf.size())) != std::string_view::npos;
      co_await WriteResponse(s, *c, resp, &req, keep, head_buf, hold);
      Record(req, status,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      if (!keep) break;
    }
    co_await WritePending(s, *c);  // a drain ended the loop with answers held
  } catch (const std::exception&) {
    // A write failed: the client is gone. Nothing to answer.
  }
}

}  // namespace millions::http
