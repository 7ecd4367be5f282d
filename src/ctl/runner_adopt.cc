// What keeps the system whole when a process freezes or the supervisor itself dies:
// - run/nodes.json records every node's pid and start time; a new `millions up` over the run
//   dir of a runner that died adopts the nodes still running (and stops those the topology no
//   longer names), instead of failing on taken ports with orphans nobody stops.
// - The watchdog thread, on which recipes watch their nodes (the Patroni recipe fences a frozen
//   leader before its lease can expire: recipes/patroni_fence.cc).
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "core/log.h"
#include "ctl/runner_internal.h"

namespace millions::ctl::detail {
namespace fs = std::filesystem;

void Runner::SaveNodes() {
  static std::mutex save_mu;  // the supervisor and admin threads both start nodes
  std::lock_guard save(save_mu);
  json::array arr;
  {
    std::lock_guard lock(mu_);
    for (auto& n : nodes_) {
      if (n->pid <= 0) continue;
      json::object o{{"name", n->name},       {"role", n->role}, {"dc", n->dc},
                     {"address", n->address}, {"pid", n->pid},   {"start", n->start_ticks}};
      if (!n->tls_address.empty()) o["tls_address"] = n->tls_address;
      arr.push_back(std::move(o));
    }
  }
  std::string text = json::serialize(arr);
  if (text == last_saved_ || run_.empty()) return;
  // Written whole and renamed: a runner killed mid-write leaves the previous file, never half.
  std::string tmp = run_ + "/nodes.json.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text << "\n";
    if (!out) return;
  }
  std::error_code ec;
  fs::rename(tmp, run_ + "/nodes.json", ec);
  if (!ec) last_saved_ = std::move(text);
}

void Runner::RestoreScaledNodes() {
  std::ifstream in(run_ + "/nodes.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_array()) return;
  previous_ = v.as_array();
  // Nodes added by `scale` are not in the topology file: they come back as they were.
  std::set<std::string> known;
  for (const auto& r : recipes_)
    for (const auto& e : r->Entries(t_)) known.insert(e.name);
  for (const auto& p : previous_) {
    if (!p.is_object() || !p.as_object().contains("role")) continue;
    const Recipe* recipe = RecipeOf(std::string(p.at("role").as_string()));
    if (!recipe || recipe->ScaleTable().empty()) continue;
    std::string name(p.at("name").as_string());
    if (known.count(name)) continue;
    topo::NodeEntry e;
    e.name = name;
    e.dc = std::string(p.at("dc").as_string());
    e.listen = std::string(p.at("address").as_string());
    e.host = HostFor(e.listen);
    if (const auto* tls = p.as_object().if_contains("tls_address"); tls && tls->is_string())
      e.tls_listen = std::string(tls->as_string());
    extra_.push_back({recipe, e});
    known.insert(name);
  }
}

void Runner::AdoptNodes() {
  std::vector<std::string> adopted, stopped;
  for (const auto& p : previous_) {
    if (!p.is_object()) continue;
    const auto& o = p.as_object();
    if (!o.contains("name") || !o.contains("pid") || !o.contains("start")) continue;
    std::string name(o.at("name").as_string());
    auto pid = static_cast<pid_t>(o.at("pid").to_number<int64_t>());
    auto start = o.at("start").to_number<uint64_t>();
    if (ProcessStartTicks(pid) != start) continue;  // gone, or its pid now names another
    Node* n = Find(name);
    if (!n) {
      // Not in the topology any more: stop it, as `down` would have.
      SignalGroup(pid, SIGCONT);
      SignalGroup(pid, SIGTERM);
      stopped.push_back(name);
      continue;
    }
    std::lock_guard lock(mu_);
    n->pid = pid;
    n->start_ticks = start;
    n->adopted = true;
    n->state = "starting";
    n->started_at = Clock::now();
    adopted.push_back(name);
  }
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  if (!adopted.empty()) {
    fprintf(stderr, "  adopting %zu running node(s) left by a runner that died: %s\n",
            adopted.size(), list(adopted).c_str());
    log::Warn("adopting nodes of a runner that died", {{"nodes", list(adopted)}});
  }
  if (!stopped.empty())
    fprintf(stderr, "  stopping node(s) the topology no longer names: %s\n", list(stopped).c_str());
  if (!previous_.empty() && adopted.empty())
    fprintf(stderr, "  no node of the previous runner is still running: starting afresh\n");
}

void Runner::WatchdogLoop() {
  std::vector<Recipe*> watching;
  for (const auto& r : recipes_)
    if (r->Watchdog(ctx_)) watching.push_back(r.get());
  if (watching.empty()) return;
  while (!g_stop) {
    std::this_thread::sleep_for(milliseconds(250));
    for (Recipe* r : watching) r->Watch(ctx_, *this);
  }
}

}  // namespace millions::ctl::detail
