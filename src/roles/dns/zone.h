// The zone's answers for one state of the balancers' health: geo routing's second half (each
// region's DCs in order of preference; the first with a healthy balancer is the answer) with
// every record set encoded once, when health changes, so that a query costs a parse, a region
// lookup and a copy of bytes (docs/dns.md).
// Fail open: when no balancer anywhere passes its checks, every balancer is answered (the
// region's preferred DC first): the checks may be what is broken, and an answer that might
// work beats none.
// Thread-safety: a Zone is immutable once built and is shared by every io thread through a
// shared_ptr (health.h publishes it). Ownership: owns its records; ZoneConfig is a value.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "roles/dns/geo.h"
#include "roles/dns/message.h"

namespace millions::dns {

struct Balancer {
  std::string name, dc;
  Subnet ip;  // prefix 32 or 128: the address answered
};

struct NameServer {
  std::string label;  // its name is label.ZONE
  Subnet ip;
};

struct Region {
  std::string name;
  std::vector<Subnet> subnets;
  std::vector<std::string> dcs;  // in order of preference
};

struct ZoneConfig {
  std::string zone = "millions.test";  // lower case, no final dot
  uint32_t ttl = 5;                    // the balancers' A and AAAA records
  uint32_t ns_ttl = 3600;              // SOA, NS and the name servers' addresses
  uint32_t negative_ttl = 30;          // NXDOMAIN and NODATA (the SOA's minimum)
  uint32_t serial = 1;
  std::vector<std::string> service_labels = {"@", "www"};  // "@": the apex
  std::vector<NameServer> name_servers;
  std::vector<Balancer> balancers;
  std::vector<std::string> dcs;  // every DC, in the topology's order
  std::vector<Region> regions;
  uint16_t udp_size = 1232;  // what we advertise and the most we send over UDP
};

// What a query came to, for metrics and logs.
struct Outcome {
  uint16_t qtype = 0;
  Rcode rcode = Rcode::kNoError;
  bool truncated = false;
  bool answered = true;  // false: dropped (a response, or too short to answer)
  int region = -1;
};

class Zone {
 public:
  // healthy[i] is the verdict on cfg.balancers[i].
  Zone(const ZoneConfig& cfg, const std::vector<bool>& healthy);

  // The response to `wire` from a client at `source` (prefix 32 or 128) over UDP (`udp`: the
  // requestor's size limit applies) or TCP, into *out.
  Outcome Respond(std::string_view wire, const Subnet& source, bool udp, std::string* out) const;

  // The DC each region's clients are sent to now ("" when fail-open or none); index -1 of the
  // result's end is the default (clients in no region).
  const std::vector<std::string>& chosen_dcs() const { return chosen_dc_; }
  bool fail_open() const { return fail_open_; }
  const GeoMap& geo() const { return geo_; }

 private:
  struct Choice {
    std::vector<Record> a, aaaa;
  };
  enum class Kind { kOutside, kApex, kService, kNameServer, kNone };
  Kind Classify(std::string_view name, bool* service, int* ns_index) const;

  ZoneConfig cfg_;
  GeoMap geo_;
  std::vector<Choice> choices_;  // per region, then the default
  std::vector<std::string> chosen_dc_;
  bool fail_open_ = false;
  bool apex_is_service_ = false;
  std::vector<Record> soa_, ns_, glue_;
  std::vector<Choice> ns_addresses_;  // per name server: its A or AAAA (owner: the question)
  std::vector<Record> any_soa_;
};

}  // namespace millions::dns
