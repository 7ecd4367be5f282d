// The runner's actions on nodes, asked for through its admin API: `chaos` (kill, pause, resume,
// restart, with the part of a node that fails, as its recipe names them) and `scale`.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <utility>

#include "core/config.h"
#include "core/env.h"
#include "ctl/runner_internal.h"

namespace millions::ctl::detail {

std::string Runner::ActDc(const std::string& dc, bool up) {
  if (std::find(t_.dcs.begin(), t_.dcs.end(), dc) == t_.dcs.end()) return "no such dc " + dc;
  std::vector<std::pair<Node*, pid_t>> hit;
  {
    std::lock_guard lock(mu_);
    for (auto& n : nodes_) {
      if (n->dc != dc || !n->wanted) continue;
      // Down: held until dc-up (as a machine room that stays dark); up: due now.
      n->hold_until = up ? Clock::now() : Clock::now() + std::chrono::hours(24 * 365);
      if (up) n->next_start = Clock::now();
      hit.push_back({n.get(), n->pid});
    }
  }
  for (auto [n, pid] : hit) {
    if (up) continue;
    if (pid > 0) SignalGroup(pid, SIGKILL);
    n->recipe->SignalCompanion(*n, SIGKILL);  // Patroni's PostgreSQL, in a group of its own
  }
  Event(dc, std::string("chaos: ") + (up ? "dc-up: its " : "dc-down: SIGKILL to its ") +
                std::to_string(hit.size()) + " nodes");
  return "";
}

std::string Runner::Act(const std::string& name, const std::string& action, int hold_ms,
                        const std::string& part_in) {
  Node* n;
  pid_t pid;
  {
    std::lock_guard lock(mu_);
    n = Find(name);
    for (const Node& r : remote_)
      if (!n && r.name == name)
        return "node " + name + " runs on host " + r.host + ": ask its runner (--host " + r.host +
               ")";
    if (!n) return "no such node";
    pid = n->pid;
  }
  const Recipe& recipe = *n->recipe;
  std::vector<ChaosPart> parts = recipe.Parts();
  bool has_parts = !parts.empty();
  if (!part_in.empty() && !has_parts) {
    std::string kinds;
    for (const auto& r : recipes_)
      if (!r->Parts().empty()) kinds += (kinds.empty() ? "" : ", ") + std::string(r->Kind());
    return "--part applies to database (" + kinds + ") nodes only";
  }
  std::string part = !part_in.empty() ? part_in : recipe.DefaultPart(action);
  // The process group alone when the node has no parts.
  ChaosPart hit{"", true, false};
  if (!part.empty()) {
    auto it = std::find_if(parts.begin(), parts.end(), [&](auto& p) { return p.name == part; });
    if (it == parts.end()) {
      std::string names;
      for (size_t i = 0; i < parts.size(); ++i)
        names += (i == 0 ? "" : i + 1 == parts.size() ? " or " : ", ") + parts[i].name;
      return "part must be " + names;
    }
    hit = *it;
  }
  bool node_part = hit.process;  // the supervised process group
  bool companion = hit.companion;
  bool companion_running = companion && recipe.CompanionRunning(*n);
  // The whole node (every part) is named by no suffix in events.
  std::string what = part.empty() || (node_part && companion) ? "" : " (" + part + ")";
  if (action == "restart") {
    if (pid > 0) SignalGroup(pid, SIGKILL);  // the supervisor restarts it
    Event(name, "restart requested");
    return "";
  }
  if (node_part && pid <= 0) return "node is not running";
  if (companion && !node_part && !companion_running)
    return "its " + recipe.CompanionName() + " is not running";
  if (action == "kill") {
    if (node_part) {
      std::lock_guard lock(mu_);
      n->hold_until = Clock::now() + milliseconds(hold_ms);
    }
    if (node_part) SignalGroup(pid, SIGKILL);
    if (companion) recipe.SignalCompanion(*n, SIGKILL);
    Event(name, "chaos: SIGKILL" + what);
  } else if (action == "stop" || action == "cont") {
    int sig = action == "stop" ? SIGSTOP : SIGCONT;
    // cont resumes every part, whichever was paused.
    if (node_part || action == "cont") SignalGroup(pid, sig);
    if (companion || (action == "cont" && has_parts)) recipe.SignalCompanion(*n, sig);
    std::lock_guard lock(mu_);
    if (node_part || action == "cont") n->paused = action == "stop";
    events_.push_back({FormatRfc3339(Env::Default().WallMillis()),
                       name + ": chaos: " + (sig == SIGSTOP ? "SIGSTOP" : "SIGCONT") + what});
  } else {
    return "unknown action " + action;
  }
  return "";
}

std::string Runner::Scale(const Recipe& recipe, int count, const std::string& remove) {
  std::lock_guard serial(scale_mu_);  // one scaling at a time
  const std::string kind = recipe.Kind();
  std::vector<Node*> nodes;
  {
    std::lock_guard lock(mu_);
    for (auto& n : nodes_)
      if (n->recipe == &recipe && n->wanted) nodes.push_back(n.get());
  }
  if (count < 1 || count > 32) return kind + " nodes must be 1..32";
  // A node added now would have no host of its own (netns.h plans them at start-up only).
  if (net_.active && count > static_cast<int>(nodes.size()))
    return "adding nodes at run time is not supported in [network] mode netns yet";
  // The node asked to go goes first: it is moved last.
  if (auto it =
          std::find_if(nodes.begin(), nodes.end(), [&](Node* n) { return n->name == remove; });
      it != nodes.end())
    std::rotate(it, it + 1, nodes.end());
  while (static_cast<int>(nodes.size()) > count) {
    Node* last = nodes.back();
    nodes.pop_back();
    Event(last->name, "scaling down: draining");
    StopNode(*last, milliseconds(15000));
  }
  while (static_cast<int>(nodes.size()) < count) {
    // A node scaled away earlier comes back first, under its name and address.
    Node* back = nullptr;
    {
      std::lock_guard lock(mu_);
      for (auto& n : nodes_)
        if (n->recipe == &recipe && !n->wanted && n->pid == 0) {
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
      nodes.push_back(back);
      continue;
    }
    // A new node: the first free port after the highest address of its kind, same host. The
    // port must be free now: the next one up was often an ephemeral port of a client
    // connection, and the node failed to bind, again and again, with backoff.
    int idx = static_cast<int>(nodes.size()) + 1;
    std::string name = kind + std::to_string(idx);
    while (Find(name)) name += "x";
    std::vector<topo::NodeEntry> entries = recipe.Entries(t_);
    if (nodes.empty() && entries.empty()) return "no " + kind + " node to scale from";
    // Under --host, a new node is made after one of this host's (another's address is not ours).
    if (nodes.empty() && !t_.this_host.empty())
      return "no " + kind + " node on host " + t_.this_host + " to scale from";
    auto hp = config::ParseHostPort(nodes.empty() ? entries.front().listen : nodes.back()->address);
    // With a TLS listener (web nodes under [lb] upstream_tls), the new node has one too, on the
    // first free port after the highest TLS port of its kind.
    std::string tls_from = nodes.empty() ? entries.front().tls_listen : nodes.back()->tls_address;
    config::HostPort tls_hp;
    if (!tls_from.empty()) tls_hp = config::ParseHostPort(tls_from);
    int port = hp.port + 1, tls_port = tls_hp.port + 1;
    std::set<std::pair<std::string, int>> taken;  // every address of the kind's nodes
    {
      std::lock_guard lock(mu_);
      for (auto& n : nodes_)
        if (n->recipe == &recipe) {
          auto other = config::ParseHostPort(n->address);
          taken.insert({other.host, other.port});
          if (other.host == hp.host) port = std::max(port, other.port + 1);
          if (n->tls_address.empty()) continue;
          auto tls_other = config::ParseHostPort(n->tls_address);
          taken.insert({tls_other.host, tls_other.port});
          if (tls_other.host == tls_hp.host) tls_port = std::max(tls_port, tls_other.port + 1);
        }
    }
    while (port < 65535 && (taken.count({hp.host, port}) || !PortFree(hp.host, port))) ++port;
    topo::NodeEntry e;
    e.name = name;
    e.dc = nodes.empty() ? "dc1" : nodes.back()->dc;
    e.listen = hp.host + ":" + std::to_string(port);
    e.host = HostFor(e.listen);
    if (!tls_from.empty()) {
      taken.insert({hp.host, port});
      while (tls_port < 65535 &&
             (taken.count({tls_hp.host, tls_port}) || !PortFree(tls_hp.host, tls_port)))
        ++tls_port;
      e.tls_listen = tls_hp.host + ":" + std::to_string(tls_port);
    }
    extra_.push_back({&recipe, e});
    WriteEffectiveTopology();
    Build();
    Node* n = Find(name);
    if (!Start(*n) || !WaitReady(*n, milliseconds(30000))) return "node " + name + " did not start";
    Event(name, "scaled up: running");
    nodes.push_back(n);
  }
  return "";
}

}  // namespace millions::ctl::detail
