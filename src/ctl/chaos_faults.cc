// The pure parts of `millions chaos matrix` (ctl/chaos_matrix.h): fault names, which node a
// fault strikes, what full health is, and the table and JSON of a row. Unit-tested apart from the
// running matrix (chaos_matrix.cc).
#include <boost/json.hpp>
#include <cstdio>
#include <set>
#include <sstream>

#include "ctl/chaos_matrix.h"

namespace millions::ctl {

namespace json = boost::json;

// ---- pure parts ------------------------------------------------------------------------------

const std::vector<std::string>& FaultRoles() {
  static const std::vector<std::string> roles{
      "lb",      "web",         "redis",    "patroni-leader", "patroni-replica", "postgres-primary",
      "db-host", "etcd-member", "etcd-all", "nats",           "worker",          "edge",
      "runner"};
  return roles;
}

Result<std::vector<Fault>> ParseFaults(const std::string& list) {
  std::vector<Fault> out;
  std::set<std::string> seen;
  std::string item;
  std::stringstream in(list);
  static const std::vector<std::string> actions{"kill", "pause", "restart"};
  while (std::getline(in, item, ',')) {
    item.erase(std::remove(item.begin(), item.end(), ' '), item.end());
    if (item.empty()) continue;
    std::vector<Fault> add;
    if (item == "all") {
      for (const auto& role : FaultRoles())
        for (const auto& action : actions) add.push_back({action, role});
    } else if (item == "none") {
      add.push_back({"none", ""});
    } else {
      size_t colon = item.find(':');
      std::string action = item.substr(0, colon);
      std::string role = colon == std::string::npos ? "" : item.substr(colon + 1);
      if (action == "stop") action = "pause";
      bool ok_action = std::find(actions.begin(), actions.end(), action) != actions.end();
      bool ok_role =
          std::find(FaultRoles().begin(), FaultRoles().end(), role) != FaultRoles().end();
      if (!ok_action || !ok_role)
        return MakeError(Errc::kBadInput, "bad_fault",
                         "unknown fault '" + item +
                             "': use ACTION:ROLE with ACTION kill, pause or restart and ROLE one "
                             "of lb, web, redis, patroni-leader, patroni-replica, "
                             "postgres-primary, db-host, etcd-member, etcd-all, nats, worker, "
                             "edge, runner; or all, none");
      add.push_back({action, role});
    }
    for (auto& f : add)
      if (seen.insert(f.Name()).second) out.push_back(f);
  }
  if (out.empty()) return MakeError(Errc::kBadInput, "bad_fault", "no fault named");
  return out;
}

namespace {

std::string S(const json::object& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? std::string(it->value().as_string()) : "";
}

const json::array* Nodes(const json::value& status) {
  if (!status.is_object()) return nullptr;
  auto it = status.as_object().find("nodes");
  return it != status.as_object().end() && it->value().is_array() ? &it->value().as_array()
                                                                  : nullptr;
}

}  // namespace

Health HealthOf(const json::value& status, const std::map<std::string, int64_t>& restarted) {
  Health h;
  const json::array* nodes = Nodes(status);
  if (!nodes || nodes->empty()) {
    h.waiting_on = "no status";
    return h;
  }
  int postgres = 0, primaries = 0;
  for (const auto& v : *nodes) {
    if (!v.is_object()) continue;
    const auto& o = v.as_object();
    std::string state = S(o, "state");
    if (state != "running") {
      h.waiting_on = S(o, "name") + " " + state;
      return h;
    }
    if (S(o, "role") == "postgres") {
      ++postgres;
      if (S(o, "db_role") == "primary") ++primaries;
    }
  }
  if (postgres > 0 && primaries != 1) {
    h.waiting_on = std::to_string(primaries) + " primaries";
    return h;
  }
  std::vector<std::string> names;
  for (const auto& [name, pid] : restarted) names.push_back(name);
  for (const auto& [name, now] : PidsOf(status, names))
    if (now == 0 || now == restarted.at(name)) {
      h.waiting_on = name + " to run again";
      return h;
    }
  h.healthy = true;
  return h;
}

std::map<std::string, int64_t> PidsOf(const json::value& status,
                                      const std::vector<std::string>& names) {
  std::map<std::string, int64_t> out;
  for (const auto& n : names) out[n] = 0;
  if (const json::array* nodes = Nodes(status))
    for (const auto& v : *nodes) {
      if (!v.is_object()) continue;
      auto it = out.find(S(v.as_object(), "name"));
      const auto* pid = v.as_object().if_contains("pid");
      if (it != out.end() && pid && pid->is_number()) it->second = pid->to_number<int64_t>();
    }
  return out;
}

std::vector<std::string> RestartedNodes(const Fault& fault, const FaultTarget& target) {
  std::vector<std::string> out;
  if ((fault.action != "kill" && fault.action != "restart") || fault.role == "runner") return out;
  for (const auto& n : target.nodes) {
    if (fault.role != "postgres-primary") out.push_back(n);
    if (fault.role == "postgres-primary" || fault.role == "db-host") out.push_back(n + "-pg");
  }
  return out;
}

Result<FaultTarget> ResolveTarget(const Fault& fault, const json::value& status) {
  FaultTarget t;
  if (fault.action == "none" || fault.role == "runner") return t;
  const json::array* nodes = Nodes(status);
  if (!nodes) return MakeError(Errc::kUnavailable, "no_status", "no status from the runner");
  auto missing = [&](const std::string& what) {
    return MakeError(Errc::kNotFound, "no_target", "no " + what + " in this topology");
  };
  auto by_role = [&](const std::string& role) {
    std::vector<const json::object*> out;
    for (const auto& v : *nodes)
      if (v.is_object() && S(v.as_object(), "role") == role) out.push_back(&v.as_object());
    return out;
  };
  const std::string& r = fault.role;
  if (r == "lb" || r == "web" || r == "redis" || r == "etcd-member" || r == "nats" ||
      r == "worker" || r == "edge") {
    auto found = by_role(r == "etcd-member" ? "etcd" : r);
    if (found.empty()) return missing(r + " node");
    t.nodes.push_back(S(*found.front(), "name"));
    return t;
  }
  if (r == "etcd-all") {
    for (const auto* o : by_role("etcd")) t.nodes.push_back(S(*o, "name"));
    if (t.nodes.empty()) return missing("etcd node");
    return t;
  }
  // Database roles: the Patroni node whose PostgreSQL ("<node>-pg") is primary, or a replica.
  std::string want = r == "patroni-replica" ? "replica" : "primary";
  for (const auto* o : by_role("postgres")) {
    std::string name = S(*o, "name");
    if (S(*o, "db_role") != want || name.size() < 4 || name.substr(name.size() - 3) != "-pg")
      continue;
    t.nodes.push_back(name.substr(0, name.size() - 3));
    for (const auto* p : by_role("patroni"))
      if (S(*p, "name") == t.nodes.front()) t.rest = S(*p, "address");
    t.part = r == "postgres-primary" ? "postgres" : r == "db-host" ? "host" : "patroni";
    return t;
  }
  return missing("PostgreSQL " + want);
}

json::object RowJson(const MatrixRow& r) {
  return json::object{{"fault", r.fault},
                      {"target", r.target},
                      {"skipped", r.skipped},
                      {"failed", r.failed},
                      {"healthy", r.healthy},
                      {"write_gap_s", r.write_gap_s},
                      {"max_write_gap_s", r.max_write_gap_s},
                      {"attempts", r.attempts},
                      {"acknowledged", r.acknowledged},
                      {"failed_writes", r.failed_writes},
                      {"rejected_writes", r.rejected},
                      {"ambiguous", r.ambiguous},
                      {"ambiguous_written", r.ambiguous_written},
                      {"reads", r.reads},
                      {"failed_reads", r.failed_reads},
                      {"media_reads", r.media_reads},
                      {"media_fallbacks", r.media_fallbacks},
                      {"read_p50_ms", r.read_p50_ms},
                      {"read_p99_ms", r.read_p99_ms},
                      {"read_max_ms", r.read_max_ms},
                      {"lost", r.lost},
                      {"duplicated", r.duplicated},
                      {"health_s", r.health_s < 0 ? json::value(nullptr) : json::value(r.health_s)},
                      {"job_requests", r.job_requests},
                      {"failed_job_requests", r.failed_job_requests},
                      {"jobs_accepted", r.jobs_accepted},
                      {"jobs_lost", r.jobs_lost},
                      {"jobs_duplicated", r.jobs_duplicated},
                      {"jobs_ambiguous", r.jobs_ambiguous},
                      {"jobs_ran_after_503", r.jobs_ran_after_503},
                      {"job_p99_s", r.job_p99_s},
                      {"note", r.note}};
}

// The job columns: JOBS accepted, JLOST, JDUP and JOB_P99 (seconds from accept to done).
std::string TableHeader() {
  char buf[256];
  snprintf(buf, sizeof buf, "%-24s %-17s %7s %7s %7s %7s %7s %6s %6s %6s %8s %6s %6s %5s %7s  %s",
           "FAULT", "TARGET", "GAP_S", "MAXGAP", "ACKED", "FAIL_W", "FAIL_R", "LOST", "DUP",
           "AMBIG", "HEALTH_S", "JOBS", "JLOST", "JDUP", "JOB_P99", "NOTE");
  return buf;
}

std::string TableLine(const MatrixRow& r) {
  char buf[1024];
  if (r.skipped || (r.failed && r.acknowledged == 0)) {
    snprintf(buf, sizeof buf, "%-24s %-17s %7s %7s %7s %7s %7s %6s %6s %6s %8s %6s %6s %5s %7s  %s",
             r.fault.c_str(), r.target.c_str(), "-", "-", "-", "-", "-", "-", "-", "-", "-", "-",
             "-", "-", "-", r.note.c_str());
    return buf;
  }
  char health[32] = "never";
  if (r.health_s >= 0) snprintf(health, sizeof health, "%.1f", r.health_s);
  char p99[32] = "-";
  if (r.jobs_accepted > 0) snprintf(p99, sizeof p99, "%.2f", r.job_p99_s);
  snprintf(buf, sizeof buf,
           "%-24s %-17s %7.2f %7.2f %7llu %7llu %7llu %6d %6d %6d %8s %6d %6d %5d %7s  %s",
           r.fault.c_str(), r.target.c_str(), r.write_gap_s, r.max_write_gap_s,
           static_cast<unsigned long long>(r.acknowledged),
           static_cast<unsigned long long>(r.failed_writes),
           static_cast<unsigned long long>(r.failed_reads), r.lost, r.duplicated, r.ambiguous,
           health, r.jobs_accepted, r.jobs_lost, r.jobs_duplicated, p99, r.note.c_str());
  return buf;
}

int MatrixExitCode(const std::vector<MatrixRow>& rows) {
  for (const auto& r : rows)
    if (r.lost > 0 || r.duplicated > 0 || r.jobs_lost > 0 || r.jobs_duplicated > 0 || r.failed)
      return 1;
  return 0;
}

}  // namespace millions::ctl
