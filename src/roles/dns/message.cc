#include "roles/dns/message.h"

namespace millions::dns {
namespace {

uint16_t Get16(std::string_view m, size_t p) {
  return static_cast<uint16_t>((static_cast<uint8_t>(m[p]) << 8) | static_cast<uint8_t>(m[p + 1]));
}
uint32_t Get32(std::string_view m, size_t p) {
  return (uint32_t{Get16(m, p)} << 16) | Get16(m, p + 2);
}
void Put16(std::string* o, uint16_t v) {
  o->push_back(static_cast<char>(v >> 8));
  o->push_back(static_cast<char>(v & 0xff));
}
void Put32(std::string* o, uint32_t v) {
  Put16(o, static_cast<uint16_t>(v >> 16));
  Put16(o, static_cast<uint16_t>(v & 0xffff));
}
void Set16(std::string* o, size_t p, uint16_t v) {
  (*o)[p] = static_cast<char>(v >> 8);
  (*o)[p + 1] = static_cast<char>(v & 0xff);
}

enum class OptResult { kOk, kFormErr, kBadEcs };

// The OPT record's rdata: options, of which only Client Subnet is read.
OptResult ReadOpt(std::string_view rd, Edns* e) {
  size_t p = 0;
  bool seen_ecs = false;
  while (p < rd.size()) {
    if (rd.size() - p < 4) return OptResult::kFormErr;
    uint16_t code = Get16(rd, p), len = Get16(rd, p + 2);
    p += 4;
    if (rd.size() - p < len) return OptResult::kFormErr;
    std::string_view v = rd.substr(p, len);
    p += len;
    if (code != kOptionEcs) continue;
    if (seen_ecs || v.size() < 4) return OptResult::kBadEcs;
    seen_ecs = true;
    ClientSubnet s;
    s.family = Get16(v, 0);
    s.source_prefix = static_cast<uint8_t>(v[2]);
    s.scope_prefix = static_cast<uint8_t>(v[3]);
    size_t max_bits = s.family == 1 ? 32 : s.family == 2 ? 128 : 0;
    if (max_bits == 0 || s.source_prefix > max_bits) return OptResult::kBadEcs;
    size_t bytes = (s.source_prefix + 7) / 8;
    if (v.size() - 4 != bytes) return OptResult::kBadEcs;  // too few or too many octets
    for (size_t i = 0; i < bytes; ++i) s.address[i] = static_cast<uint8_t>(v[4 + i]);
    if (s.source_prefix % 8 != 0) {
      uint8_t mask = static_cast<uint8_t>(0xff >> (s.source_prefix % 8));
      if (s.address[bytes - 1] & mask) return OptResult::kBadEcs;  // bits past the prefix
    }
    e->ecs = s;
  }
  return OptResult::kOk;
}

// One resource record at *pos: its fields (name into `name` when given) and rdata bounds.
struct RawRecord {
  uint16_t type = 0, rclass = 0;
  uint32_t ttl = 0;
  std::string_view rdata;
  std::array<char, 256> name{};
  uint16_t name_len = 0;
};
bool ReadRecord(std::string_view m, size_t* pos, RawRecord* r) {
  size_t p = 0;
  if (!ReadName(m, *pos, &r->name, &r->name_len, &p)) return false;
  if (m.size() - p < 10) return false;
  r->type = Get16(m, p);
  r->rclass = Get16(m, p + 2);
  r->ttl = Get32(m, p + 4);
  uint16_t len = Get16(m, p + 8);
  p += 10;
  if (m.size() - p < len) return false;
  r->rdata = m.substr(p, len);
  *pos = p + len;
  return true;
}

// Reads the OPT record `r` into *e; the OPT's owner must be the root.
OptResult ReadOptRecord(const RawRecord& r, Edns* e) {
  if (r.name_len != 0) return OptResult::kFormErr;
  e->udp_size = std::max<uint16_t>(r.rclass, 512);
  e->version = static_cast<uint8_t>((r.ttl >> 16) & 0xff);
  e->dnssec_ok = (r.ttl & 0x8000) != 0;
  return ReadOpt(r.rdata, e);
}

}  // namespace

const char* RcodeName(Rcode r) {
  switch (r) {
    case Rcode::kNoError:
      return "NOERROR";
    case Rcode::kFormErr:
      return "FORMERR";
    case Rcode::kServFail:
      return "SERVFAIL";
    case Rcode::kNxDomain:
      return "NXDOMAIN";
    case Rcode::kNotImp:
      return "NOTIMP";
    case Rcode::kRefused:
      return "REFUSED";
    case Rcode::kBadVers:
      return "BADVERS";
  }
  return "other";
}

const char* TypeLabel(uint16_t qtype) {
  switch (qtype) {
    case type::kA:
      return "A";
    case type::kNs:
      return "NS";
    case type::kCname:
      return "CNAME";
    case type::kSoa:
      return "SOA";
    case type::kAaaa:
      return "AAAA";
    case type::kAny:
      return "ANY";
    case type::kAxfr:
      return "AXFR";
    case type::kIxfr:
      return "IXFR";
    default:
      return "other";
  }
}

bool ReadName(std::string_view m, size_t pos, std::array<char, 256>* out, uint16_t* len,
              size_t* next) {
  size_t p = pos;
  // Pointers must go strictly below every offset this name has visited: no forward pointers,
  // and, since each jump lands lower than the last, no loops.
  size_t lowest = pos;
  bool jumped = false;
  size_t wire_len = 0;  // octets of the uncompressed name, the final root label included
  uint16_t n = 0;
  for (;;) {
    if (p >= m.size()) return false;
    uint8_t b = static_cast<uint8_t>(m[p]);
    if ((b & 0xc0) == 0xc0) {
      if (p + 1 >= m.size()) return false;
      size_t target = ((b & 0x3f) << 8) | static_cast<uint8_t>(m[p + 1]);
      if (target >= lowest) return false;
      if (!jumped) *next = p + 2;
      jumped = true;
      lowest = target;
      p = target;
      continue;
    }
    if (b & 0xc0) return false;  // 0x40 and 0x80: extended label types, refused
    wire_len += b + 1;
    if (wire_len > 255) return false;
    if (b == 0) {
      if (!jumped) *next = p + 1;
      *len = n;
      return true;
    }
    if (m.size() - p - 1 < b) return false;
    if (n > 0) (*out)[n++] = '.';
    for (size_t i = 0; i < b; ++i) {
      char c = m[p + 1 + i];
      // A dot inside a label would read as two labels in the dotted form: refused.
      if (c == '.') return false;
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      (*out)[n++] = c;
    }
    p += 1 + b;
  }
}

bool AppendName(std::string_view name, std::string* out) {
  size_t total = 1;
  size_t start = out->size();
  while (!name.empty()) {
    size_t dot = name.find('.');
    std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > 63) {
      out->resize(start);
      return false;
    }
    total += label.size() + 1;
    if (total > 255) {
      out->resize(start);
      return false;
    }
    out->push_back(static_cast<char>(label.size()));
    out->append(label);
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
    if (name.empty()) {  // a trailing dot: the root is implied
      break;
    }
  }
  out->push_back('\0');
  return true;
}

ParseResult ParseQuery(std::string_view m, const ParseLimits& limits) {
  ParseResult r;
  if (m.size() < 12) {
    r.error = ParseError::kShort;
    return r;
  }
  r.id = Get16(m, 0);
  uint8_t f1 = static_cast<uint8_t>(m[2]), f2 = static_cast<uint8_t>(m[3]);
  r.opcode = (f1 >> 3) & 0x0f;
  r.rd = (f1 & 1) != 0;
  if (f1 & 0x80) {
    r.error = ParseError::kResponse;
    return r;
  }
  if (r.opcode != 0) {
    r.error = ParseError::kNotImp;
    return r;
  }
  r.error = ParseError::kFormErr;
  if (m.size() > limits.max_message) return r;
  uint16_t qd = Get16(m, 4), an = Get16(m, 6), ns = Get16(m, 8), ar = Get16(m, 10);
  if (qd != 1) return r;
  size_t records = size_t{an} + ns + ar;
  if (records > static_cast<size_t>(limits.max_records)) return r;
  // Each record takes at least 11 octets and the question at least 5: counts larger than the
  // bytes could hold are refused before anything is read.
  if (5 + records * 11 > m.size() - 12) return r;
  Query q;
  q.id = r.id;
  q.rd = r.rd;
  q.cd = (f2 & 0x10) != 0;
  size_t p = 0;
  if (!ReadName(m, 12, &q.name_buf, &q.name_len, &p)) return r;
  // The question is the first name: a pointer in it could only point into the header, whose
  // bytes differ in the response that echoes the question. Refused.
  if (p - 12 != (q.name_len == 0 ? 1u : q.name_len + 2u)) return r;
  if (m.size() - p < 4) return r;
  q.qtype = Get16(m, p);
  q.qclass = Get16(m, p + 2);
  p += 4;
  q.question_wire = m.substr(12, p - 12);
  r.question_wire = q.question_wire;
  RawRecord rec;
  for (size_t i = 0; i < records; ++i) {
    if (!ReadRecord(m, &p, &rec)) return r;
    if (i < size_t{an} + ns || rec.type != type::kOpt) continue;
    if (q.edns) return r;  // two OPT records
    Edns e;
    OptResult o = ReadOptRecord(rec, &e);
    r.has_edns = true;
    if (o == OptResult::kFormErr) return r;
    if (o == OptResult::kBadEcs) {
      r.error = ParseError::kBadEcs;
      return r;
    }
    q.edns = e;
  }
  if (p != m.size()) return r;  // bytes past the last record
  r.query = std::move(q);
  return r;
}

Record MakeRecord(std::string_view owner_wire, uint16_t rtype, uint32_t ttl,
                  std::string_view rdata) {
  Record r;
  r.wire.reserve(owner_wire.size() + 10 + rdata.size());
  r.wire.append(owner_wire);
  Put16(&r.wire, rtype);
  Put16(&r.wire, kClassIn);
  Put32(&r.wire, ttl);
  Put16(&r.wire, static_cast<uint16_t>(rdata.size()));
  r.wire.append(rdata);
  return r;
}

namespace {

void AppendOpt(const ResponseSpec& spec, std::string* out) {
  out->push_back('\0');  // the root
  Put16(out, type::kOpt);
  Put16(out, spec.udp_size);
  uint32_t ext = static_cast<uint32_t>(static_cast<uint16_t>(spec.rcode) >> 4) << 24;
  Put32(out, ext);  // version 0, DO clear: no DNSSEC here
  if (!spec.ecs) {
    Put16(out, 0);
    return;
  }
  const ClientSubnet& s = *spec.ecs;
  size_t bytes = (s.source_prefix + 7) / 8;
  Put16(out, static_cast<uint16_t>(4 + 4 + bytes));
  Put16(out, kOptionEcs);
  Put16(out, static_cast<uint16_t>(4 + bytes));
  Put16(out, s.family);
  out->push_back(static_cast<char>(s.source_prefix));
  out->push_back(static_cast<char>(s.scope_prefix));
  out->append(reinterpret_cast<const char*>(s.address.data()), bytes);
}

void AppendRecords(Records rs, std::string* out) {
  for (size_t i = 0; i < rs.size; ++i) out->append(rs.data[i].wire);
}

}  // namespace

bool BuildResponse(uint16_t id, uint8_t opcode, bool rd, bool cd, std::string_view question_wire,
                   const ResponseSpec& spec, size_t limit, std::string* out) {
  out->clear();
  uint16_t rcode = static_cast<uint16_t>(spec.rcode);
  uint8_t f1 =
      static_cast<uint8_t>(0x80 | ((opcode & 0x0f) << 3) | (spec.aa ? 0x04 : 0) | (rd ? 0x01 : 0));
  uint8_t f2 = static_cast<uint8_t>((cd ? 0x10 : 0) | (rcode & 0x0f));
  Put16(out, id);
  out->push_back(static_cast<char>(f1));
  out->push_back(static_cast<char>(f2));
  Put16(out, question_wire.empty() ? 0 : 1);
  Put16(out, static_cast<uint16_t>(spec.answer.size));
  Put16(out, static_cast<uint16_t>(spec.authority.size));
  Put16(out, static_cast<uint16_t>(spec.additional.size + (spec.edns ? 1 : 0)));
  out->append(question_wire);
  size_t records_at = out->size();
  AppendRecords(spec.answer, out);
  AppendRecords(spec.authority, out);
  AppendRecords(spec.additional, out);
  if (spec.edns) AppendOpt(spec, out);
  if (out->size() <= limit) return false;
  // Truncated: the header with TC, the question, and the OPT record alone (RFC 6891 6.2.6).
  out->resize(records_at);
  (*out)[2] = static_cast<char>(f1 | 0x02);
  Set16(out, 6, 0);
  Set16(out, 8, 0);
  Set16(out, 10, spec.edns ? 1 : 0);
  if (spec.edns) AppendOpt(spec, out);
  return true;
}

std::string RdataSoa(std::string_view mname, std::string_view rname, uint32_t serial,
                     uint32_t refresh, uint32_t retry, uint32_t expire, uint32_t minimum) {
  std::string out;
  AppendName(mname, &out);
  AppendName(rname, &out);
  Put32(&out, serial);
  Put32(&out, refresh);
  Put32(&out, retry);
  Put32(&out, expire);
  Put32(&out, minimum);
  return out;
}

std::optional<Message> ParseMessage(std::string_view m, const ParseLimits& limits) {
  if (m.size() < 12 || m.size() > limits.max_message) return std::nullopt;
  Message msg;
  msg.id = Get16(m, 0);
  uint8_t f1 = static_cast<uint8_t>(m[2]), f2 = static_cast<uint8_t>(m[3]);
  msg.qr = f1 & 0x80;
  msg.opcode = (f1 >> 3) & 0x0f;
  msg.aa = f1 & 0x04;
  msg.tc = f1 & 0x02;
  msg.rd = f1 & 0x01;
  msg.rcode = f2 & 0x0f;
  uint16_t qd = Get16(m, 4), an = Get16(m, 6), ns = Get16(m, 8), ar = Get16(m, 10);
  size_t records = size_t{an} + ns + ar;
  if (qd > 1 || records > static_cast<size_t>(limits.max_records)) return std::nullopt;
  if (qd * 5 + records * 11 > m.size() - 12) return std::nullopt;
  size_t p = 12;
  if (qd == 1) {
    std::array<char, 256> name;
    uint16_t len = 0;
    if (!ReadName(m, 12, &name, &len, &p) || m.size() - p < 4) return std::nullopt;
    msg.qname.assign(name.data(), len);
    msg.qtype = Get16(m, p);
    msg.qclass = Get16(m, p + 2);
    msg.has_question = true;
    p += 4;
  }
  RawRecord rec;
  for (size_t i = 0; i < records; ++i) {
    if (!ReadRecord(m, &p, &rec)) return std::nullopt;
    if (i >= size_t{an} + ns && rec.type == type::kOpt) {
      if (msg.edns) return std::nullopt;
      Edns e;
      if (ReadOptRecord(rec, &e) != OptResult::kOk) return std::nullopt;
      msg.rcode = static_cast<uint16_t>(msg.rcode | ((rec.ttl >> 24) << 4));
      msg.edns = e;
      continue;
    }
    ParsedRecord pr{std::string(rec.name.data(), rec.name_len), rec.type, rec.rclass, rec.ttl,
                    std::string(rec.rdata)};
    auto& section = i < an ? msg.answer : i < size_t{an} + ns ? msg.authority : msg.additional;
    section.push_back(std::move(pr));
  }
  if (p != m.size()) return std::nullopt;
  return msg;
}

}  // namespace millions::dns
