#include "core/readiness.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <optional>
#include <unordered_set>
#include <vector>

namespace millions::net {

namespace asio = boost::asio;
using boost::system::error_code;

// Boost 1.81's any_completion_handler move-assigns through a copy of an lvalue, which wraps
// itself without end: it is only ever move-constructed here (optional::emplace, returns).
struct ReadyFd::Waiter {
  std::optional<asio::any_completion_handler<void(error_code)>> handler;
  Clock::time_point deadline;
  size_t slot = 0;  // index in Poller::timed_ while it has a deadline
};

struct Turn::Waiter {
  std::optional<asio::any_completion_handler<void(error_code)>> handler;
};

// One per io_context: an edge-triggered epoll set of the attached sockets, whose own
// descriptor waits in Asio's reactor. Its wait is armed only while a socket is attached, so a
// context with none can still run out of work and return from run().
class Poller : public asio::execution_context::service {
 public:
  using key_type = Poller;
  static asio::execution_context::id id;

  explicit Poller(asio::execution_context& ctx)
      : service(ctx),
        ioc_(static_cast<asio::io_context&>(ctx)),
        desc_(ioc_),
        timer_(ioc_),
        epfd_(epoll_create1(EPOLL_CLOEXEC)) {
    if (epfd_ >= 0) desc_.assign(epfd_);  // closed with desc_
  }

  bool Add(ReadyFd* r) {
    if (epfd_ < 0) return false;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = r;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, r->fd_, &ev) != 0) return false;
    members_.insert(r);
    if (attached_++ == 0) ArmWait();
    return true;
  }

  void Remove(ReadyFd* r) {
    epoll_ctl(epfd_, EPOLL_CTL_DEL, r->fd_, nullptr);
    members_.erase(r);
    Wake(r, asio::error::operation_aborted, false);
    if (--attached_ == 0) {
      error_code ec;
      desc_.cancel(ec);
    }
  }

  void Wait(ReadyFd* r, ReadyFd::Waiter* w) {
    r->waiter_ = w;
    if (w->deadline == ReadyFd::Clock::time_point::max()) return;
    w->slot = timed_.size();
    timed_.push_back(r);
    if (!timer_armed_) ArmTimer();
  }

  // Ends r's wait with `ec`: posted, or (from the poller's own handler, after every event was
  // read) run at once.
  boost::asio::any_completion_handler<void(error_code)> Take(ReadyFd* r) {
    ReadyFd::Waiter* w = r->waiter_;
    if (w->deadline != ReadyFd::Clock::time_point::max()) {
      ReadyFd* last = timed_.back();
      if (last != r) {
        timed_[w->slot] = last;
        last->waiter_->slot = w->slot;
      }
      timed_.pop_back();
    }
    r->waiter_ = nullptr;
    asio::any_completion_handler<void(error_code)> h(std::move(*w->handler));
    w->handler.reset();
    return h;
  }

  void Wake(ReadyFd* r, error_code ec, bool now) {
    if (!r->waiter_) return;
    auto h = Take(r);
    if (now) {
      std::move(h)(ec);
    } else {
      asio::post(ioc_, [h = std::move(h), ec]() mutable { std::move(h)(ec); });
    }
  }

  // The context is going away with reads still waiting here: their handlers own the coroutines
  // that wait (whose frames hold the Waiter that holds the handler), so nothing else would ever
  // free them. Destroyed without being called, as Asio destroys its own pending operations;
  // taken out first, since a frame's destruction may detach sockets from this set.
  void shutdown() override {
    error_code ec;
    timer_.cancel();
    desc_.cancel(ec);
    std::vector<asio::any_completion_handler<void(error_code)>> pending;
    pending.reserve(members_.size());
    for (ReadyFd* r : members_)
      if (r->waiter_) pending.push_back(Take(r));
    std::vector<Turn*> turns(turns_.begin(), turns_.end());
    for (Turn* t : turns) pending.push_back(TakeTurn(t));
    pending.clear();
  }

  void Park(Turn* t, Turn::Waiter* w) {
    t->waiter_ = w;
    t->poller_ = this;
    turns_.insert(t);
  }

  asio::any_completion_handler<void(error_code)> TakeTurn(Turn* t) {
    turns_.erase(t);
    Turn::Waiter* w = t->waiter_;
    t->waiter_ = nullptr;
    t->poller_ = nullptr;
    asio::any_completion_handler<void(error_code)> h(std::move(*w->handler));
    w->handler.reset();
    return h;
  }

  void Post(asio::any_completion_handler<void(error_code)> h, error_code ec) {
    asio::post(ioc_, [h = std::move(h), ec]() mutable { std::move(h)(ec); });
  }

 private:
  void ArmWait() {
    if (waiting_) return;
    waiting_ = true;
    desc_.async_wait(asio::posix::stream_descriptor::wait_read, [this](const error_code& ec) {
      waiting_ = false;
      if (ec && ec != asio::error::operation_aborted) return;
      if (!ec) OnEvents();
      if (attached_ > 0) ArmWait();
    });
  }

  // Reads the set's events and resumes their waiters, then reads again for what came in
  // meanwhile (the waiters' sends make their peers answer), up to kRounds times: each round
  // that finds events saves a trip through Asio's epoll_wait and the re-arming epoll_ctl
  // that a wait on the set costs.
  void OnEvents() {
    constexpr int kRounds = 16;
    for (int round = 0; round < kRounds; ++round) {
      if (Round() == 0) break;
    }
  }

  // One epoll_wait on the set: marks its sockets ready and resumes their waiters; the count
  // of events. Every event is read before any waiter runs (a waiter may detach another
  // socket); a fixed array, as any_completion_handler must not be moved by assignment (Waiter).
  int Round() {
    constexpr int kInline = 64;
    std::optional<asio::any_completion_handler<void(error_code)>> woken[kInline];
    int k = 0;
    epoll_event evs[kInline];
    int n;
    do {
      n = epoll_wait(epfd_, evs, kInline, 0);
    } while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; ++i) {
      auto* r = static_cast<ReadyFd*>(evs[i].data.ptr);
      r->ready_ = true;
      if (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) r->hup_ = true;
      if (r->waiter_) woken[k++].emplace(Take(r));
    }
    for (int i = 0; i < k; ++i) std::move (*woken[i])(error_code());
    return n < 0 ? 0 : n;
  }

  void ArmTimer() {
    timer_armed_ = true;
    timer_.expires_after(std::chrono::milliseconds(100));
    timer_.async_wait([this](const error_code& ec) {
      timer_armed_ = false;
      if (ec) return;
      auto now = ReadyFd::Clock::now();
      for (size_t i = 0; i < timed_.size();) {
        ReadyFd* r = timed_[i];
        if (r->waiter_->deadline <= now) {
          Wake(r, asio::error::timed_out, false);  // moves the last one into slot i
        } else {
          ++i;
        }
      }
      if (!timed_.empty()) ArmTimer();
    });
  }

  asio::io_context& ioc_;
  asio::posix::stream_descriptor desc_;
  asio::steady_timer timer_;
  int epfd_;
  size_t attached_ = 0;
  bool waiting_ = false;
  bool timer_armed_ = false;
  std::vector<ReadyFd*> timed_;           // sockets waiting with a deadline
  std::unordered_set<ReadyFd*> members_;  // every attached socket (for shutdown)
  std::unordered_set<Turn*> turns_;       // every waiting Turn (for shutdown)
};

asio::execution_context::id Poller::id;

bool ReleaseSocket(asio::ip::tcp::socket& s, int& raw, asio::ip::tcp& protocol) {
  if (raw >= 0) return false;
  error_code ec;
  protocol = s.local_endpoint(ec).protocol();
  if (ec) return false;
  int fd = s.release(ec);
  if (ec || fd < 0) return false;
  raw = fd;
  return true;
}

void RestoreSocket(asio::ip::tcp::socket& s, int& raw, const asio::ip::tcp& protocol) {
  if (raw < 0) return;
  error_code ec;
  s.assign(protocol, raw, ec);
  if (!ec) raw = -1;
}

ReadyFd::~ReadyFd() { Detach(); }

bool ReadyFd::Attach(asio::io_context& ioc, int fd) {
  if (poller_ || fd < 0) return false;
  Poller& p = asio::use_service<Poller>(ioc);
  fd_ = fd;
  ready_ = true;
  hup_ = false;
  if (!p.Add(this)) {
    fd_ = -1;
    return false;
  }
  poller_ = &p;
  return true;
}

void ReadyFd::Detach() {
  if (!poller_) return;
  poller_->Remove(this);
  poller_ = nullptr;
  fd_ = -1;
}

void ReadyFd::Cancel() {
  if (poller_) poller_->Wake(this, asio::error::operation_aborted, false);
}

Turn::~Turn() {
  if (poller_) poller_->TakeTurn(this);  // dropped uncalled: only a frame being destroyed
}

namespace {

struct TurnInit {
  Poller* poller;
  Turn* turn;
  Turn::Waiter* w;
  template <class Handler>
  void operator()(Handler&& h) const {
    w->handler.emplace(std::forward<Handler>(h));
    poller->Park(turn, w);
  }
};

}  // namespace

asio::awaitable<void> Turn::Wait(asio::io_context& ioc, error_code& ec) {
  if (!signaled_) {
    Waiter w;
    error_code wec;
    auto token = asio::redirect_error(asio::use_awaitable, wec);
    co_await asio::async_initiate<decltype(token), void(error_code)>(
        TurnInit{&asio::use_service<Poller>(ioc), this, &w}, token);
  }
  signaled_ = false;
  ec = ec_;
  ec_ = {};
}

void Turn::Signal(error_code ec, bool now) {
  ec_ = ec;
  if (!poller_) {
    signaled_ = true;  // for the Wait to come
    return;
  }
  signaled_ = true;
  Poller* p = poller_;
  auto h = p->TakeTurn(this);
  if (now) {
    std::move(h)(error_code());
  } else {
    p->Post(std::move(h), error_code());
  }
}

namespace {

struct WaitInit {
  Poller* poller;
  ReadyFd* fd;
  ReadyFd::Waiter* w;
  template <class Handler>
  void operator()(Handler&& h) const {
    w->handler.emplace(std::forward<Handler>(h));
    poller->Wait(fd, w);
  }
};

}  // namespace

asio::awaitable<size_t> ReadyFd::Read(asio::mutable_buffer b, error_code& ec,
                                      Clock::time_point deadline) {
  ec = {};
  for (;;) {
    // Detached while this read waited (the connection is being closed): the descriptor may
    // already belong to someone else.
    if (!poller_) {
      ec = asio::error::operation_aborted;
      co_return 0;
    }
    if (ready_ || hup_) {
      ssize_t n = ::recv(fd_, b.data(), b.size(), MSG_DONTWAIT);
      if (n > 0) {
        // A short read drained the socket: the next one waits for the kernel's word.
        if (static_cast<size_t>(n) < b.size()) ready_ = false;
        co_return static_cast<size_t>(n);
      }
      if (n == 0) {
        ec = asio::error::eof;
        co_return 0;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        ec = error_code(errno, boost::system::system_category());
        co_return 0;
      }
      ready_ = false;
    }
    Waiter w;
    w.deadline = deadline;
    error_code wec;
    auto token = asio::redirect_error(asio::use_awaitable, wec);
    co_await asio::async_initiate<decltype(token), void(error_code)>(WaitInit{poller_, this, &w},
                                                                     token);
    if (wec) {
      ec = wec;
      co_return 0;
    }
  }
}

}  // namespace millions::net
