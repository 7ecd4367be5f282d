// Query bytes for the DNS unit tests, built by hand (independently of the builder under test).
// Thread-safety and ownership: values only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

// Tests name only the QueryOpts fields they set ({.edns = true}); the rest keep their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace millions::dns::testing {

inline void Put16(std::string* o, uint16_t v) {
  o->push_back(static_cast<char>(v >> 8));
  o->push_back(static_cast<char>(v & 0xff));
}

inline std::string WireName(std::string_view name) {
  std::string out;
  while (!name.empty()) {
    size_t dot = name.find('.');
    std::string_view l = name.substr(0, dot);
    out.push_back(static_cast<char>(l.size()));
    out.append(l);
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
  }
  out.push_back('\0');
  return out;
}

struct QueryOpts {
  uint16_t id = 0x1234;
  uint8_t opcode = 0;
  bool edns = false;
  uint16_t udp_size = 1232;
  uint8_t version = 0;
  std::string ecs;  // the ECS option's data (family, prefixes, address), when non-empty
};

inline std::string MakeQuery(std::string_view name, uint16_t qtype, QueryOpts o = {}) {
  std::string q;
  Put16(&q, o.id);
  q.push_back(static_cast<char>((o.opcode << 3) | 0x01));  // RD
  q.push_back(0);
  Put16(&q, 1);
  Put16(&q, 0);
  Put16(&q, 0);
  Put16(&q, o.edns ? 1 : 0);
  q += WireName(name);
  Put16(&q, qtype);
  Put16(&q, 1);
  if (o.edns) {
    q.push_back('\0');
    Put16(&q, 41);
    Put16(&q, o.udp_size);
    q.push_back(0);
    q.push_back(static_cast<char>(o.version));
    Put16(&q, 0);
    std::string opts;
    if (!o.ecs.empty()) {
      Put16(&opts, 8);
      Put16(&opts, static_cast<uint16_t>(o.ecs.size()));
      opts += o.ecs;
    }
    Put16(&q, static_cast<uint16_t>(opts.size()));
    q += opts;
  }
  return q;
}

// ECS option data for an IPv4 subnet a.b.c.d/prefix.
inline std::string Ecs4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t prefix,
                        uint8_t scope = 0) {
  std::string e;
  Put16(&e, 1);
  e.push_back(static_cast<char>(prefix));
  e.push_back(static_cast<char>(scope));
  const uint8_t addr[4] = {a, b, c, d};
  for (int i = 0; i < (prefix + 7) / 8; ++i) e.push_back(static_cast<char>(addr[i]));
  return e;
}

}  // namespace millions::dns::testing
