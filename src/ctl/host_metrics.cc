#include "ctl/host_metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>

namespace millions::ctl {
namespace {

// One read(2) into a stack buffer: /proc files are generated whole, and an ifstream costs more
// than the kernel's work for a stat line (a scrape reads every process' stat).
std::string Slurp(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  char buf[4096];
  std::string out;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

// "pid (comm) state ppid ..." where comm may hold spaces and parentheses: fields count from the
// last ')'. ppid is field 4, utime..cstime fields 14..17 (clock ticks).
bool ParseStat(const std::string& stat, pid_t* ppid, double* ticks) {
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(stat.substr(close + 1));
  std::string field;
  double sum = 0;
  int i = 3;
  for (; i <= 17 && rest >> field; ++i) {
    if (i == 4) *ppid = static_cast<pid_t>(std::atol(field.c_str()));
    if (i >= 14) sum += std::strtod(field.c_str(), nullptr);
  }
  if (i <= 17) return false;
  *ticks = sum;
  return true;
}

// The value after `key` on its line (e.g. "VmRSS:" in status, "write_bytes:" in io).
int64_t Field(const std::string& text, const std::string& key) {
  size_t at = text.find("\n" + key);
  if (at == std::string::npos) {
    if (text.rfind(key, 0) != 0) return -1;
    at = 0;
  } else {
    at += 1;
  }
  return std::strtoll(text.c_str() + at + key.size(), nullptr, 10);
}

void AddTo(int64_t* sum, int64_t v) {
  if (v < 0) return;
  *sum = *sum < 0 ? v : *sum + v;
}

}  // namespace

std::optional<ProcSample> ReadProc(const std::string& proc_root, pid_t pid, long ticks_per_s) {
  std::string dir = proc_root + "/" + std::to_string(pid);
  ProcSample s;
  s.pid = pid;
  double ticks = 0;
  if (!ParseStat(Slurp(dir + "/stat"), &s.ppid, &ticks)) return std::nullopt;
  s.cpu_seconds = ticks / static_cast<double>(ticks_per_s > 0 ? ticks_per_s : 100);
  // A zombie or kernel thread has no VmRSS line: nothing resident.
  std::string status = Slurp(dir + "/status");
  if (!status.empty()) {
    int64_t kb = Field(status, "VmRSS:");
    s.rss_bytes = kb < 0 ? 0 : kb * 1024;
  }
  std::error_code ec;
  std::filesystem::directory_iterator fds(dir + "/fd", ec);
  if (!ec) {
    s.open_files = 0;
    for (auto it = fds; it != std::filesystem::directory_iterator(); it.increment(ec)) {
      if (ec) break;
      ++s.open_files;
    }
  }
  // Another user's io needs ptrace rights: -1 then (the runner as root reads every engine's).
  std::string io = Slurp(dir + "/io");
  if (!io.empty()) s.written_bytes = Field(io, "write_bytes:");
  return s;
}

std::vector<NodeHostMetrics> CollectHostMetrics(const std::string& proc_root,
                                                const std::vector<HostNode>& nodes,
                                                long ticks_per_s) {
  // One pass over every process' stat for the parent links; the trees' members are read fully.
  std::multimap<pid_t, pid_t> children;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(proc_root, ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t ppid = 0;
    double ticks = 0;
    if (ParseStat(Slurp(e.path().string() + "/stat"), &ppid, &ticks))
      children.emplace(ppid, static_cast<pid_t>(std::atol(name.c_str())));
  }
  std::vector<NodeHostMetrics> out;
  for (const HostNode& n : nodes) {
    if (n.pid <= 0) continue;
    NodeHostMetrics m;
    m.node = n;
    m.total.pid = n.pid;
    m.total.rss_bytes = m.total.open_files = m.total.written_bytes = -1;
    int64_t ticks = 0;  // summed whole: a sum of fractions of seconds prints as 3.6999...
    long tps = ticks_per_s > 0 ? ticks_per_s : 100;
    std::vector<pid_t> todo{n.pid};
    for (size_t i = 0; i < todo.size() && i < 4096; ++i) {
      auto s = ReadProc(proc_root, todo[i], ticks_per_s);
      if (!s) continue;
      ++m.processes;
      ticks += std::llround(s->cpu_seconds * static_cast<double>(tps));
      AddTo(&m.total.rss_bytes, s->rss_bytes);
      AddTo(&m.total.open_files, s->open_files);
      AddTo(&m.total.written_bytes, s->written_bytes);
      auto [lo, hi] = children.equal_range(todo[i]);
      for (auto it = lo; it != hi; ++it) todo.push_back(it->second);
    }
    m.total.cpu_seconds = static_cast<double>(ticks) / static_cast<double>(tps);
    if (m.processes > 0) out.push_back(std::move(m));
  }
  return out;
}

void AddHostFamilies(metrics::Families* out, const std::vector<NodeHostMetrics>& m) {
  auto cpu = metrics::AddCounter(out, "millions_node_cpu_seconds_total",
                                 "CPU time (user and system) of the node's processes.");
  auto rss = metrics::AddGauge(out, "millions_node_resident_bytes",
                               "Resident memory of the node's processes.");
  auto files = metrics::AddGauge(out, "millions_node_open_files",
                                 "File descriptors the node's processes hold open.");
  auto written = metrics::AddCounter(out, "millions_node_disk_written_bytes_total",
                                     "Bytes the node's processes caused to be written to disk.");
  for (const auto& n : m) {
    metrics::Labels l{{"node", n.node.name}, {"role", n.node.role}, {"dc", n.node.dc}};
    cpu.Add(l, n.total.cpu_seconds);
    if (n.total.rss_bytes >= 0) rss.Add(l, static_cast<double>(n.total.rss_bytes));
    if (n.total.open_files >= 0) files.Add(l, static_cast<double>(n.total.open_files));
    if (n.total.written_bytes >= 0) written.Add(l, static_cast<double>(n.total.written_bytes));
  }
}

}  // namespace millions::ctl
