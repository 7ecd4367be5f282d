// The runner's actions on nodes, asked for through its admin API: `chaos` (kill, pause, resume,
// restart, with the part of a database node that fails) and `scale web N`.
#include <signal.h>
#include <unistd.h>

#include <fstream>

#include "core/env.h"
#include "ctl/runner_internal.h"

namespace millions::ctl::detail {

pid_t Postmaster(const Node& n) {
  if (n.pg_data_dir.empty()) return 0;
  int64_t pm = 0;
  std::ifstream(n.pg_data_dir + "/postmaster.pid") >> pm;
  if (pm <= 0 || ProcessStartTicks(static_cast<pid_t>(pm)) == 0) return 0;
  return static_cast<pid_t>(pm);
}

// PostgreSQL's backends each start a session of their own (setsid), so a signal to the
// postmaster's group misses them: a killed primary's open backends could still commit for a few
// milliseconds. The postmaster is stopped first (it forks no backend while its children are
// listed), then every child gets the signal, then the postmaster.
bool SignalPostgres(const Node& n, int sig) {
  pid_t pm = Postmaster(n);
  if (pm <= 0) return false;
  if (sig != SIGCONT) kill(pm, SIGSTOP);
  for (pid_t child : ChildrenOf(pm)) kill(child, sig);
  pid_t group = getpgid(pm);
  if (group > 1) kill(-group, sig);
  kill(pm, sig);
  return true;
}

std::string Runner::Act(const std::string& name, const std::string& action, int hold_ms,
                        const std::string& part_in) {
  Node* n;
  pid_t pid;
  {
    std::lock_guard lock(mu_);
    n = Find(name);
    if (!n) return "no such node";
    pid = n->pid;
  }
  bool db = !n->pg_data_dir.empty();
  if (!part_in.empty() && !db) return "--part applies to database (patroni) nodes only";
  if (!part_in.empty() && part_in != "patroni" && part_in != "postgres" && part_in != "host")
    return "part must be patroni, postgres or host";
  // Killing a database node kills the machine by default: Patroni and its PostgreSQL with its
  // backends, so the old primary cannot take one more write (fencing). A pause stops Patroni.
  std::string part = !part_in.empty() ? part_in : !db ? "" : action == "kill" ? "host" : "patroni";
  bool node_part = part != "postgres";  // the supervised process (Patroni, or any other node)
  bool pg_part = part == "postgres" || part == "host";
  bool pg_running = pg_part && Postmaster(*n) > 0;
  std::string what = part.empty() || part == "host" ? "" : " (" + part + ")";
  if (action == "restart") {
    if (pid > 0) SignalGroup(pid, SIGKILL);  // the supervisor restarts it
    Event(name, "restart requested");
    return "";
  }
  if (node_part && pid <= 0) return "node is not running";
  if (pg_part && !node_part && !pg_running) return "its PostgreSQL is not running";
  if (action == "kill") {
    if (node_part) {
      std::lock_guard lock(mu_);
      n->hold_until = Clock::now() + milliseconds(hold_ms);
    }
    if (node_part) SignalGroup(pid, SIGKILL);
    if (pg_part) SignalPostgres(*n, SIGKILL);
    Event(name, "chaos: SIGKILL" + what);
  } else if (action == "stop" || action == "cont") {
    int sig = action == "stop" ? SIGSTOP : SIGCONT;
    // cont resumes every part, whichever was paused.
    if (node_part || action == "cont") SignalGroup(pid, sig);
    if (pg_part || (action == "cont" && db)) SignalPostgres(*n, sig);
    std::lock_guard lock(mu_);
    if (node_part || action == "cont") n->paused = action == "stop";
    events_.push_back({FormatRfc3339(Env::Default().WallMillis()),
                       name + ": chaos: " + (sig == SIGSTOP ? "SIGSTOP" : "SIGCONT") + what});
  } else {
    return "unknown action " + action;
  }
  return "";
}

std::string Runner::ScaleWeb(int count) {
  std::lock_guard serial(scale_mu_);  // one scaling at a time
  std::vector<Node*> web;
  {
    std::lock_guard lock(mu_);
    for (auto& n : nodes_)
      if (n->role == "web" && n->wanted) web.push_back(n.get());
  }
  if (count < 1 || count > 32) return "web nodes must be 1..32";
  while (static_cast<int>(web.size()) > count) {
    Node* last = web.back();
    web.pop_back();
    Event(last->name, "scaling down: draining");
    StopNode(*last, milliseconds(15000));
  }
  while (static_cast<int>(web.size()) < count) {
    // A node scaled away earlier comes back first, under its name and address.
    Node* back = nullptr;
    {
      std::lock_guard lock(mu_);
      for (auto& n : nodes_)
        if (n->role == "web" && !n->wanted && n->pid == 0) {
          back = n.get();
          back->wanted = true;
          back->failures = 0;
          break;
        }
    }
    if (back) {
      if (!Start(*back) || !WaitReady(*back, milliseconds(30000)))
        return "node " + back->name + " did not start";
      Event(back->name, "scaled up: running");
      web.push_back(back);
      continue;
    }
    // A new node: the first free port after the highest web address, same host. The port
    // must be free now: the next one up was often an ephemeral port of a client connection,
    // and the node failed to bind, again and again, with backoff.
    int idx = static_cast<int>(web.size()) + 1;
    std::string name = "web" + std::to_string(idx);
    while (Find(name)) name += "x";
    auto hp = config::ParseHostPort(web.empty() ? t_.web.front().listen : web.back()->address);
    int port = hp.port + 1;
    {
      std::lock_guard lock(mu_);
      for (auto& n : nodes_)
        if (n->role == "web") {
          auto other = config::ParseHostPort(n->address);
          if (other.host == hp.host) port = std::max(port, other.port + 1);
        }
    }
    while (port < 65535 && !PortFree(hp.host, port)) ++port;
    topo::NodeEntry e{name,
                     web.empty() ? "dc1" : web.back()->dc,
                     hp.host + ":" + std::to_string(port),
                     "",
                     "",
                     "",
                     ""};
    extra_web_.push_back(e);
    WriteEffectiveTopology();
    Build();
    Node* n = Find(name);
    if (!Start(*n) || !WaitReady(*n, milliseconds(30000))) return "node " + name + " did not start";
    Event(name, "scaled up: running");
    web.push_back(n);
  }
  return "";
}

}  // namespace millions::ctl::detail
