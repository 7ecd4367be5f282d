// The connection life cycle RedisClient and RedisSubscriber share (redis_client.cc,
// redis_subscriber.cc): connect with a timeout, read loop, reconnect with jittered exponential
// backoff, Close. Internal to src/cache; not a public header.
// Threading: all socket, timer and connection work runs on the io_context, which must be run by
// ONE thread (handlers touch io-side state without a strand). Callers reach a client from any
// thread through a mutex-guarded queue (encoded bytes + FIFO of pending replies) and, when no
// write is in flight, one asio::post per batch.
// Ownership: the public objects hold a shared_ptr to an internal core; every handler holds one
// too, so a handler that runs after the public object is gone never touches freed memory.
#pragma once

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <random>

#include "cache/redis_client.h"

namespace millions::cache::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;
using std::chrono::milliseconds;

inline Error Unavailable(std::string message) {
  return MakeError(Errc::kUnavailable, "cache_unavailable", std::move(message));
}

constexpr size_t kReadChunk = 16 << 10;  // the least room offered to each read
constexpr size_t kKeepBuffer = 1 << 20;  // a read buffer grown past this is freed when drained

// One TCP connection. Handlers hold it by shared_ptr, so a connection that has been replaced still
// owns the buffers its cancelled operations point at until their handlers have run.
struct Conn {
  explicit Conn(asio::io_context& ioc) : socket(ioc) {}
  tcp::socket socket;
  std::string rbuf;  // [rpos, rlen) read but not parsed yet
  size_t rpos = 0, rlen = 0;
  std::string wbuf;  // the write in flight; swapped with the queue, never copied
};

// The connection life cycle shared by client and subscriber. Every member not marked otherwise
// belongs to the io thread.
class Link : public std::enable_shared_from_this<Link> {
 public:
  Link(asio::io_context& ioc, RedisOptions o)
      : ioc_(ioc),
        opt_(std::move(o)),
        timer_(ioc),
        ticker_(ioc),
        resolver_(ioc),
        backoff_(opt_.backoff_min),
        rng_(std::random_device{}()) {}
  virtual ~Link() = default;

  void Start() {
    asio::post(ioc_, [self = shared_from_this()] {
      self->Connect();
      self->ArmTicker();
    });
  }

  // Any thread. Idempotent; returns once OnDown has failed everything pending.
  void Close() {
    if (!closing_.exchange(true)) {
      BeforeClose();
      if (!IoThread()) asio::post(ioc_, [self = shared_from_this()] { self->DoClose(); });
    }
    if (IoThread()) return DoClose();
    std::unique_lock lock(close_mu_);
    while (!closed_) {
      // An io_context that was stopped runs no more handlers: close from here instead, rather
      // than hang a destructor during shutdown.
      if (close_cv_.wait_for(lock, milliseconds(20), [&] { return closed_; })) break;
      if (ioc_.stopped()) {
        lock.unlock();
        DoClose();
        lock.lock();
      }
    }
  }

  asio::io_context& Ioc() { return ioc_; }
  bool IoThread() const { return ioc_.get_executor().running_in_this_thread(); }

  std::atomic<uint64_t> connects_{0}, disconnects_{0}, timeouts_{0}, flushes_{0};

 protected:
  virtual void OnUp() = 0;
  // The replies parsed from one read, in order. May drop the connection or close.
  virtual void OnReplies(std::vector<RedisReply>& replies) = 0;
  virtual void OnDown(const std::string& why) = 0;  // fail what depended on the connection
  virtual void OnTick() = 0;
  virtual milliseconds TickPeriod() const = 0;
  virtual void BeforeClose() {}  // any thread: stop accepting work

  // Closes the current connection and schedules the next attempt.
  void Drop(const std::string& why) {
    if (!conn_) return;
    auto c = std::move(conn_);
    conn_.reset();
    error_code ignored;
    c->socket.close(ignored);
    ++disconnects_;
    ForgetWrites();
    OnDown(why);
    Retry();
  }

  // Io thread, under mu_: sends out_ now unless a write is in flight (its completion sends what
  // queued meanwhile, in one write).
  void WriteLocked() {
    if (writing_ || !conn_ || out_.empty()) return;
    auto c = conn_;
    c->wbuf.clear();
    c->wbuf.swap(out_);
    writing_ = true;
    asio::async_write(c->socket, asio::buffer(c->wbuf),
                      [self = shared_from_this(), c](error_code ec, size_t) {
                        if (c != self->conn_) return;
                        if (ec) return self->Drop("write failed: " + ec.message());
                        std::lock_guard lock(self->mu_);
                        self->writing_ = false;
                        self->WriteLocked();
                      });
  }

  asio::io_context& ioc_;
  const RedisOptions opt_;
  std::shared_ptr<Conn> conn_;  // the established connection, if any
  bool stopping_ = false;
  std::atomic<bool> closing_{false};  // any thread: Close() has begun
  std::mutex mu_;    // guards out_, writing_ and what a derived class shares with callers
  std::string out_;  // encoded commands waiting for the next write
  bool writing_ = false;

 private:
  void Connect() {
    if (stopping_) return;
    auto c = std::make_shared<Conn>(ioc_);
    connecting_ = c;
    auto self = shared_from_this();
    timer_.expires_after(opt_.connect_timeout);
    timer_.async_wait([self, c](error_code ec) {
      if (ec || self->connecting_ != c) return;
      self->resolver_.cancel();
      c->socket.close(ec);  // the pending connect fails and retries
    });
    auto done = [self, c](error_code ec, auto&&...) { self->OnConnect(c, ec); };
    error_code ec;
    auto addr = asio::ip::make_address(opt_.host, ec);
    if (!ec) {
      c->socket.async_connect(tcp::endpoint(addr, static_cast<uint16_t>(opt_.port)), done);
      return;
    }
    resolver_.async_resolve(opt_.host, std::to_string(opt_.port),
                            [self, c, done](error_code ec, tcp::resolver::results_type r) {
                              if (ec) return self->OnConnect(c, ec);
                              asio::async_connect(c->socket, r, done);
                            });
  }

  void OnConnect(const std::shared_ptr<Conn>& c, error_code ec) {
    if (connecting_ != c) return;
    connecting_.reset();
    timer_.cancel();
    if (stopping_) return;
    if (!ec) c->socket.set_option(tcp::no_delay(true), ec);
    if (ec) return Retry();
    conn_ = c;
    backoff_ = opt_.backoff_min;
    ++connects_;
    Read(c);
    authenticating_ = !opt_.password.empty();
    if (!authenticating_) return OnUp();
    // AUTH alone on the wire: callers are refused until OnUp, and the subscriber writes nothing
    // before it either.
    auth_deadline_ = Clock::now() + opt_.connect_timeout;
    std::lock_guard lock(mu_);
    if (opt_.user.empty())
      EncodeCommand({"AUTH", opt_.password}, &out_);
    else
      EncodeCommand({"AUTH", opt_.user, opt_.password}, &out_);
    WriteLocked();
  }

  // The reply to AUTH (the first of a new connection): up, or dropped. Redis' refusal names no
  // secret ("WRONGPASS invalid username-password pair").
  bool Authenticated() {
    if (!authenticating_ || replies_.empty()) return true;
    RedisReply first = std::move(replies_.front());
    replies_.erase(replies_.begin());
    authenticating_ = false;
    if (first.is_error()) {
      Drop("redis refused AUTH: " + first.str);
      return false;
    }
    OnUp();
    return true;
  }

  // Full jitter over the upper half of the current step, so that many clients that lost the
  // same node do not come back in lockstep.
  void Retry() {
    if (stopping_) return;
    auto step = std::max(backoff_, milliseconds(1));
    std::uniform_int_distribution<int64_t> pick(step.count() / 2, step.count());
    backoff_ = std::min(step * 2, std::max(opt_.backoff_max, opt_.backoff_min));
    timer_.expires_after(milliseconds(std::max<int64_t>(1, pick(rng_))));
    timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) self->Connect();
    });
  }

  void Read(const std::shared_ptr<Conn>& c) {
    if (c->rbuf.size() - c->rlen < kReadChunk) {
      if (c->rpos > 0) {  // move the unparsed tail to the front before growing
        std::memmove(c->rbuf.data(), c->rbuf.data() + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
      }
      if (c->rbuf.size() - c->rlen < kReadChunk)
        c->rbuf.resize(std::max(c->rbuf.size() * 2, 4 * kReadChunk));
    }
    c->socket.async_read_some(
        asio::buffer(c->rbuf.data() + c->rlen, c->rbuf.size() - c->rlen),
        [self = shared_from_this(), c](error_code ec, size_t n) { self->OnRead(c, ec, n); });
  }

  void OnRead(const std::shared_ptr<Conn>& c, error_code ec, size_t n) {
    if (c != conn_) return;  // a connection already dropped
    if (ec) return Drop(ec == asio::error::eof ? "connection closed by server" : ec.message());
    c->rlen += n;
    replies_.clear();
    bool bad = false;
    size_t used = 0;
    for (;;) {
      std::string_view rest(c->rbuf.data() + c->rpos, c->rlen - c->rpos);
      auto st = parser_.Parse(rest, &reply_, &used);
      if (st == RespParser::State::kNeedMore) break;
      if (st == RespParser::State::kProtocolError) {
        bad = true;
        break;
      }
      replies_.push_back(std::move(reply_));
      c->rpos += used;
    }
    if (c->rpos == c->rlen) {
      c->rpos = c->rlen = 0;
      if (c->rbuf.size() > kKeepBuffer) std::string().swap(c->rbuf);  // one huge reply passed
    }
    if (!Authenticated()) return;
    if (!replies_.empty()) OnReplies(replies_);
    if (bad) Drop("protocol error from redis");
    if (c == conn_) Read(c);  // unless dropped or closed meanwhile
  }

  void ArmTicker() {
    if (stopping_) return;
    ticker_.expires_after(TickPeriod());
    ticker_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->stopping_) return;
      if (!self->authenticating_)
        self->OnTick();
      else if (self->conn_ && Clock::now() > self->auth_deadline_)
        self->Drop("no answer to AUTH");
      self->ArmTicker();
    });
  }

  void ForgetWrites() {
    std::lock_guard lock(mu_);
    out_.clear();
    writing_ = false;
  }

  void DoClose() {
    if (close_started_.exchange(true)) return;
    stopping_ = true;
    error_code ignored;
    timer_.cancel();
    ticker_.cancel();
    resolver_.cancel();
    if (connecting_) connecting_->socket.close(ignored);
    connecting_.reset();
    if (conn_) conn_->socket.close(ignored);
    conn_.reset();
    ForgetWrites();
    OnDown("redis client closed");
    std::lock_guard lock(close_mu_);
    closed_ = true;
    close_cv_.notify_all();
  }

  asio::steady_timer timer_;   // connect deadline, then backoff
  asio::steady_timer ticker_;  // the one periodic check (deadlines, liveness)
  tcp::resolver resolver_;     // only for host names; addresses connect directly
  std::shared_ptr<Conn> connecting_;
  milliseconds backoff_;
  std::minstd_rand rng_;
  RespParser parser_;
  RedisReply reply_;
  std::vector<RedisReply> replies_;
  bool authenticating_ = false;  // AUTH sent on this connection, its reply not read yet
  Clock::time_point auth_deadline_{};
  std::atomic<bool> close_started_{false};
  std::mutex close_mu_;
  std::condition_variable close_cv_;
  bool closed_ = false;  // guarded by close_mu_
};

}  // namespace millions::cache::detail
