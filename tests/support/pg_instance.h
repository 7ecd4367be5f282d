// PgInstance: a real, throwaway PostgreSQL server for tests, on a free loopback port with its
// own data directory, stopped and deleted when the object goes. PostgreSQL refuses to run as
// root, so as root it runs as Debian's `postgres` user.
// Thread-safety: none; one per test suite. Ownership: owns the server process and directory.
#pragma once

#include <string>

namespace millions::testing {

class PgInstance {
 public:
  // Throws std::runtime_error when the server cannot start (with its log).
  PgInstance();
  ~PgInstance();
  int port() const { return port_; }
  // A libpq conninfo for a database of this server, creating the database if needed.
  std::string Conninfo(const std::string& database);
  static int FreePort();

 private:
  std::string Run(const std::string& cmd);
  std::string dir_;
  std::string bin_ = "/usr/lib/postgresql/15/bin";
  std::string as_;  // "runuser -u postgres -- " when root
  int port_ = 0;
};

}  // namespace millions::testing
