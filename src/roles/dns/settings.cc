#include "roles/dns/settings.h"

#include <algorithm>
#include <set>

namespace millions::dns {

const std::vector<std::string> kTables = {"dns"};

namespace {

std::string Lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

// An address literal from a node's "host:port" (IPv6 in brackets); the error names the node.
Subnet NodeIp(const topo::Topology& t, const topo::NodeEntry& n, const char* what) {
  std::string host = config::ParseHostPort(n.listen).host;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  auto ip = ParseAddress(host);
  if (!ip || host == "0.0.0.0" || host == "::")
    throw config::ConfigError(t.path + ": [[" + what + ".node]] '" + n.name + "' listens on '" +
                              host + "': DNS answers with addresses, so it must be one (not a " +
                              "name or a wildcard)");
  return *ip;
}

}  // namespace

Settings ReadSettings(const topo::Topology& t) {
  Settings s;
  ZoneConfig& z = s.zone;
  auto dns = t.file().Table("dns");
  z.zone = t.dns_zone;  // read (lower case, no final dot) with the topology
  std::string probe;
  if (z.zone.empty() || !AppendName(z.zone, &probe))
    throw config::ConfigError(t.path + ": [dns] zone '" + z.zone + "' is not a domain name");
  int64_t ttl = z.ttl, ns_ttl = z.ns_ttl, neg = z.negative_ttl, serial = z.serial;
  dns.Get("ttl_s", &ttl, 0, 86400);
  dns.Get("ns_ttl_s", &ns_ttl, 0, 7 * 86400);
  dns.Get("negative_ttl_s", &neg, 0, 86400);
  dns.Get("serial", &serial, 1, 4294967295);
  z.ttl = static_cast<uint32_t>(ttl);
  z.ns_ttl = static_cast<uint32_t>(ns_ttl);
  z.negative_ttl = static_cast<uint32_t>(neg);
  z.serial = static_cast<uint32_t>(serial);
  dns.Get("names", &z.service_labels);
  for (auto& l : z.service_labels) {
    l = Lower(l);
    std::string w;
    if (l != "@" && (l.find('.') != std::string::npos || !AppendName(l, &w)))
      throw config::ConfigError(t.path + ": [dns] names: '" + l +
                                "' must be one label (e.g. \"www\") or \"@\" (the apex)");
  }
  int udp = z.udp_size;
  dns.Get("udp_size", &udp, 512, 4096);
  z.udp_size = static_cast<uint16_t>(udp);
  dns.Get("threads", &s.threads, 1, 64);
  dns.Get("check_interval_ms", &s.check_interval_ms, 50, 60000);
  dns.Get("check_timeout_ms", &s.check_timeout_ms, 10, 60000);
  dns.Get("check_path", &s.check_path);
  if (s.check_path.empty() || s.check_path[0] != '/')
    throw config::ConfigError(t.path + ": [dns] check_path must start with '/'");
  dns.Get("fall", &s.fall, 1, 100);
  dns.Get("rise", &s.rise, 1, 100);
  dns.Get("tcp_idle_timeout_ms", &s.tcp_idle_timeout_ms, 100, 600000);
  dns.Get("tcp_max_queries", &s.tcp_max_queries, 1, 100000);
  dns.Get("tcp_max_connections", &s.tcp_max_connections, 1, 100000);
  const std::vector<std::string> levels = {"debug", "info", "warn", "error"};
  t.file().Table("web").GetChoice("log_level", &s.log_level, levels);
  dns.GetChoice("log_level", &s.log_level, levels);

  // Every DC: the topology's [[dc]] list, else those its balancers name.
  z.dcs = t.dcs;
  if (z.dcs.empty())
    for (const auto& b : t.lb)
      if (std::find(z.dcs.begin(), z.dcs.end(), b.dc) == z.dcs.end()) z.dcs.push_back(b.dc);
  std::set<std::string> names;
  for (auto& r : dns.SubArray("region")) {
    Region region;
    std::vector<std::string> subnets;
    r.Get("name", &region.name);
    r.Get("subnets", &subnets);
    r.Get("dcs", &region.dcs);
    if (region.name.empty() || !names.insert(region.name).second)
      throw config::ConfigError(t.path + ": every [[dns.region]] needs a name of its own");
    for (const auto& text : subnets) {
      auto sn = ParseSubnet(text);
      if (!sn)
        throw config::ConfigError(t.path + ": [[dns.region]] '" + region.name + "': subnet '" +
                                  text + "' is not an address/prefix with no bits past it");
      region.subnets.push_back(*sn);
    }
    if (region.dcs.empty())
      throw config::ConfigError(t.path + ": [[dns.region]] '" + region.name +
                                "' needs dcs = [...] (its DCs in order of preference)");
    for (const auto& dc : region.dcs)
      if (std::find(z.dcs.begin(), z.dcs.end(), dc) == z.dcs.end())
        throw config::ConfigError(t.path + ": [[dns.region]] '" + region.name +
                                  "' names unknown dc '" + dc + "'");
    z.regions.push_back(std::move(region));
  }
  if (!t.dns.empty())
    for (const auto& b : t.lb) z.balancers.push_back({b.name, b.dc, NodeIp(t, b, "lb")});
  for (const auto& n : t.dns) {
    std::string label = Lower(n.name), w;
    if (label.find('.') != std::string::npos || !AppendName(label, &w))
      throw config::ConfigError(t.path + ": [[dns.node]] '" + n.name +
                                "': its name is its host name in the zone, so it must be a label");
    if (std::find(z.service_labels.begin(), z.service_labels.end(), label) !=
        z.service_labels.end())
      throw config::ConfigError(t.path + ": [[dns.node]] '" + n.name + "' is also in [dns] names");
    z.name_servers.push_back({label, NodeIp(t, n, "dns")});
  }
  return s;
}

DnsConfig ReadConfig(const topo::Topology& t, const std::string& node) {
  DnsConfig c;
  c.settings = ReadSettings(t);
  const topo::NodeEntry* me = topo::FindNode(t.dns, node);
  if (!me) throw config::ConfigError(t.path + ": no [[dns.node]] is named '" + node + "'");
  c.name = me->name;
  c.dc = me->dc;
  c.listen = me->listen;
  c.admin = me->admin;
  if (t.lb.empty())
    throw config::ConfigError(t.path + ": the DNS servers answer with the balancers: the " +
                              "topology has no [[lb.node]]");
  for (const auto& b : t.lb) {
    auto hp = config::ParseHostPort(b.admin.empty() ? b.listen : b.admin);
    if (hp.host.size() > 2 && hp.host.front() == '[')
      hp.host = hp.host.substr(1, hp.host.size() - 2);
    c.checks.push_back({hp.host, hp.port});
  }
  return c;
}

}  // namespace millions::dns
