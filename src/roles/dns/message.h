// DNS messages (RFC 1035 section 4, EDNS(0) per RFC 6891, Client Subnet per RFC 7871): a bounded
// parser for the queries an authoritative server receives and a builder for its responses. Pure
// functions over bytes, no I/O: the server (server.h) and the fuzz target drive them.
// The parser trusts nothing: names are at most 255 octets of at most 63-octet labels,
// compression pointers must point strictly backwards (which also rules out loops), every count
// is checked against the bytes left, and a message longer than what it declares is an error.
// Thread-safety: values and pure functions. Ownership: parsed values own their strings.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace millions::dns {

namespace type {
inline constexpr uint16_t kA = 1, kNs = 2, kCname = 5, kSoa = 6, kAaaa = 28, kOpt = 41, kIxfr = 251,
                          kAxfr = 252, kAny = 255;
}
inline constexpr uint16_t kClassIn = 1;
inline constexpr uint16_t kOptionEcs = 8;  // RFC 7871

// Response codes; BADVERS (16) is extended: its upper 8 bits travel in the OPT record.
enum class Rcode : uint16_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNxDomain = 3,
  kNotImp = 4,
  kRefused = 5,
  kBadVers = 16,
};
const char* RcodeName(Rcode r);
// "A", "AAAA", ... or "other": a metrics label with a bounded set of values.
const char* TypeLabel(uint16_t qtype);

// An EDNS Client Subnet option: the client's address truncated to source_prefix bits.
struct ClientSubnet {
  uint16_t family = 1;  // 1: IPv4, 2: IPv6
  uint8_t source_prefix = 0;
  uint8_t scope_prefix = 0;
  std::array<uint8_t, 16> address{};  // bits past source_prefix are zero
};

struct Edns {
  uint16_t udp_size = 512;  // the requestor's payload size (values below 512 read as 512)
  uint8_t version = 0;
  bool dnssec_ok = false;
  std::optional<ClientSubnet> ecs;
};

struct Query {
  uint16_t id = 0;
  uint8_t opcode = 0;
  bool rd = false;
  bool cd = false;
  // The one question's name: lower case, dotted, without the final dot ("" is the root); kept
  // inline, so that parsing a query allocates nothing.
  std::array<char, 256> name_buf{};
  uint16_t name_len = 0;
  std::string_view name() const { return {name_buf.data(), name_len}; }
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  std::string_view question_wire;  // the question's bytes as received (echoed back)
  std::optional<Edns> edns;
};

// Why a message is not a query we can answer.
enum class ParseError {
  kShort,     // fewer than 12 bytes: not even an id to answer; dropped
  kResponse,  // QR set: never answer a response (reflection loops); dropped
  kNotImp,    // an opcode other than QUERY: NOTIMP
  kFormErr,   // malformed: FORMERR (the id and, when readable, the question are echoed)
  kBadEcs,    // a malformed Client Subnet option: FORMERR (RFC 7871 section 7.1.1)
};

struct ParseResult {
  std::optional<Query> query;  // set on success
  ParseError error = ParseError::kFormErr;
  // For errors that are answered: the id, flags and (when parsed) the question to echo.
  uint16_t id = 0;
  uint8_t opcode = 0;
  bool rd = false;
  std::string_view question_wire;
  bool has_edns = false;  // an OPT record was read: the error response carries one too
};

// Bounds on what the parser accepts (the defaults are the protocol's own limits).
struct ParseLimits {
  size_t max_message = 65535;
  int max_records = 64;  // answer + authority + additional records a query may carry
};

ParseResult ParseQuery(std::string_view wire, const ParseLimits& limits = {});

// Reads a (possibly compressed) name starting at `pos` of `msg`; on success the dotted
// lower-case name is in out[0..*len) (at most 253 characters) and *next is the offset after the
// name's bytes at pos.
bool ReadName(std::string_view msg, size_t pos, std::array<char, 256>* out, uint16_t* len,
              size_t* next);

// Appends `name` (dotted, no final dot) in wire form without compression; false when a label
// is empty or longer than 63 octets or the whole is longer than 255.
bool AppendName(std::string_view name, std::string* out);

// ---- building responses --------------------------------------------------------------------

// One resource record in wire form (owner, type, class IN, TTL, rdata), built once at start-up
// or when health changes, and copied into responses as bytes.
struct Record {
  std::string wire;
};
// owner_wire: a name in wire form, e.g. "\xc0\x0c" (a pointer to the question's name, which
// every response carries at offset 12) or AppendName's output.
Record MakeRecord(std::string_view owner_wire, uint16_t rtype, uint32_t ttl,
                  std::string_view rdata);

// A run of records, e.g. the answer section; points into records kept by the caller.
struct Records {
  const Record* data = nullptr;
  size_t size = 0;
  Records() = default;
  Records(const std::vector<Record>& v) : data(v.data()), size(v.size()) {}  // NOLINT
};

struct ResponseSpec {
  Rcode rcode = Rcode::kNoError;
  bool aa = true;
  Records answer, authority, additional;
  bool edns = false;                // append an OPT record
  uint16_t udp_size = 1232;         // ours, in the OPT record
  std::optional<ClientSubnet> ecs;  // echoed with its scope prefix set
};

// Writes the response to a query with header fields `id`, `opcode`, `rd`, `cd` and the
// question's wire bytes. When the whole does not fit in `limit` bytes, the records are dropped
// (the OPT record kept) and TC is set; returns true when it did so.
bool BuildResponse(uint16_t id, uint8_t opcode, bool rd, bool cd, std::string_view question_wire,
                   const ResponseSpec& spec, size_t limit, std::string* out);

// Helpers for rdata.
std::string RdataSoa(std::string_view mname, std::string_view rname, uint32_t serial,
                     uint32_t refresh, uint32_t retry, uint32_t expire, uint32_t minimum);

// ---- reading responses (tests, the fuzz target, and health of nothing else) ------------------

struct ParsedRecord {
  std::string name;
  uint16_t type = 0, rclass = 0;
  uint32_t ttl = 0;
  std::string rdata;  // as on the wire (names inside it may be compressed)
};

struct Message {
  uint16_t id = 0;
  bool qr = false, aa = false, tc = false, rd = false;
  uint8_t opcode = 0;
  uint16_t rcode = 0;  // with the OPT record's extended bits
  std::string qname;
  uint16_t qtype = 0, qclass = 0;
  bool has_question = false;
  std::vector<ParsedRecord> answer, authority, additional;  // additional excludes the OPT
  std::optional<Edns> edns;
};

// Any message (query or response), bounded like ParseQuery; nullopt when malformed.
std::optional<Message> ParseMessage(std::string_view wire, const ParseLimits& limits = {});

}  // namespace millions::dns
