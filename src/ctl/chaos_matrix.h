// `millions chaos matrix`: every single fault in turn against a running topology, each under a
// ledger (ctl/ledger.h) of writes and reads through the public URL. A row: warm-up, the fault
// (kill -9 held down S seconds like a machine, SIGSTOP for S seconds then SIGCONT, or a
// restart), recovery, a wait for full health (every node running, one PostgreSQL primary and a
// write acknowledged after recovery), then the ledger's verification: write gap (RTO), failed
// writes and reads, lost and duplicated writes, time to full health, and the edit jobs some
// writers asked for: accepted, lost (never done), duplicated (two versions), p99 accept -> done.
// One table on stdout (a row as each ends), a progress line on stderr, --json for scripts, and
// RUN_DIR/chaos_matrix.json for the dashboard. Exit 1 when a row lost or duplicated a write or a
// job (or could not be measured).
// Fault names are ACTION:ROLE, ACTION one of kill, pause, restart and ROLE one of lb, web, redis,
// patroni-leader, patroni-replica, postgres-primary, db-host, etcd-member, etcd-all, nats,
// worker, edge, runner; "none" is a baseline row with no fault. A role the topology lacks is a row
// skipped with a note.
// Thread-safety: RunChaosMatrix blocks its caller; the pure functions are reentrant.
// Ownership: values only; the matrix owns the ledger of the row it runs and the `up` it starts
// after killing the runner (which then supervises on its own).
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/result.h"

namespace millions::ctl {

struct MatrixFlags {
  std::string topology = "topologies/local.toml";
  std::string faults = "all";  // comma-separated fault names, or "all"
  int seconds = 25;            // how long each fault is kept (past Patroni's TTL by default)
  std::string json_out;        // also write {"rows":[...]} here
  int writers = 4;
  int readers = 2;
  int jobs = 1;     // writers that also ask for an edit job on each upload (0: none)
  int settle = 60;  // seconds the verification may wait for writes to read back, jobs to end
};

int RunChaosMatrix(const MatrixFlags& flags);

// ---- pure parts (unit-tested) ----------------------------------------------------------------

struct Fault {
  std::string action;  // kill | pause | restart | none
  std::string role;    // one of FaultRoles(), empty for none
  std::string Name() const { return action == "none" ? "none" : action + ":" + role; }
};

const std::vector<std::string>& FaultRoles();
// "all", or comma-separated names (spaces ignored, repeats dropped); an error names a bad one.
Result<std::vector<Fault>> ParseFaults(const std::string& list);

// Whether the runner's /api/status shows full health: every node running and exactly one
// PostgreSQL primary (when there are PostgreSQL nodes), and every node in `restarted` (name ->
// its pid before the fault) running under a new pid. waiting_on says what is missing.
struct Health {
  bool healthy = false;
  std::string waiting_on;
};
Health HealthOf(const boost::json::value& status,
                const std::map<std::string, int64_t>& restarted = {});
// Each named node's pid in the status (0 when absent).
std::map<std::string, int64_t> PidsOf(const boost::json::value& status,
                                      const std::vector<std::string>& names);

// What a fault acts on, from /api/status: node names, the part of a database node (patroni,
// postgres or host), and that node's Patroni REST address. The runner has no node: empty.
struct FaultTarget {
  std::vector<std::string> nodes;
  std::string part;
  std::string rest;
};
Result<FaultTarget> ResolveTarget(const Fault& fault, const boost::json::value& status);
// The nodes a fault kills (so that health waits for them to run again under a new pid): the
// targets of kill and restart, their "-pg" PostgreSQL for postgres-primary and db-host.
std::vector<std::string> RestartedNodes(const Fault& fault, const FaultTarget& target);

struct MatrixRow {
  std::string fault, target, note;
  bool skipped = false;  // the topology has no such target
  bool failed = false;   // could not be measured (no ledger, the fault could not be injected)
  bool healthy = false;  // full health reached after recovery
  double write_gap_s = 0, max_write_gap_s = 0, health_s = -1;
  uint64_t attempts = 0, acknowledged = 0, failed_writes = 0, rejected = 0;
  uint64_t reads = 0, failed_reads = 0;
  uint64_t media_reads = 0, media_fallbacks = 0;  // photo bytes read; read from the origin after
                                                  // the photo's edge URL failed
  int lost = 0, duplicated = 0, ambiguous = 0, ambiguous_written = 0;
  double read_p50_ms = 0, read_p99_ms = 0, read_max_ms = 0;
  uint64_t job_requests = 0, failed_job_requests = 0;
  int jobs_accepted = 0, jobs_lost = 0, jobs_duplicated = 0, jobs_ambiguous = 0;
  int jobs_ran_after_503 = 0;  // job requests answered 5xx whose job ran (shown, not failing)
  double job_p99_s = 0;        // the accepted request sent -> finished_at, over the jobs done
};

boost::json::object RowJson(const MatrixRow& row);
std::string TableHeader();
std::string TableLine(const MatrixRow& row);
// 1 when any row lost or duplicated a write or a job, or could not be measured, else 0.
int MatrixExitCode(const std::vector<MatrixRow>& rows);

}  // namespace millions::ctl
