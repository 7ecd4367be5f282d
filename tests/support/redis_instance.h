// RedisInstance: a real, throwaway redis-server for tests, on a free loopback port in its own
// directory; Start again after Kill keeps the port and the directory (with `aof`, its
// append-only file: a server that comes back with what it had). Kill is SIGKILL. The server dies
// with the test process even when that dies without running destructors.
// Thread-safety: none; one per test suite. Ownership: owns the process and the directory.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace millions::testing {

class RedisInstance {
 public:
  // aof: appendonly yes, appendfsync everysec (how a timeline node runs); else no persistence.
  // `extra`: more arguments for redis-server (e.g. {"--replicaof", "127.0.0.1 6379"}).
  explicit RedisInstance(bool aof = false, std::vector<std::string> extra = {});
  ~RedisInstance();
  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  bool running() const { return pid_ > 0; }
  // Empty once it answers PING, else what went wrong (with where its log is).
  std::string Start();
  void Kill();  // SIGKILL, and reaped

 private:
  bool aof_;
  std::vector<std::string> extra_;
  int port_ = 0;
  std::string dir_;
  pid_t pid_ = 0;
};

}  // namespace millions::testing
