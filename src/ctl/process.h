// Child processes of the runner: started in their own process group (so a kill reaches
// everything they started, e.g. Patroni's postmaster), optionally as another user (engines
// refuse to run as root), with stdout and stderr appended to a log file.
// Thread-safety: functions only. Ownership: the caller owns the pid it gets.
#pragma once

#include <sys/types.h>

#include <cstdint>
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

// `netns`: non-empty, the network namespace the process runs in (/run/netns/NAME, ctl/netns.h).
Result<pid_t> StartProcess(const Spawn& spec, const std::string& netns = "");
// Signals the whole process group of `pid`.
void SignalGroup(pid_t pid, int sig);
// When `pid` started (clock ticks since boot, /proc/PID/stat field 22), or 0 when no such
// process runs (gone, or a zombie). A pid and its start time name one process: pids are reused.
uint64_t ProcessStartTicks(pid_t pid);
// Whether the process `pid` has ended. A child of ours is reaped (*status set, as waitpid does);
// another process (a node adopted from a runner that died) is looked up by pid and start time,
// and *status is left 0: its exit status went to whoever reaped it.
bool Ended(pid_t pid, bool child, uint64_t start_ticks, int* status);
// The live children of `pid` (from /proc: every process whose parent it is).
std::vector<pid_t> ChildrenOf(pid_t pid);
// Creates `dir` (and parents) owned by `user` when given.
void MakeDir(const std::string& dir, const std::string& user);

}  // namespace millions::ctl
