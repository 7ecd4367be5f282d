#include "ctl/load_region.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <map>
#include <random>

#include "core/config.h"
#include "core/topology.h"
#include "ctl/runner_internal.h"
#include "roles/dns/message.h"
#include "roles/dns/settings.h"

namespace millions::ctl {
namespace json = boost::json;

namespace {

void Put16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v & 0xff));
}

// One UDP exchange with host:port, bounded by 2 s; "" when nothing came.
std::string Exchange(const std::string& host, int port, const std::string& query) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  std::string out;
  if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) == 1 &&
      sendto(fd, query.data(), query.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a) ==
          static_cast<ssize_t>(query.size())) {
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) out.assign(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

}  // namespace

std::string DnsQuery(uint16_t id, const std::string& name, const uint8_t ecs[4], int ecs_prefix) {
  std::string q;
  Put16(&q, id);
  Put16(&q, 0);  // a query, no recursion wanted: the server is authoritative
  Put16(&q, 1);
  Put16(&q, 0);
  Put16(&q, 0);
  Put16(&q, 1);  // the OPT record
  dns::AppendName(name, &q);
  Put16(&q, 1);  // A
  Put16(&q, 1);  // IN
  std::string opt;
  if (ecs_prefix > 0) {
    size_t bytes = static_cast<size_t>((ecs_prefix + 7) / 8);
    Put16(&opt, 8);  // Client Subnet
    Put16(&opt, static_cast<uint16_t>(4 + bytes));
    Put16(&opt, 1);  // IPv4
    opt.push_back(static_cast<char>(ecs_prefix));
    opt.push_back(0);  // scope: 0 in a query
    for (size_t i = 0; i < bytes; ++i) opt.push_back(static_cast<char>(ecs[i]));
  }
  q.push_back(0);  // the root
  Put16(&q, 41);
  Put16(&q, 1232);
  Put16(&q, 0);
  Put16(&q, 0);
  Put16(&q, static_cast<uint16_t>(opt.size()));
  return q + opt;
}

Result<std::vector<std::string>> DnsAnswerAddresses(const std::string& wire, uint16_t id) {
  auto m = dns::ParseMessage(wire);
  if (!m || !m->qr || m->id != id)
    return MakeError(Errc::kInternal, "dns", "no well-formed answer to our query");
  if (m->rcode != 0)
    return MakeError(Errc::kInternal, "dns",
                     std::string("the DNS server answered ") +
                         dns::RcodeName(static_cast<dns::Rcode>(m->rcode)));
  std::vector<std::string> out;
  for (const auto& r : m->answer) {
    if (r.type != 1 || r.rdata.size() != 4) continue;
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, r.rdata.data(), text, sizeof text);
    out.emplace_back(text);
  }
  if (out.empty()) return MakeError(Errc::kInternal, "dns", "the answer holds no address");
  return out;
}

Result<RegionTargets> ResolveRegion(const std::string& topology, const std::string& region) {
  topo::Topology t = topo::Topology::Load(topology);
  dns::Settings settings = dns::ReadSettings(t);
  const dns::Region* r = nullptr;
  for (const auto& x : settings.zone.regions)
    if (x.name == region) r = &x;
  if (!r || r->subnets.empty() || r->subnets[0].family != 1)
    return MakeError(Errc::kBadInput, "region",
                     "no [[dns.region]] '" + region + "' with an IPv4 subnet in " + topology);
  const dns::Subnet& subnet = r->subnets[0];
  // Where the DNS servers and balancers are now (netns mode moves them): the runner's status.
  auto res = detail::Admin(topology, "GET", "/api/status");
  if (!res.ok()) return res.error();
  boost::system::error_code ec;
  json::value st = json::parse(res->body, ec);
  if (ec || !st.is_object() || !st.as_object().contains("nodes"))
    return MakeError(Errc::kInternal, "status", "the runner's status is not JSON");
  std::vector<std::string> servers;
  std::map<std::string, std::pair<std::string, std::string>> lbs;  // host -> (address, dc)
  for (const auto& n : st.at("nodes").as_array()) {
    const auto& o = n.as_object();
    std::string role(o.at("role").as_string()), address(o.at("address").as_string());
    if (role == "dns") servers.push_back(address);
    if (role == "lb")
      lbs[config::ParseHostPort(address).host] = {address, std::string(o.at("dc").as_string())};
  }
  if (servers.empty()) return MakeError(Errc::kInternal, "dns", "the topology has no DNS server");
  std::string name = settings.zone.service_labels.empty() || settings.zone.service_labels[0] == "@"
                         ? settings.zone.zone
                         : settings.zone.service_labels[0] + "." + settings.zone.zone;
  if (settings.zone.service_labels.size() > 1 && settings.zone.service_labels[0] == "@")
    name = settings.zone.service_labels[1] + "." + settings.zone.zone;
  uint16_t id = static_cast<uint16_t>(std::random_device{}());
  std::string query = DnsQuery(id, name, subnet.address.data(), subnet.prefix);
  Result<std::vector<std::string>> addresses =
      MakeError(Errc::kInternal, "dns", "no DNS server answered");
  for (const auto& s : servers) {  // the next name server when one does not answer
    auto hp = config::ParseHostPort(s);
    std::string wire = Exchange(hp.host, hp.port, query);
    if (wire.empty()) continue;
    addresses = DnsAnswerAddresses(wire, id);
    if (addresses.ok()) break;
  }
  if (!addresses.ok()) return addresses.error();
  RegionTargets out;
  out.summary = "region " + region + " (" + dns::FormatSubnet(subnet) + "): " + name + " ->";
  for (const auto& a : *addresses) {
    auto it = lbs.find(a);
    if (it == lbs.end()) continue;
    out.targets += (out.targets.empty() ? "http://" : ",http://") + it->second.first;
    out.summary += " " + it->second.first + " (" + it->second.second + ")";
  }
  if (out.targets.empty())
    return MakeError(Errc::kInternal, "dns", "the answer names no balancer of the topology");
  return out;
}

}  // namespace millions::ctl
