#include "roles/dns/geo.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace millions::dns {
namespace {

int MaxBits(uint16_t family) { return family == 1 ? 32 : 128; }

bool Bit(const std::array<uint8_t, 16>& a, int i) { return (a[i / 8] >> (7 - i % 8)) & 1; }

// Leading bits a and b share, looking at no more than `limit`.
int CommonPrefix(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b, int limit) {
  int i = 0;
  while (i < limit && a[i / 8] == b[i / 8] && i % 8 == 0 && i + 8 <= limit) i += 8;
  while (i < limit && Bit(a, i) == Bit(b, i)) ++i;
  return i;
}

}  // namespace

std::optional<Subnet> ParseAddress(std::string_view text) {
  std::string s(text);
  Subnet out;
  if (inet_pton(AF_INET, s.c_str(), out.address.data()) == 1) {
    out.family = 1;
    out.prefix = 32;
    return out;
  }
  if (inet_pton(AF_INET6, s.c_str(), out.address.data()) == 1) {
    out.family = 2;
    out.prefix = 128;
    return out;
  }
  return std::nullopt;
}

std::optional<Subnet> ParseSubnet(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto a = ParseAddress(text.substr(0, slash));
  if (!a) return std::nullopt;
  std::string_view bits = text.substr(slash + 1);
  int n = -1;
  auto [p, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), n);
  if (ec != std::errc() || p != bits.data() + bits.size() || n < 0 || n > MaxBits(a->family))
    return std::nullopt;
  a->prefix = static_cast<uint8_t>(n);
  for (int i = n; i < MaxBits(a->family); ++i)
    if (Bit(a->address, i)) return std::nullopt;
  return a;
}

std::string FormatSubnet(const Subnet& s) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(s.family == 1 ? AF_INET : AF_INET6, s.address.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(s.prefix);
}

GeoMap::GeoMap(std::vector<std::vector<Subnet>> region_subnets) {
  for (size_t r = 0; r < region_subnets.size(); ++r)
    for (const auto& s : region_subnets[r]) entries_.push_back({s, static_cast<int>(r)});
  // Longest prefixes first: the first that contains the client is the match.
  std::stable_sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
    return a.subnet.prefix > b.subnet.prefix;
  });
}

GeoMatch GeoMap::Lookup(uint16_t family, const std::array<uint8_t, 16>& address,
                        uint8_t bits) const {
  GeoMatch m;
  int scope = 0;
  const int max_bits = MaxBits(family);
  for (const Entry& e : entries_) {
    if (e.subnet.family != family) continue;
    const int len = e.subnet.prefix;
    const int cpl = CommonPrefix(address, e.subnet.address, std::min<int>(len, bits));
    if (len <= bits && cpl >= len) {
      // Contains the client. The block the answer holds for may not be wider than this subnet
      // (it is inside it) ...
      if (m.region < 0) m.region = e.region;
      scope = std::max(scope, len);
    } else if (cpl < bits && cpl < len) {
      // ... nor reach into a subnet that does not contain the client: the block must end
      // before their first differing bit.
      scope = std::max(scope, cpl + 1);
    } else {
      // More specific than what the client told us, and agreeing with all of it: the answer
      // holds only for that subnet's length.
      scope = std::max(scope, len);
    }
  }
  m.scope = static_cast<uint8_t>(std::min(scope, max_bits));
  return m;
}

}  // namespace millions::dns
