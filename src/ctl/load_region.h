// `millions load --region R`: where a client in region R is sent. The service's name is asked of
// the deployment's own DNS servers (from the runner's status) with the region's first client
// subnet as EDNS Client Subnet (RFC 7871), as a resolver in that region would; the answer's
// addresses are balancers, and each becomes a target at its listen port (from status). The
// load then fails over between them (load.h).
// Thread-safety: functions; blocking (UDP with a 2 s timeout per server), for the CLI only.
// Ownership: values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace millions::ctl {

// A query for `name` A with EDNS(0) and, when ecs_prefix > 0, a Client Subnet of `ecs` (IPv4
// bytes) / ecs_prefix.
std::string DnsQuery(uint16_t id, const std::string& name, const uint8_t ecs[4], int ecs_prefix);
// The IPv4 addresses in an answer to `id`, or an error naming the rcode or the fault.
Result<std::vector<std::string>> DnsAnswerAddresses(const std::string& wire, uint16_t id);

struct RegionTargets {
  std::string targets;  // "http://host:port,..." for LoadFlags::target
  std::string summary;  // one line: the region, its subnet, the name and the balancers (DC)
};
// Resolves the service for `region` through the running deployment of `topology`.
Result<RegionTargets> ResolveRegion(const std::string& topology, const std::string& region);

}  // namespace millions::ctl
