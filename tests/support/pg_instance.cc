#include "pg_instance.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <stdexcept>

namespace millions::testing {

int PgInstance::FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

std::string PgInstance::Run(const std::string& cmd) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen((cmd + " 2>&1").c_str(), "r"), pclose);
  if (!p) throw std::runtime_error("cannot run " + cmd);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p.get())) > 0) out.append(buf.data(), n);
  int rc = pclose(p.release());
  if (rc != 0) throw std::runtime_error(cmd + " failed:\n" + out);
  return out;
}

PgInstance::PgInstance() {
  char tmpl[] = "/tmp/millions-pg-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  if (geteuid() == 0) {
    as_ = "runuser -u postgres -- ";
    Run("chown postgres " + dir_);
  }
  port_ = FreePort();
  Run(as_ + bin_ + "/initdb -D " + dir_ + "/data -A trust -U millions -E UTF8 --no-sync");
  Run(as_ + bin_ + "/pg_ctl -D " + dir_ + "/data -l " + dir_ + "/log -w -t 30 -o \"-p " +
      std::to_string(port_) + " -k " + dir_ +
      " -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100\" start");
}

PgInstance::~PgInstance() {
  try {
    Run(as_ + bin_ + "/pg_ctl -D " + dir_ + "/data -m immediate -w stop");
  } catch (...) {
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string PgInstance::Conninfo(const std::string& database) {
  static std::set<std::string> made;
  std::string base = "host=127.0.0.1 port=" + std::to_string(port_) + " user=millions";
  if (!made.count(database)) {
    Run(bin_ + "/psql \"" + base + " dbname=postgres\" -qAt -c 'CREATE DATABASE " + database + "'");
    made.insert(database);
  }
  return base + " dbname=" + database;
}

}  // namespace millions::testing
