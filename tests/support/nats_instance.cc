#include "nats_instance.h"

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

bool Accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

}  // namespace

NatsInstance::NatsInstance() {
  char tmpl[] = "/tmp/millions-nats-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  port_ = PgInstance::FreePort();
  Start();
}

NatsInstance::~NatsInstance() {
  Kill();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void NatsInstance::Start() {
  std::string port = std::to_string(port_), store = dir_ + "/store", log = dir_ + "/log";
  std::vector<std::string> args = {"nats-server", "-js", "-sd", store, "-a",
                                   "127.0.0.1",   "-p",  port,  "-l",  log};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // fork+exec rather than posix_spawn: the server must die with the test even when the test
  // dies without running destructors (a sanitizer abort), or it keeps ctest's output pipe open.
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execvp("nats-server", argv.data());
    _exit(127);
  }
  for (int i = 0; i < 200; ++i) {
    if (Accepts(port_)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("nats-server did not start; its log is " + log);
}

void NatsInstance::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = 0;
}

}  // namespace millions::testing
