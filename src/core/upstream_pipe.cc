// Pipelined GETs to a backend (Options::pipeline_depth): the requests a context forwards to one
// backend in one turn of its event loop (the clients whose requests came in the same poller
// round) are written on one connection with one send, and the backend, which reads them with
// one recv, answers them with one send (http_server_conn.cc holds back the answers to a batch).
// Per request that saves the balancer a send and a receive and the backend a receive, a send
// and most of a wake-up: the whole path's cost (docs/performance.md).
// A request only joins a batch still being written: it never waits behind one already sent, so
// a slow answer delays only those that came in its own turn. Only GETs without a body are
// pipelined (sent again after a cut, as any idempotent request may be); each answer must carry
// the X-Request-Id of the request it answers, or the connection is dropped and its requests
// fail as cut: an answer never reaches the wrong client.
// Thread-safety: a connection is used on its own context only, run by one thread (as the
// poller needs); the pool's map takes a lock.
// Ownership: the pool shares each connection with the requests on it.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <deque>
#include <limits>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/config.h"
#include "core/http_convert.h"
#include "core/readiness.h"
#include "core/upstream_internal.h"

namespace millions::upstream {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::awaitable;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;
using beast::error_code;

namespace {

// One request on a pipelined connection: its place in the connection's byte stream (to tell
// whether the backend may have seen it) and its turn to read its answer.
struct Slot {
  size_t start = 0;  // offset of its first byte in the connection's request stream
  net::Turn turn;
};

}  // namespace

struct PipeConn : std::enable_shared_from_this<PipeConn> {
  ~PipeConn() { Close(); }
  void Close() {
    if (fd < 0) return;
    ready.Detach();  // before the descriptor goes
    ::close(fd);
    fd = -1;
  }
  asio::io_context* ctx = nullptr;
  std::string backend;
  int fd = -1;
  net::ReadyFd ready;
  beast::flat_buffer in;    // answers read and not yet taken
  std::string out;          // requests queued and not yet sent
  size_t sent = 0;          // bytes of the request stream sent
  std::deque<Slot*> queue;  // requests awaiting their answers, oldest first
  bool flush_posted = false;
  bool streaming = false;  // the head's answer is being streamed (PipeBody)
  bool broken = false;
  Clock::time_point idle_since;
};

class PipePool {
 public:
  explicit PipePool(const Options& o) : opt(o) {}
  ~PipePool() {
    std::lock_guard lock(mu);
    for (auto& [ctx, backends] : conns)
      for (auto& [name, v] : backends)
        for (auto& c : v) c->Close();
  }

  // A connection for one more request to `backend` on `ctx`: the one whose batch is being
  // written, else an idle one; null when a new one is needed.
  std::shared_ptr<PipeConn> Pick(asio::io_context* ctx, const std::string& backend) {
    const auto now = Clock::now();
    std::lock_guard lock(mu);
    auto& v = conns[ctx][backend];
    for (;;) {
      PipeConn* idle = nullptr;
      for (auto& c : v) {
        if (c->streaming) continue;
        if (c->flush_posted && c->queue.size() < opt.pipeline_depth) return c;
        if (!idle && c->queue.empty()) idle = c.get();
      }
      if (!idle) return nullptr;
      // As in the one-request pool: one used moments ago is good without asking the kernel.
      if (now - idle->idle_since < std::chrono::milliseconds(50) || !PeerClosed(idle->fd, false))
        return idle->shared_from_this();
      idle->Close();
      std::erase_if(v, [idle](const auto& c) { return c.get() == idle; });
    }
  }

  void Add(const std::shared_ptr<PipeConn>& c) {
    std::lock_guard lock(mu);
    auto& v = conns[c->ctx][c->backend];
    if (v.size() < opt.max_idle_per_backend) v.push_back(c);
  }

  void Remove(PipeConn* c) {
    std::lock_guard lock(mu);
    auto it = conns.find(c->ctx);
    if (it == conns.end()) return;
    auto b = it->second.find(c->backend);
    if (b != it->second.end())
      std::erase_if(b->second, [c](const auto& p) { return p.get() == c; });
  }

  const Options opt;
  // Client::Pipelining's counts (relaxed: read at scrape time).
  std::atomic<uint64_t> requests{0}, sends{0}, dropped{0};
  mutable std::mutex mu;
  std::unordered_map<asio::io_context*,
                     std::unordered_map<std::string, std::vector<std::shared_ptr<PipeConn>>>>
      conns;
};

std::shared_ptr<PipePool> MakePipePool(const Options& o) { return std::make_shared<PipePool>(o); }

Client::PipelineCounts PipeCounts(const PipePool& pool) {
  return {pool.requests.load(std::memory_order_relaxed), pool.sends.load(std::memory_order_relaxed),
          pool.dropped.load(std::memory_order_relaxed)};
}

size_t PipeCount(const PipePool& pool, const std::string& backend) {
  std::lock_guard lock(pool.mu);
  size_t n = 0;
  for (const auto& [ctx, backends] : pool.conns) {
    auto it = backends.find(backend);
    if (it != backends.end()) n += it->second.size();
  }
  return n;
}

namespace {

// Drops the connection: out of the pool, closed, and every request on it but `self` told
// (posted) that it failed.
void Break(PipePool& pool, PipeConn& c, Slot* self) {
  c.broken = true;
  pool.dropped.fetch_add(1, std::memory_order_relaxed);
  pool.Remove(&c);
  c.Close();
  auto q = std::move(c.queue);
  c.queue.clear();
  for (Slot* s : q)
    if (s != self) s->turn.Signal(asio::error::connection_reset, false);
}

// Sends what is queued; what the socket does not take stays for the next try (ReadMore).
void Flush(PipePool& pool, PipeConn& c) {
  c.flush_posted = false;
  if (c.broken || c.out.empty()) return;
  error_code ec;
  size_t n = net::SendNow(c.fd, asio::const_buffer(c.out.data(), c.out.size()), ec);
  if (ec && ec != asio::error::would_block && ec != asio::error::try_again) {
    Break(pool, c, nullptr);
    return;
  }
  if (n > 0) pool.sends.fetch_add(1, std::memory_order_relaxed);
  c.out.erase(0, n);
  c.sent += n;
}

// The head's answer is done: the next request's turn (resumed here and now: it usually finds
// its answer already read), or the connection is idle.
void Advance(PipePool& pool, PipeConn& c, bool keep) {
  if (!keep) {
    Break(pool, c, nullptr);
    return;
  }
  if (c.queue.empty()) {
    c.idle_since = Clock::now();
    return;
  }
  c.queue.front()->turn.Signal({}, true);
}

// Reads more of the backend's answers into c.in. While some requests are still unsent after
// their flush (the socket was full), the wait is short and the send is tried again in between.
awaitable<error_code> ReadMore(PipePool& pool, PipeConn& c, Clock::time_point deadline) {
  for (;;) {
    const bool stuck = !c.out.empty() && !c.flush_posted;
    if (stuck) Flush(pool, c);
    if (c.broken) co_return asio::error::connection_reset;
    const auto until =
        stuck ? std::min(deadline, Clock::now() + std::chrono::milliseconds(10)) : deadline;
    error_code ec;
    size_t n = co_await c.ready.Read(c.in.prepare(16 * 1024), ec, until);
    if (!ec) {
      c.in.commit(n);
      co_return ec;
    }
    if (ec == asio::error::timed_out && until < deadline) continue;
    co_return ec;
  }
}

Failure ReadFailure(const error_code& ec) {
  return ec == asio::error::timed_out ? Failure::kTimeout : Failure::kReset;
}

std::string_view InView(const beast::flat_buffer& b) {
  return std::string_view(static_cast<const char*>(b.data().data()), b.size());
}

// An answer too large (or of unknown length) to hold, streamed from the pipelined connection;
// the requests behind it wait until it ends (then their turn comes) or is dropped (then the
// connection is).
class PipeBody final : public http::BodyStream {
 public:
  PipeBody(std::shared_ptr<PipePool> pool, std::shared_ptr<PipeConn> c,
           bhttp::response_parser<bhttp::string_body>&& p)
      : pool_(std::move(pool)), c_(std::move(c)), parser_(std::move(p)) {
    parser_.body_limit(std::numeric_limits<uint64_t>::max());
    parser_.eager(true);
  }
  ~PipeBody() override {
    if (c_) Break(*pool_, *c_, nullptr);  // left unread: the stream is mid-answer
  }

  awaitable<Status> Read(std::string& piece) override {
    piece.clear();
    if (!c_) co_return MakeError(Errc::kUnavailable, "backend_failed", "backend body ended");
    while (!parser_.is_done()) {
      piece.resize(64 * 1024);
      parser_.get().body().data = piece.data();
      parser_.get().body().size = piece.size();
      error_code ec = bhttp::error::need_more;
      if (c_->in.size() > 0) c_->in.consume(parser_.put(c_->in.data(), ec));
      if (ec == bhttp::error::need_buffer) ec = {};
      piece.resize(piece.size() - parser_.get().body().size);
      if (ec == bhttp::error::need_more) {
        // What is buffered ends mid-piece (a chunk's size line, say): read on.
        if (!piece.empty()) co_return Ok();
        ec = co_await ReadMore(*pool_, *c_, Clock::now() + pool_->opt.backend_timeout);
      }
      if (ec) {
        Break(*pool_, *c_, nullptr);
        c_.reset();
        piece.clear();
        co_return MakeError(Errc::kUnavailable, "backend_failed", ec.message());
      }
      if (!piece.empty()) co_return Ok();
    }
    piece.clear();
    auto c = std::move(c_);
    c->streaming = false;
    Advance(*pool_, *c, parser_.keep_alive());
    co_return Ok();
  }

 private:
  std::shared_ptr<PipePool> pool_;
  std::shared_ptr<PipeConn> c_;
  bhttp::response_parser<bhttp::buffer_body> parser_;
};

// Connects `c` to `address` and attaches it to its context's poller; false when it cannot.
awaitable<bool> Connect(const Options& opt, PipeConn& c, std::string_view address) {
  auto hp = config::ParseHostPort(std::string(address));
  error_code ec;
  beast::tcp_stream conn(*c.ctx);
  conn.expires_after(opt.connect_timeout);
  asio::ip::tcp::endpoint ep(asio::ip::make_address(hp.host, ec), static_cast<uint16_t>(hp.port));
  if (!ec) co_await conn.async_connect(ep, asio::redirect_error(use_awaitable, ec));
  if (!ec) conn.socket().set_option(asio::ip::tcp::no_delay(true), ec);
  if (!ec) conn.socket().non_blocking(true, ec);
  int fd = -1;
  if (!ec) fd = conn.release_socket().release(ec);
  if (ec || fd < 0) co_return false;
  c.fd = fd;
  if (!c.ready.Attach(*c.ctx, fd)) co_return false;
  co_return true;
}

// The head's answer through the full parser (anything the fast reader leaves to it).
awaitable<void> ReadFull(std::shared_ptr<PipePool> pool, std::shared_ptr<PipeConn> c, Slot& me,
                         const http::Request& req, Clock::time_point deadline, Outcome& out) {
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(boost::none);
  error_code ec;
  while (!parser.is_header_done()) {
    c->in.consume(parser.put(c->in.data(), ec));
    if (ec == bhttp::error::need_more) {
      ec = co_await ReadMore(*pool, *c, deadline);
      if (!ec) continue;
    }
    if (ec) {
      out.failure = ReadFailure(ec);
      Break(*pool, *c, &me);
      co_return;
    }
  }
  const auto& res = parser.get();
  auto id = res["X-Request-Id"];
  if (!id.empty() && !req.request_id.empty() && id != req.request_id) {
    out.failure = Failure::kReset;  // not this request's answer: nothing on it can be trusted
    Break(*pool, *c, &me);
    co_return;
  }
  out.response.status = static_cast<int>(res.result_int());
  FillFromFields(res, out.response);
  auto length = parser.content_length();
  c->queue.pop_front();  // `me`: its answer is being read
  if (!parser.is_done() && (!length || *length > pool->opt.stream_over)) {
    if (length) out.response.body_length = *length;
    c->streaming = true;  // the next turn comes when the body ends
    out.response.body_stream = std::make_shared<PipeBody>(pool, c, std::move(parser));
    co_return;
  }
  parser.eager(true);
  while (!parser.is_done()) {
    ec = bhttp::error::need_more;
    if (c->in.size() > 0) c->in.consume(parser.put(c->in.data(), ec));
    if (ec == bhttp::error::need_more) ec = co_await ReadMore(*pool, *c, deadline);
    if (ec) {
      out.failure = ReadFailure(ec);
      Break(*pool, *c, &me);
      co_return;
    }
  }
  out.response.body = std::move(parser.get().body());
  Advance(*pool, *c, parser.keep_alive());
}

}  // namespace

// GCC 12 pairs Asio's frame allocator (aligned_new, inlined) with the frame's own operator
// delete and warns that they mismatch; they are the pair Asio defines for each other.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
awaitable<Outcome> ForwardPipelined(std::shared_ptr<PipePool> pool, const std::string& backend,
                                    std::string_view address, std::string_view head,
                                    const http::Request& req, asio::io_context& ctx) {
  Outcome out;
  std::shared_ptr<PipeConn> c = pool->Pick(&ctx, backend);
  const bool fresh = c == nullptr;
  if (fresh) {
    // In the pool at once, its batch open: the requests that come while it connects join it.
    c = std::make_shared<PipeConn>();
    c->ctx = &ctx;
    c->backend = backend;
    c->flush_posted = true;
    pool->Add(c);
  }
  pool->requests.fetch_add(1, std::memory_order_relaxed);
  Slot me;
  me.start = c->sent + c->out.size();
  c->out.append(head);
  c->queue.push_back(&me);
  if (fresh) {
    if (!co_await Connect(pool->opt, *c, address)) {
      out.failure = Failure::kConnect;
      Break(*pool, *c, &me);
      co_return out;
    }
  }
  if (fresh || !c->flush_posted) {
    // Sent once this turn of the event loop is over: every request the context forwards to
    // this backend meanwhile joins the same send.
    c->flush_posted = true;
    asio::post(ctx, [pool, c] { Flush(*pool, *c); });
  }
  if (c->queue.front() != &me) {
    error_code ec;
    co_await me.turn.Wait(ctx, ec);
    if (ec) {
      // Dropped while waiting: whether the backend saw this request is in the stream offset.
      out.failure = c->sent > me.start ? Failure::kReset : Failure::kConnect;
      co_return out;
    }
  }
  // This request's turn: its answer is the next in c->in, or the next to come.
  const auto deadline = Clock::now() + pool->opt.backend_timeout;
  size_t end;
  while ((end = http::HeaderEnd(InView(c->in))) == std::string_view::npos &&
         c->in.size() < kFastHeadBytes) {
    error_code ec = co_await ReadMore(*pool, *c, deadline);
    if (ec) {
      out.failure = c->sent > me.start ? ReadFailure(ec) : Failure::kConnect;
      Break(*pool, *c, &me);
      co_return out;
    }
  }
  http::ResponseHeadView& v = FastView();
  if (end == std::string_view::npos ||
      http::ParseResponseHead(InView(c->in).substr(0, end), v) != http::FastHead::kOk ||
      v.content_length > pool->opt.stream_over) {
    co_await ReadFull(pool, c, me, req, deadline, out);
    co_return out;
  }
  std::string_view id = RequestIdOf(v);
  if (!id.empty() && !req.request_id.empty() && id != req.request_id) {
    out.failure = Failure::kReset;  // not this request's answer: nothing on it can be trusted
    Break(*pool, *c, &me);
    co_return out;
  }
  FillFromView(v, out.response);
  const bool keep = !v.close;
  const size_t length = static_cast<size_t>(v.content_length);
  c->in.consume(end);  // `v` is not used past here
  while (c->in.size() < length) {
    error_code ec = co_await ReadMore(*pool, *c, deadline);
    if (ec) {
      out.failure = ReadFailure(ec);
      Break(*pool, *c, &me);
      co_return out;
    }
  }
  out.response.body.assign(static_cast<const char*>(c->in.data().data()), length);
  c->in.consume(length);
  c->queue.pop_front();  // `me`
  Advance(*pool, *c, keep);
  co_return out;
}
#pragma GCC diagnostic pop

}  // namespace millions::upstream
