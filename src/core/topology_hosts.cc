// A topology over several machines (topology.h, "hosts"): which host a process acts as, which
// nodes run there, and whether the etcd members survive the loss of a DC.
#include <map>

#include "core/topology.h"

namespace millions::topo {

void SelectHost(Topology* t, const std::string& host) {
  std::string names;
  for (const auto& h : t->hosts) names += (names.empty() ? "" : ", ") + h.name;
  if (t->hosts.empty())
    throw config::ConfigError(t->path + ": --host " + host +
                              ": the topology names no hosts (no [[host]] tables); without "
                              "--host, every node runs on this machine");
  for (const auto& h : t->hosts)
    if (h.name == host) {
      t->this_host = host;
      if (!h.admin.empty()) t->runner.admin = h.admin;
      return;
    }
  throw config::ConfigError(t->path + ": --host " + host +
                            ": no such host in the topology; its hosts are " + names);
}

bool IsFirstHost(const Topology& t) {
  return t.this_host.empty() || t.hosts.empty() || t.this_host == t.hosts.front().name;
}

bool OnThisHost(const Topology& t, const NodeEntry& e) {
  if (t.this_host.empty()) return true;
  return e.host.empty() ? IsFirstHost(t) : e.host == t.this_host;
}

std::vector<std::string> EtcdDcLossWarnings(const Topology& t) {
  std::vector<std::string> out;
  if (t.dcs.size() < 2) return out;
  const int members = static_cast<int>(t.runner.etcd.size());
  const int quorum = members / 2 + 1;
  std::map<std::string, int> in_dc;
  for (const auto& m : t.runner.etcd) in_dc[m.dc]++;
  for (const auto& dc : t.dcs) {
    auto it = in_dc.find(dc);
    if (it == in_dc.end()) continue;  // no member there: its loss costs etcd nothing
    int left = members - it->second;
    if (left >= quorum) continue;
    std::string spread;
    for (const auto& [name, count] : in_dc)
      spread += (spread.empty() ? "" : ", ") + std::to_string(count) + " in " + name;
    out.push_back("losing " + dc + " leaves " + std::to_string(left) + " of " +
                  std::to_string(members) + " etcd members, and a quorum needs " +
                  std::to_string(quorum) + " (members: " + spread +
                  "): spread them so that no DC holds half, e.g. one in each of two DCs and "
                  "one in a third DC (a witness site)");
  }
  return out;
}

}  // namespace millions::topo
