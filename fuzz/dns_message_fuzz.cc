// libFuzzer target: raw bytes as a DNS query, as the server receives them over UDP or TCP.
// Beyond "no crash": a message the parser accepts has its one question inside the bytes and a
// name of at most 253 characters; the zone always answers what it does not drop with a
// well-formed response that echoes the id, fits the UDP limit it was given (512 without EDNS),
// and never answers a response; and every response reads back with the general parser.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "roles/dns/message.h"
#include "roles/dns/zone.h"

namespace {

using namespace millions::dns;

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

const Zone& TheZone() {
  static const Zone* z = [] {
    ZoneConfig c;
    c.dcs = {"dc1", "dc2"};
    c.balancers = {{"lb1", "dc1", *ParseAddress("127.0.3.1")},
                   {"lb2", "dc2", *ParseAddress("::1")}};
    c.regions = {
        {"east", {*ParseSubnet("198.18.1.0/24"), *ParseSubnet("2001:db8::/32")}, {"dc1", "dc2"}}};
    c.name_servers = {{"dns1", *ParseAddress("127.0.0.1")}};
    return new Zone(c, {true, false});
  }();
  return *z;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  ParseResult p = ParseQuery(in);
  if (p.query) {
    Check(p.query->name_len <= 253);
    Check(p.query->question_wire.data() >= in.data() &&
          p.query->question_wire.data() + p.query->question_wire.size() <= in.data() + in.size());
  }
  std::array<char, 256> name;
  uint16_t len = 0;
  size_t next = 0;
  for (size_t pos = 0; pos < std::min<size_t>(size, 64); ++pos)
    if (ReadName(in, pos, &name, &len, &next)) Check(len <= 253 && next > pos && next <= size);
  auto general = ParseMessage(in);
  (void)general;

  const Subnet source = *ParseAddress("198.18.1.9");
  for (bool udp : {true, false}) {
    std::string out;
    Outcome o = TheZone().Respond(in, source, udp, &out);
    if (!o.answered) {
      Check(size < 12 || (static_cast<uint8_t>(in[2]) & 0x80));
      continue;
    }
    Check(size >= 12 && !(static_cast<uint8_t>(in[2]) & 0x80));
    size_t limit = 65535;
    if (udp)
      limit = p.query && p.query->edns ? std::min<size_t>(p.query->edns->udp_size, 1232) : 512;
    Check(out.size() <= limit);
    auto m = ParseMessage(out);
    Check(m.has_value());
    Check(m->qr && m->id == ((static_cast<uint8_t>(in[0]) << 8) | static_cast<uint8_t>(in[1])));
  }
  return 0;
}
