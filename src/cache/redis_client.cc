// RedisClient and RedisSubscriber on Boost.Asio: the connection life cycle they share (connect
// with a timeout, read loop, reconnect with jittered exponential backoff, Close), the client's
// pipelining and deadlines, and the subscriber's push handling.
// Threading: all socket, timer and connection work runs on the io_context, which must be run by
// ONE thread (handlers touch io-side state without a strand). Callers reach the client from any
// thread through a mutex-guarded queue (encoded bytes + FIFO of pending replies) and, when no
// write is in flight, one asio::post per batch.
// Ownership: the public objects hold a shared_ptr to an internal core; every handler holds one
// too, so a handler that runs after the public object is gone never touches freed memory.
#include "cache/redis_client.h"

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

namespace millions::cache {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;
using std::chrono::milliseconds;

namespace {

Error Unavailable(std::string message) {
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
    OnUp();
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
    if (!replies_.empty()) OnReplies(replies_);
    if (bad) Drop("protocol error from redis");
    if (c == conn_) Read(c);  // unless dropped or closed meanwhile
  }

  void ArmTicker() {
    if (stopping_) return;
    ticker_.expires_after(TickPeriod());
    ticker_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->stopping_) return;
      self->OnTick();
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
  std::atomic<bool> close_started_{false};
  std::mutex close_mu_;
  std::condition_variable close_cv_;
  bool closed_ = false;  // guarded by close_mu_
};

// Blocks a caller until its callback has run. Notifies under the lock, so the caller cannot
// return (and destroy this) between the result being set and the notification.
struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<RedisReply>> result;
  void Set(Result<RedisReply> r) {
    std::lock_guard lock(mu);
    result.emplace(std::move(r));
    cv.notify_one();
  }
  Result<RedisReply> Wait() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return result.has_value(); });
    return std::move(*result);
  }
};

class ClientCore final : public Link {
 public:
  using Callback = RedisClient::Callback;
  ClientCore(asio::io_context& ioc, RedisOptions o)
      : Link(ioc, std::move(o)),
        dead_after_(std::max<milliseconds>(milliseconds(1000), 10 * opt_.command_timeout)) {}

  // Queues commands with one callback (a CallMany group gets its replies as one kArray). On
  // failure `done` is left untouched and the error returned, for the caller to deliver.
  std::optional<Error> Enqueue(const std::vector<std::string>* cmds, size_t n, bool group,
                               Callback& done) {
    for (size_t i = 0; i < n; ++i)  // Redis answers nothing to an empty array: the FIFO would slip
      if (cmds[i].empty()) return MakeError(Errc::kBadInput, "bad_command", "empty redis command");
    bool post = false;
    {
      std::lock_guard lock(mu_);
      if (closing_) return Unavailable("redis client closed");
      if (!ready_) return Unavailable("redis not connected");
      if (owed_ + n > opt_.max_pending) return Unavailable("too many pending redis commands");
      for (size_t i = 0; i < n; ++i) EncodeCommand(cmds[i], &out_);
      // Taken under the lock so deadlines never decrease along the FIFO (see OnTick).
      Push(Clock::now() + opt_.command_timeout, std::move(done), n, group);
      if (!writing_ && !flush_posted_) post = flush_posted_ = true;
    }
    if (post) {
      auto self = std::static_pointer_cast<ClientCore>(shared_from_this());
      asio::post(ioc_, [self = std::move(self)] { self->Flush(); });
    }
    return std::nullopt;
  }

  bool Ready() const { return ready_.load(std::memory_order_relaxed); }

 private:
  struct Pending {
    Clock::time_point deadline;
    Callback done;       // emptied when the deadline fails it: its reply is then discarded
    uint32_t remaining;  // replies still owed
    bool group;
    std::vector<RedisReply> replies;  // a group's replies so far
  };

  void BeforeClose() override {
    std::lock_guard lock(mu_);
    ready_ = false;
  }

  void Flush() {
    std::lock_guard lock(mu_);
    flush_posted_ = false;
    WriteLocked();
  }

  // Under mu_.
  void Push(Clock::time_point deadline, Callback&& done, size_t n, bool group) {
    fifo_.push_back(Pending{deadline, std::move(done), static_cast<uint32_t>(n), group, {}});
    owed_ += n;
  }

  void OnUp() override {
    if (!opt_.flush_on_reconnect || !was_up_) {
      was_up_ = true;
      std::lock_guard lock(mu_);
      ready_ = !closing_;
      return;
    }
    // A node that was away missed invalidations: empty it before any caller may read from it.
    // Callers are still refused (ready_ is false), so FLUSHALL is alone in the FIFO.
    std::lock_guard lock(mu_);
    EncodeCommand({"FLUSHALL"}, &out_);
    Push(
        Clock::now() + std::max(opt_.command_timeout, opt_.connect_timeout),
        [this](Result<RedisReply> r) { OnFlushed(r); }, 1, false);
    WriteLocked();
  }

  // Runs on the io thread from a handler (or DoClose) that holds a reference, so `this` lives.
  void OnFlushed(const Result<RedisReply>& r) {
    if (!r.ok() || r->type != RedisReply::Type::kString || r->str != "OK")
      return Drop("FLUSHALL on reconnect failed");
    ++flushes_;
    std::lock_guard lock(mu_);
    ready_ = !closing_;
  }

  void OnReplies(std::vector<RedisReply>& replies) override {
    bool stray = false;
    {
      std::lock_guard lock(mu_);
      for (auto& r : replies) {
        if (fifo_.empty()) {
          stray = true;
          break;
        }
        Pending& p = fifo_.front();
        --owed_;
        if (p.group) p.replies.push_back(std::move(r));
        if (--p.remaining > 0) continue;
        if (p.done && p.group) {
          RedisReply all;
          all.type = RedisReply::Type::kArray;
          all.elements = std::move(p.replies);
          ready_calls_.emplace_back(std::move(p.done), std::move(all));
        } else if (p.done) {
          ready_calls_.emplace_back(std::move(p.done), std::move(r));
        }
        fifo_.pop_front();
        if (unexpired_ > 0) --unexpired_;
      }
    }
    // Outside the lock: callbacks may queue more commands.
    for (auto& [done, result] : ready_calls_) done(std::move(result));
    ready_calls_.clear();
    if (stray) Drop("reply without a command");
  }

  // Deadlines only grow along the FIFO, so the scan stops at the first live entry and each
  // entry is looked at once: the check costs nothing while calls are fast.
  void OnTick() override {
    const auto now = Clock::now();
    std::vector<Callback> expired;
    bool dead = false;
    {
      std::lock_guard lock(mu_);
      while (unexpired_ < fifo_.size() && fifo_[unexpired_].deadline <= now) {
        Pending& p = fifo_[unexpired_++];
        if (p.done) expired.push_back(std::move(p.done));
        p.done = nullptr;
      }
      dead = !fifo_.empty() && now - fifo_.front().deadline > dead_after_;
    }
    timeouts_ += expired.size();
    for (auto& done : expired) done(Unavailable("redis command timed out"));
    if (dead) Drop("redis stopped answering");
  }

  milliseconds TickPeriod() const override {
    return std::max(milliseconds(5), opt_.command_timeout / 2);
  }

  void OnDown(const std::string& why) override {
    std::deque<Pending> lost;
    {
      std::lock_guard lock(mu_);
      ready_ = false;
      lost.swap(fifo_);
      owed_ = 0;
      unexpired_ = 0;
    }
    for (auto& p : lost)
      if (p.done) p.done(Unavailable(why));
  }

  const milliseconds dead_after_;
  bool was_up_ = false;                                               // io thread
  std::vector<std::pair<Callback, Result<RedisReply>>> ready_calls_;  // io thread, reused

  // Guarded by mu_ (shared with callers):
  std::atomic<bool> ready_{false};  // connected (and flushed): callers' commands are accepted
  std::deque<Pending> fifo_;        // queued and in-flight commands, in wire order
  size_t unexpired_ = 0;            // fifo_[0, unexpired_) are past their deadline
  size_t owed_ = 0;                 // replies owed, for max_pending
  bool flush_posted_ = false;
};

class RedisClientImpl final : public RedisClient {
 public:
  explicit RedisClientImpl(std::shared_ptr<ClientCore> core) : core_(std::move(core)) {}
  ~RedisClientImpl() override { core_->Close(); }

  Result<RedisReply> Call(std::vector<std::string> argv) override {
    if (auto e = BlockingForbidden()) return *e;
    Waiter w;
    Callback done = [&w](Result<RedisReply> r) { w.Set(std::move(r)); };
    if (auto e = core_->Enqueue(&argv, 1, false, done)) return *e;
    return w.Wait();
  }

  Result<std::vector<RedisReply>> CallMany(std::vector<std::vector<std::string>> cmds) override {
    if (cmds.empty()) return std::vector<RedisReply>{};
    if (auto e = BlockingForbidden()) return *e;
    Waiter w;
    Callback done = [&w](Result<RedisReply> r) { w.Set(std::move(r)); };
    if (auto e = core_->Enqueue(cmds.data(), cmds.size(), true, done)) return *e;
    auto r = w.Wait();
    if (!r.ok()) return r.error();
    return std::move(r->elements);
  }

  void Send(std::vector<std::string> argv, Callback done) override {
    auto e = core_->Enqueue(&argv, 1, false, done);
    if (e && done)
      asio::post(core_->Ioc(), [done = std::move(done), e = std::move(*e)] { done(e); });
  }

  bool Connected() const override { return core_->Ready(); }

  RedisClientStats Stats() const override {
    return {core_->connects_.load(), core_->disconnects_.load(), core_->timeouts_.load(),
            core_->flushes_.load()};
  }

  void Close() override { core_->Close(); }

 private:
  // A blocking call on the io thread would wait for a reply only that thread can deliver.
  std::optional<Error> BlockingForbidden() const {
    if (!core_->IoThread()) return std::nullopt;
    return MakeError(Errc::kInternal, "blocking_on_io_thread",
                     "RedisClient::Call on the io thread; use Send");
  }

  std::shared_ptr<ClientCore> core_;
};

// Pub/sub: SUBSCRIBE on every connection, pushes to on_message, PING as a liveness probe (a
// subscribed connection is otherwise silent, and a peer that vanished without a FIN would never
// be noticed). Everything but Subscribed() and Close() runs on the io thread.
class SubscriberCore final : public Link {
 public:
  SubscriberCore(asio::io_context& ioc, RedisOptions o, std::vector<std::string> channels,
                 RedisSubscriber::OnMessage on_message)
      : Link(ioc, std::move(o)),
        channels_(std::move(channels)),
        on_message_(std::move(on_message)) {}

  bool Subscribed() const { return subscribed_.load(std::memory_order_relaxed); }

 private:
  void OnUp() override {
    if (channels_.empty()) {
      subscribed_ = true;
      return;
    }
    std::vector<std::string> cmd{"SUBSCRIBE"};
    cmd.insert(cmd.end(), channels_.begin(), channels_.end());
    Write(cmd);
  }

  void Write(const std::vector<std::string>& cmd) {
    std::lock_guard lock(mu_);
    EncodeCommand(cmd, &out_);
    WriteLocked();
  }

  void OnReplies(std::vector<RedisReply>& replies) override {
    for (auto& r : replies) {
      if (stopping_ || !conn_) return;  // on_message closed the subscriber
      if (r.is_error()) return Drop("redis refused SUBSCRIBE: " + r.str);
      if (r.type != RedisReply::Type::kArray || r.elements.empty()) continue;
      const std::string& kind = r.elements[0].str;
      if (kind == "message" && r.elements.size() == 3) {
        on_message_(r.elements[1].str, r.elements[2].str);
      } else if (kind == "subscribe") {
        if (++confirmed_ == channels_.size()) subscribed_ = true;
      } else if (kind == "pong") {
        awaiting_pong_ = false;
      }
    }
  }

  void OnTick() override {
    if (!conn_) return;
    if (awaiting_pong_) return Drop("no answer to PING");
    awaiting_pong_ = true;
    Write({"PING"});
  }

  milliseconds TickPeriod() const override {
    return std::max<milliseconds>(milliseconds(1000), 10 * opt_.command_timeout);
  }

  void OnDown(const std::string&) override {
    subscribed_ = false;
    confirmed_ = 0;
    awaiting_pong_ = false;
  }

  const std::vector<std::string> channels_;
  const RedisSubscriber::OnMessage on_message_;
  std::atomic<bool> subscribed_{false};
  size_t confirmed_ = 0;
  bool awaiting_pong_ = false;
};

class RedisSubscriberImpl final : public RedisSubscriber {
 public:
  explicit RedisSubscriberImpl(std::shared_ptr<SubscriberCore> core) : core_(std::move(core)) {}
  ~RedisSubscriberImpl() override { core_->Close(); }
  bool Subscribed() const override { return core_->Subscribed(); }
  void Close() override { core_->Close(); }

 private:
  std::shared_ptr<SubscriberCore> core_;
};

}  // namespace

std::unique_ptr<RedisClient> RedisClient::Create(asio::io_context& ioc, RedisOptions options) {
  auto core = std::make_shared<ClientCore>(ioc, std::move(options));
  core->Start();
  return std::make_unique<RedisClientImpl>(std::move(core));
}

std::unique_ptr<RedisSubscriber> RedisSubscriber::Create(asio::io_context& ioc,
                                                         RedisOptions options,
                                                         std::vector<std::string> channels,
                                                         OnMessage on_message) {
  auto core = std::make_shared<SubscriberCore>(ioc, std::move(options), std::move(channels),
                                               std::move(on_message));
  core->Start();
  return std::make_unique<RedisSubscriberImpl>(std::move(core));
}

}  // namespace millions::cache
