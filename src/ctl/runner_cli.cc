// The commands that talk to a running runner's admin API: status, down, chaos, scale.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "ctl/admin_token.h"
#include "ctl/runner.h"
#include "ctl/runner_internal.h"

namespace millions::ctl {
namespace detail {

namespace {
std::string g_cli_host;  // set once by main (SelectCliHost), before any command runs
}  // namespace

Result<http::Response> Admin(const std::string& topology, const std::string& method,
                             const std::string& target) {
  topo::Topology t = topo::Topology::Load(topology);          // a ConfigError reaches main
  if (!g_cli_host.empty()) topo::SelectHost(&t, g_cli_host);  // its runner's admin listener
  std::string admin = t.runner.admin;
  auto hp = config::ParseHostPort(admin);
  // The token `up` wrote into the run dir: this user may talk to the runner if it can read it.
  std::optional<std::string> token = ReadAdminToken(Abs(t.runner.run_dir));
  http::FetchRequest r;
  r.method = method;
  r.host = hp.host;
  r.port = hp.port;
  r.target = target;
  r.timeout = std::chrono::seconds(60);
  if (token) r.authorization = "Bearer " + *token;
  auto res = http::Fetch(r);
  if (!res.ok())
    return MakeError(Errc::kUnavailable, "not_running",
                     "no runner answers on " + admin + " (is `millions up` running?)");
  if (res->status == 401)
    return MakeError(Errc::kUnauthenticated, "unauthenticated",
                     "the runner on " + admin + " refused the admin token " +
                         (token ? "of " : "(none could be read from ") +
                         AdminTokenPath(Abs(t.runner.run_dir)) + (token ? "" : ")"));
  return res;
}

}  // namespace detail

void SelectCliHost(const std::string& host) { detail::g_cli_host = host; }

using detail::Abs;
using detail::Admin;
using detail::milliseconds;
namespace json = boost::json;

int PrintStatus(const std::string& topology, bool as_json) {
  auto res = Admin(topology, "GET", "/api/status");
  if (!res.ok()) {
    fprintf(stderr, "millions: %s\n", res.error().message.c_str());
    return 1;
  }
  if (as_json) {
    printf("%s\n", res->body.c_str());
    return 0;
  }
  auto v = json::parse(res->body).as_object();
  // A topology of several hosts: which host each node is on, and the others' marked remote
  // (their state is whether they answered this host's probe).
  bool hosts = false;
  for (const auto& n : v["nodes"].as_array()) hosts = hosts || n.as_object().contains("host");
  printf("%-10s %-8s %-5s %-22s %-9s %s%s\n", "NAME", "ROLE", "DC", "ADDRESS", "STATE", "PID",
         hosts ? "    HOST" : "");
  for (const auto& n : v["nodes"].as_array()) {
    const auto& o = n.as_object();
    std::string role(o.at("role").as_string());
    if (o.contains("db_role")) role += "/" + std::string(o.at("db_role").as_string());
    std::string host;
    if (const auto* h = o.if_contains("host"); h && h->is_string())
      host = "    " + std::string(h->as_string()) + (o.contains("remote") ? " (remote)" : "");
    std::string pid = std::to_string(o.at("pid").to_number<int64_t>());
    if (hosts) pid.resize(std::max<size_t>(pid.size(), 6), ' ');
    printf("%-10s %-8s %-5s %-22s %-9s %s%s\n", std::string(o.at("name").as_string()).c_str(),
           role.c_str(), std::string(o.at("dc").as_string()).c_str(),
           std::string(o.at("address").as_string()).c_str(),
           std::string(o.at("state").as_string()).c_str(), pid.c_str(), host.c_str());
  }
  // Several DCs: each with its database cluster's part and replication lag.
  if (const auto* dcs = v.if_contains("dcs"); dcs && dcs->is_array()) {
    printf("\n%-6s %-8s %-14s %s\n", "DC", "WRITES", "CLUSTER", "LAG_BYTES");
    for (const auto& d : dcs->as_array()) {
      const auto& o = d.as_object();
      const auto* lag = o.if_contains("replication_lag_bytes");
      const auto* cluster = o.if_contains("cluster");
      printf("%-6s %-8s %-14s %s\n", std::string(o.at("dc").as_string()).c_str(),
             o.contains("takes_writes") && o.at("takes_writes").as_bool() ? "yes" : "no",
             cluster ? std::string(cluster->as_string()).c_str() : "-",
             lag ? std::to_string(lag->to_number<int64_t>()).c_str() : "-");
    }
  }
  return 0;
}

// `down` when no runner answers: the nodes a runner that died left running (run/nodes.json) are
// stopped here, each by pid and start time, so nothing is left for `kill` by hand.
int DownOrphans(const std::string& topology) {
  std::string run = Abs(topo::Topology::Load(topology).runner.run_dir);
  std::ifstream in(run + "/nodes.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  std::vector<std::pair<std::string, std::pair<pid_t, uint64_t>>> live;
  if (!ec && v.is_array())
    for (const auto& p : v.as_array()) {
      if (!p.is_object() || !p.as_object().contains("pid") || !p.as_object().contains("start"))
        continue;
      auto pid = static_cast<pid_t>(p.at("pid").to_number<int64_t>());
      auto start = p.at("start").to_number<uint64_t>();
      if (ProcessStartTicks(pid) == start)
        live.push_back({std::string(p.at("name").as_string()), {pid, start}});
    }
  if (live.empty()) return -1;
  // Reverse order of start, as the runner stops them: balancers and web nodes before the data.
  for (auto it = live.rbegin(); it != live.rend(); ++it) {
    auto [pid, start] = it->second;
    SignalGroup(pid, SIGCONT);
    kill(pid, SIGTERM);
    int status;
    for (int i = 0; i < 400 && !Ended(pid, false, start, &status); ++i)
      std::this_thread::sleep_for(milliseconds(50));
    SignalGroup(pid, SIGKILL);
    printf("stopped %s (pid %d), left by a runner that died\n", it->first.c_str(), pid);
  }
  std::filesystem::remove(run + "/nodes.json");
  return 0;
}

int Down(const std::string& topology) {
  auto res = Admin(topology, "POST", "/api/down");
  if (!res.ok()) {
    // Only when no runner answers: a runner that refused our token still owns its nodes.
    if (res.error().code == "not_running") {
      int orphans = DownOrphans(topology);
      // The namespaces (netns mode) a runner that died left behind.
      std::string run = Abs(topo::Topology::Load(topology).runner.run_dir);
      bool net = netns::Teardown(run);
      if (net) printf("removed the network namespaces left by a runner that died\n");
      if (orphans == 0 || net) return 0;
    }
    fprintf(stderr, "millions: %s\n", res.error().message.c_str());
    return 1;
  }
  // Wait for the runner to finish stopping everything (its admin API goes away last).
  for (int i = 0; i < 240; ++i) {
    std::this_thread::sleep_for(milliseconds(250));
    if (!Admin(topology, "GET", "/api/status").ok()) {
      printf("stopped\n");
      return 0;
    }
  }
  fprintf(stderr, "millions: the runner is still stopping\n");
  return 1;
}

int Chaos(const std::string& topology, const std::string& action, const std::string& node,
          double hold_s, const std::string& part) {
  // dc-down / dc-up: `node` names a DC.
  bool dc = action == "dc-down" || action == "dc-up";
  std::string target = dc ? "/api/dcs/" + node + "/" + action.substr(3) + "?"
                          : "/api/nodes/" + node + "/" + action + "?";
  if (hold_s > 0) target += "hold_ms=" + std::to_string(static_cast<int>(hold_s * 1000)) + "&";
  if (!part.empty()) target += "part=" + part;
  auto res = Admin(topology, "POST", target);
  if (!res.ok() || res->status != 200) {
    fprintf(stderr, "millions: %s\n", res.ok() ? res->body.c_str() : res.error().message.c_str());
    return 1;
  }
  printf("%s %s%s\n", action.c_str(), node.c_str(),
         part.empty() ? "" : (" (" + part + ")").c_str());
  return 0;
}

int Dc(const std::string& topology, const std::string& action, const std::string& dc) {
  auto fail = [](const Result<http::Response>& res) {
    std::string why = res.ok() ? res->body : res.error().message;
    fprintf(stderr, "millions: %s\n", why.c_str());
    return 1;
  };
  if (action != "status") {
    if (action == "failover" && dc.empty()) {
      fprintf(stderr, "millions: dc failover needs the DC to move writes to\n");
      return 2;
    }
    auto res = Admin(topology, "POST", "/api/dc/" + action + (dc.empty() ? "" : "?to=" + dc));
    if (!res.ok() || res->status != 202) return fail(res);
  }
  // Follow the operation: its log lines as they come, until it ends.
  size_t printed = 0;
  for (int i = 0; i < 2400; ++i) {
    auto res = Admin(topology, "GET", "/api/dc");
    if (!res.ok() || res->status != 200) return fail(res);
    boost::system::error_code ec;
    auto v = json::parse(res->body, ec);
    if (ec || !v.is_object()) return fail(res);
    const auto& o = v.as_object();
    const auto* op = o.if_contains("operation");
    const json::object empty;
    const json::object& opo = op && op->is_object() ? op->as_object() : empty;
    if (const auto* log = opo.if_contains("log"); log && log->is_array())
      for (; printed < log->as_array().size(); ++printed)
        printf("%s\n", std::string(log->as_array()[printed].as_string()).c_str());
    fflush(stdout);
    std::string state = opo.contains("state") ? std::string(opo.at("state").as_string()) : "";
    if (action == "status" || (state != "running" && !state.empty())) {
      printf("primary dc: %s\n", std::string(o.at("primary_dc").as_string()).c_str());
      if (state == "failed") {
        fprintf(stderr, "millions: dc %s failed: %s\n", action.c_str(),
                std::string(opo.at("error").as_string()).c_str());
        return 1;
      }
      if (action != "status" && opo.contains("rto_s"))
        printf("RTO %.2f s, RPO %s\n", opo.at("rto_s").to_number<double>(),
               opo.at("lost_bytes").to_number<int64_t>() == 0
                   ? "0 (no acknowledged write lost)"
                   : (std::to_string(opo.at("lost_bytes").to_number<int64_t>()) +
                      " bytes of WAL at most")
                         .c_str());
      return 0;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  fprintf(stderr, "millions: the dc operation is still running\n");
  return 1;
}

int Scale(const std::string& topology, const std::string& role, int count) {
  auto res = Admin(topology, "POST", "/api/scale/" + role + "?n=" + std::to_string(count));
  if (!res.ok() || res->status != 200) {
    fprintf(stderr, "millions: %s\n", res.ok() ? res->body.c_str() : res.error().message.c_str());
    return 1;
  }
  printf("%s nodes: %d\n", role.c_str(), count);
  return 0;
}

}  // namespace millions::ctl
