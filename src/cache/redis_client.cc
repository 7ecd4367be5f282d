// RedisClient on Boost.Asio: pipelining (commands queued while a write is in flight go out in
// the next single write; replies complete callers in FIFO order), per-call deadlines off one
// ticker, and FLUSHALL before use after a reconnect. The connection life cycle is Link's
// (redis_link.h), which also states the threading and ownership rules.
#include "cache/redis_link.h"

namespace millions::cache {
namespace detail {
namespace {

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

}  // namespace
}  // namespace detail

std::unique_ptr<RedisClient> RedisClient::Create(boost::asio::io_context& ioc,
                                                 RedisOptions options) {
  auto core = std::make_shared<detail::ClientCore>(ioc, std::move(options));
  core->Start();
  return std::make_unique<detail::RedisClientImpl>(std::move(core));
}

}  // namespace millions::cache
