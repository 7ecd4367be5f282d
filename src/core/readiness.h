// ReadyFd: reads from a TCP socket only when the kernel has said that data came, as nginx and
// HAProxy do. Asio tries every read at once (a "speculative" recv) and pays a failed recv
// (EAGAIN) each time the peer has not answered yet: on the balancer that is two syscalls of the
// six a proxied request costs (the client's next request, the backend's answer), on a web node
// one of three (docs/performance.md). Here each io_context has one edge-triggered epoll set of
// its own (a service on the context) watched through Asio's reactor; a socket's "ready" flag is
// set by that set's events and cleared by a short read, and a read waits without a syscall when
// the flag is clear. A caller that makes its common writes on the descriptor too may take the
// socket out of Asio's reactor (release()) so that only this set watches it, and give it back
// (assign) before any Asio operation: http_server_impl.h (ServerConn) and upstream.cc
// (PooledConn) do.
// Thread-safety: only for an io_context run by one thread (the poller and every ReadyFd of the
// context run on that thread, unlocked); the caller knows its threading and attaches only then.
// Ownership: a ReadyFd borrows the socket's descriptor, which must stay open until the ReadyFd
// is destroyed or detached; the poller belongs to the io_context.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>
#include <cerrno>
#include <chrono>
#include <memory>

namespace millions::net {

class Poller;

class ReadyFd {
 public:
  using Clock = std::chrono::steady_clock;
  ReadyFd() = default;
  ReadyFd(const ReadyFd&) = delete;
  ReadyFd& operator=(const ReadyFd&) = delete;
  ~ReadyFd();

  // Watches `fd` (a connected, non-blocking TCP socket) with `ioc`'s poller. False when it
  // cannot (the caller then reads through Asio as before).
  bool Attach(boost::asio::io_context& ioc, int fd);
  // Stops watching; call before the descriptor is closed. A waiting Read ends with
  // operation_aborted.
  void Detach();
  bool attached() const { return poller_ != nullptr; }

  // Reads what has arrived into `b` (at least one byte), waiting for the poller first when
  // the last read drained the socket. Returns the byte count; 0 with `ec` set on end of stream
  // (asio::error::eof), on an error, on Cancel (operation_aborted) or past `deadline`
  // (asio::error::timed_out).
  boost::asio::awaitable<size_t> Read(boost::asio::mutable_buffer b, boost::system::error_code& ec,
                                      Clock::time_point deadline = Clock::time_point::max());
  // Ends a waiting Read with operation_aborted (a request deadline, a drain). No-op otherwise.
  void Cancel();

  struct Waiter;  // a waiting Read's state (readiness.cc)

 private:
  friend class Poller;
  Poller* poller_ = nullptr;
  int fd_ = -1;
  bool ready_ = true;  // unknown at first: try the read
  // The peer shut down or the socket failed: no further event will come, so every read tries
  // (it ends with the rest of the data, then end of stream or the error).
  bool hup_ = false;
  Waiter* waiter_ = nullptr;
};

// A coroutine's wait for another coroutine's word, on the same one-thread context (upstream's
// pipelined connections: whose turn it is to read an answer). The wait is held by the
// context's poller, so a context destroyed with waits pending frees them (Poller::shutdown),
// as it does waiting reads. A Signal that comes before the Wait is kept for it.
class Turn {
 public:
  Turn() = default;
  Turn(const Turn&) = delete;
  Turn& operator=(const Turn&) = delete;
  ~Turn();

  // Suspends until Signal (at once if it came already); `ec` is the Signal's.
  boost::asio::awaitable<void> Wait(boost::asio::io_context& ioc, boost::system::error_code& ec);
  // Ends the wait with `ec`: resumed here and now (`now`, on the context's thread), or posted.
  void Signal(boost::system::error_code ec, bool now);

  struct Waiter;  // a waiting coroutine's state (readiness.cc)

 private:
  friend class Poller;
  Poller* poller_ = nullptr;
  Waiter* waiter_ = nullptr;
  bool signaled_ = false;
  boost::system::error_code ec_;
};

// A plain socket read through the poller can leave Asio's reactor, so that only the poller's
// set watches it (ServerConn, PooledConn): ReleaseSocket moves `s`'s descriptor into `raw` (one
// epoll_ctl), remembering its protocol; false when it cannot (it stays with Asio, raw < 0).
// RestoreSocket gives it back before any Asio operation; when that fails the descriptor stays
// in `raw` (Asio's operations on `s` then end with bad_descriptor) for its owner to close.
bool ReleaseSocket(boost::asio::ip::tcp::socket& s, int& raw, boost::asio::ip::tcp& protocol);
void RestoreSocket(boost::asio::ip::tcp::socket& s, int& raw, const boost::asio::ip::tcp& protocol);

// One non-blocking gather send of `bufs` (up to four buffers; the rest is the caller's next
// send) on `fd`, a socket out of Asio's reactor: the bytes taken, 0 with `ec` set on an error
// (EAGAIN included). Used by ServerConn and PooledConn for their common writes.
template <class Buffers>
size_t SendNow(int fd, const Buffers& bufs, boost::system::error_code& ec) {
  iovec iov[4];
  size_t k = 0;
  for (auto it = boost::asio::buffer_sequence_begin(bufs);
       it != boost::asio::buffer_sequence_end(bufs) && k < 4; ++it) {
    boost::asio::const_buffer b = *it;
    if (b.size() > 0) iov[k++] = {const_cast<void*>(b.data()), b.size()};
  }
  msghdr m{};
  m.msg_iov = iov;
  m.msg_iovlen = k;
  for (;;) {
    ssize_t n = ::sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    ec = boost::system::error_code(errno, boost::system::system_category());
    return 0;
  }
}

}  // namespace millions::net
