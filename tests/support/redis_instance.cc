#include "redis_instance.h"

#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <thread>
#include <vector>

#include "pg_instance.h"

namespace millions::testing {
namespace {

// PING on a fresh blocking connection: true on "+PONG".
bool Pong(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  char buf[16] = {};
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
            send(fd, "PING\r\n", 6, MSG_NOSIGNAL) == 6 && recv(fd, buf, 7, 0) >= 5 &&
            std::string(buf, 5) == "+PONG";
  close(fd);
  return ok;
}

}  // namespace

RedisInstance::RedisInstance(bool aof, std::vector<std::string> extra)
    : aof_(aof), extra_(std::move(extra)) {
  char tmpl[] = "/tmp/millions-redis-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  port_ = PgInstance::FreePort();
}

RedisInstance::~RedisInstance() {
  Kill();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string RedisInstance::Start() {
  std::string log = dir_ + "/redis.log";
  std::vector<std::string> args = {"redis-server",
                                   "--port",
                                   std::to_string(port_),
                                   "--bind",
                                   "127.0.0.1",
                                   "--save",
                                   "",
                                   "--appendonly",
                                   aof_ ? "yes" : "no",
                                   "--appendfsync",
                                   "everysec",
                                   "--dir",
                                   dir_,
                                   "--logfile",
                                   log};
  args.insert(args.end(), extra_.begin(), extra_.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) return "fork failed";
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execvp("redis-server", argv.data());
    _exit(127);
  }
  for (int i = 0; i < 250; ++i) {
    if (Pong(port_)) return "";
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = 0;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Kill();
  return "redis-server did not start; see " + log;
}

void RedisInstance::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = 0;
}

}  // namespace millions::testing
