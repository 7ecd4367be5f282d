// RedisClient: one pipelined connection to one Redis node, on Boost.Asio, with timeouts and
// reconnection with backoff. Commands from many threads share the connection: whatever is queued
// while a write is in flight goes out in the next single write, and replies complete callers in
// order (RESP replies are FIFO).
// Down and back: while disconnected, calls fail at once (503 `cache_unavailable`); the client
// reconnects in the background with exponential backoff. When `flush_on_reconnect` is set, a
// connection made after a lost one first runs FLUSHALL (so a node that comes back serves no entry
// that missed invalidations while it was away) before any caller's command. With a password, every
// connection first authenticates (AUTH user password) and is up only once Redis accepts it.
// Thread-safety: every method may be called from any thread; Call/CallMany block and must not be
// called on the io_context's own thread (use Send there). Ownership: borrows the io_context, which
// must be run by some thread for the client's life and outlive it; Close() before destruction
// stops reconnecting and fails what is pending.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cache/resp.h"
#include "core/result.h"

namespace boost::asio {
class io_context;
}

namespace millions::cache {

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::chrono::milliseconds connect_timeout{500};
  std::chrono::milliseconds command_timeout{100};  // per call, from the moment it is queued
  std::chrono::milliseconds backoff_min{50};
  std::chrono::milliseconds backoff_max{2000};
  size_t max_pending = 100'000;  // queued + in flight; beyond it calls fail at once
  bool flush_on_reconnect = false;
  // ACL credentials, sent as AUTH on every connection before anything else; no password: none.
  std::string user, password;
};

struct RedisClientStats {
  uint64_t connects = 0;  // successful connections, the first included
  uint64_t disconnects = 0;
  uint64_t timeouts = 0;
  uint64_t flushes = 0;  // FLUSHALLs run on reconnect
};

class RedisClient {
 public:
  using Callback = std::function<void(Result<RedisReply>)>;
  // Starts connecting at once, in the background.
  static std::unique_ptr<RedisClient> Create(boost::asio::io_context& ioc, RedisOptions options);
  virtual ~RedisClient() = default;
  // One command; blocks until its reply, the timeout or a connection loss. A Redis error reply
  // is a successful Result holding a kError reply; transport failures are 503 Errors.
  virtual Result<RedisReply> Call(std::vector<std::string> argv) = 0;
  // Several commands written together; their replies in order (all or an Error).
  virtual Result<std::vector<RedisReply>> CallMany(std::vector<std::vector<std::string>> cmds) = 0;
  // Asynchronous form: `done` runs exactly once, on the io_context's thread.
  virtual void Send(std::vector<std::string> argv, Callback done) = 0;
  // True when a connection is up (and its reconnect flush, if any, has completed).
  virtual bool Connected() const = 0;
  virtual RedisClientStats Stats() const = 0;
  // Stops reconnecting, closes the socket and fails pending calls. Idempotent; blocks until done.
  virtual void Close() = 0;
};

// RedisSubscriber: a connection in SUBSCRIBE mode (pub/sub), re-subscribing after every
// reconnect. `on_message(channel, payload)` runs on the io_context's thread.
// Thread-safety and ownership as RedisClient.
class RedisSubscriber {
 public:
  using OnMessage = std::function<void(const std::string& channel, const std::string& payload)>;
  static std::unique_ptr<RedisSubscriber> Create(boost::asio::io_context& ioc, RedisOptions options,
                                                 std::vector<std::string> channels,
                                                 OnMessage on_message);
  virtual ~RedisSubscriber() = default;
  virtual bool Subscribed() const = 0;  // connected and SUBSCRIBE acknowledged
  virtual void Close() = 0;
};

}  // namespace millions::cache
