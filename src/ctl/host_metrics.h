// Host metrics of the nodes the runner supervises, engines included: CPU seconds, resident
// memory, open files and bytes written to disk, read from /proc at scrape time (nothing runs in
// a loop). A node is its process and every descendant (Patroni with its PostgreSQL, a wrapper
// with its engine), so one scan of /proc/*/stat per scrape finds the trees. The /proc root is a
// parameter: tests build a fake tree. Exported by the runner's GET /metrics as
// millions_node_cpu_seconds_total, millions_node_resident_bytes, millions_node_open_files and
// millions_node_disk_written_bytes_total, labelled node, role, dc (docs/observability.md).
// Thread-safety: functions only. Ownership: values.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/metrics.h"

namespace millions::ctl {

// One process' figures; a field /proc would not give us (io of another user's process) is -1.
struct ProcSample {
  pid_t pid = 0, ppid = 0;
  double cpu_seconds = 0;  // utime + stime + cutime + cstime (reaped children stay counted)
  int64_t rss_bytes = -1;
  int64_t open_files = -1;
  int64_t written_bytes = -1;  // /proc/PID/io write_bytes: what reached the block layer
};

// Reads /proc/PID/{stat,status,fd,io} under `proc_root`; nothing when there is no such process
// (or its stat does not parse). `ticks_per_s`: sysconf(_SC_CLK_TCK) in production.
std::optional<ProcSample> ReadProc(const std::string& proc_root, pid_t pid, long ticks_per_s);

// A supervised node, as the exporter labels it.
struct HostNode {
  std::string name, role, dc;
  pid_t pid = 0;
};

// The sum over each node's process tree (a -1 field counts as nothing; all -1 stays -1).
struct NodeHostMetrics {
  HostNode node;
  ProcSample total;
  int processes = 0;
};
std::vector<NodeHostMetrics> CollectHostMetrics(const std::string& proc_root,
                                                const std::vector<HostNode>& nodes,
                                                long ticks_per_s);

// The four families of `m`, one sample per node each (a field no process of the node gave is
// left out), for a metrics::Registry collector.
void AddHostFamilies(metrics::Families* out, const std::vector<NodeHostMetrics>& m);

}  // namespace millions::ctl
