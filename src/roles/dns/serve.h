// `millions serve dns --config FILE --node NAME`: one authoritative DNS server of a topology
// (docs/dns.md): the zone's geo-routed answers over UDP and TCP on its listen address, and the
// admin listener with /livez, /readyz, /metrics and GET /status (balancers' health as this
// server sees it, and the DC each region is sent to).
// Thread-safety: blocks the calling thread until drained. Ownership: none kept.
#pragma once

#include <string>

namespace millions::dns {

// Throws config::ConfigError for a bad topology or unknown node (exit code 2).
int Serve(const std::string& topology, const std::string& node);

}  // namespace millions::dns
