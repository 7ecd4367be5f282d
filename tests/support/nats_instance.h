// NatsInstance: a real, throwaway nats-server with JetStream for tests, on a free loopback port
// with its own store directory; Restart keeps port and store (a server that comes back), Kill
// is SIGKILL. Stopped and deleted when the object goes.
// Thread-safety: none; one per test. Ownership: owns the server process and directory.
#pragma once

#include <sys/types.h>

#include <string>

namespace millions::testing {

class NatsInstance {
 public:
  // Throws std::runtime_error when the server does not answer within 10 s.
  NatsInstance();
  ~NatsInstance();
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  void Kill();   // SIGKILL, and reaped
  void Start();  // after Kill: the same port and store
  void Restart() {
    Kill();
    Start();
  }

 private:
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = 0;
};

}  // namespace millions::testing
