// Child processes of the runner: started in their own process group (so a kill reaches
// everything they started, e.g. Patroni's postmaster), optionally as another user (engines
// refuse to run as root), with stdout and stderr appended to a log file.
// Thread-safety: functions only. Ownership: the caller owns the pid it gets.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/result.h"

namespace millions::ctl {

struct Spawn {
  std::vector<std::string> argv;
  std::string log_path;
  std::string user;              // empty: the runner's own user
  std::vector<std::string> env;  // extra NAME=VALUE
};

Result<pid_t> StartProcess(const Spawn& spec);
// Signals the whole process group of `pid`.
void SignalGroup(pid_t pid, int sig);
// Creates `dir` (and parents) owned by `user` when given.
void MakeDir(const std::string& dir, const std::string& user);

}  // namespace millions::ctl
