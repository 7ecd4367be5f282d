// Runner: `millions up`. Starts every node of a topology on this machine (with --host, the nodes
// of that [[host]] only: docs/deploy.md, "Beyond one machine") as its own process,
// in dependency order (etcd, PostgreSQL under Patroni, web nodes), waits for each to be ready,
// supervises them (a node that dies is restarted with backoff, and the event is logged), scales
// workers and web nodes with the load when the topology asks (docs/autoscale.md), and serves a
// loopback-only admin API and dashboard that `status`, `down`, `chaos` and `scale` use.
// Thread-safety: the admin API and the supervision loop share state under one mutex.
// Ownership: owns the processes it starts; `down` (or SIGINT/SIGTERM) stops them in reverse.
#pragma once

#include <string>

namespace millions::ctl {

struct UpFlags {
  std::string topology = "topologies/local.toml";
  bool detach = false;
  // A topology of several machines ([[host]] tables): this machine's host. `up` starts that
  // host's nodes only; "" starts every node here (docs/deploy.md, "Beyond one machine").
  std::string host;
};

// The host whose runner `status`, `down`, `chaos` and `scale` talk to (their --host): its
// [[host]] admin listener, when it names one. Set once by main before the command runs.
void SelectCliHost(const std::string& host);

int Up(const UpFlags& flags);
int PrintStatus(const std::string& topology, bool json);
int Down(const std::string& topology);
// `hold_s` > 0 with kill: the supervisor restarts the node only after that many seconds.
// `part` (database nodes): "patroni", "postgres" or "host"; empty: host for kill, patroni else.
int Chaos(const std::string& topology, const std::string& action, const std::string& node,
          double hold_s = 0, const std::string& part = "");
int Scale(const std::string& topology, const std::string& role, int count);
// `millions dc failover DC | failback | status` (runner_dc.cc does the work): starts the
// operation, prints its log as it goes, its RTO and RPO; 0 when it succeeded.
int Dc(const std::string& topology, const std::string& action, const std::string& dc);

}  // namespace millions::ctl
