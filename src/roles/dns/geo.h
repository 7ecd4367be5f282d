// Geo routing's first half: which region a client is in, from its subnet (an EDNS Client Subnet
// option, else the query's source address), by the longest configured prefix that contains it,
// and the scope of that decision (RFC 7871: the leftmost bits of the client's address for which
// the answer holds, so that a resolver caches it for exactly that block).
// Thread-safety: immutable after construction; Lookup may run on any thread.
// Ownership: owns its subnets.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace millions::dns {

struct Subnet {
  uint16_t family = 1;  // 1: IPv4 (4 address bytes used), 2: IPv6
  std::array<uint8_t, 16> address{};
  uint8_t prefix = 0;
};

// "198.18.1.0/24" or "2001:db8::/32"; nullopt when malformed or when bits past the prefix are
// set (a typo such as 198.18.1.7/24 is refused rather than guessed at).
std::optional<Subnet> ParseSubnet(std::string_view text);
// An address literal (no brackets) as family and bytes.
std::optional<Subnet> ParseAddress(std::string_view text);
std::string FormatSubnet(const Subnet& s);

struct GeoMatch {
  int region = -1;    // index into the regions given, -1: none contains the client
  uint8_t scope = 0;  // for the ECS option's SCOPE PREFIX-LENGTH
};

class GeoMap {
 public:
  // region_subnets[i]: the subnets of region i.
  explicit GeoMap(std::vector<std::vector<Subnet>> region_subnets);
  // The client: `family`, `address` known to its first `bits` bits (32 or 128 for a source
  // address; the ECS source prefix otherwise).
  GeoMatch Lookup(uint16_t family, const std::array<uint8_t, 16>& address, uint8_t bits) const;

 private:
  struct Entry {
    Subnet subnet;
    int region;
  };
  std::vector<Entry> entries_;
};

}  // namespace millions::dns
