// libFuzzer target: raw bytes as a Redis reply stream, consumed one reply at a time as the
// client does. Beyond "no crash": every reply uses at least one byte and no more than it was
// given, every strict prefix of a reply asks for more bytes (never a false error), and a reply
// written back out in RESP reads back as the same value.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cache/resp.h"

namespace {

using millions::cache::EncodeCommand;
using millions::cache::RedisReply;
using millions::cache::RespLimits;
using millions::cache::RespParser;
using State = RespParser::State;

// Bulk strings for both string kinds: the parser does not keep them apart.
void Write(const RedisReply& r, std::string* out) {
  switch (r.type) {
    case RedisReply::Type::kString:
      *out += "$" + std::to_string(r.str.size()) + "\r\n" + r.str + "\r\n";
      break;
    case RedisReply::Type::kError:
      *out += "-" + r.str + "\r\n";
      break;
    case RedisReply::Type::kInteger:
      *out += ":" + std::to_string(r.integer) + "\r\n";
      break;
    case RedisReply::Type::kNil:
      *out += "$-1\r\n";
      break;
    case RedisReply::Type::kArray:
      *out += "*" + std::to_string(r.elements.size()) + "\r\n";
      for (const auto& e : r.elements) Write(e, out);
      break;
  }
}

bool Same(const RedisReply& a, const RedisReply& b) {
  if (a.type != b.type || a.str != b.str || a.integer != b.integer ||
      a.elements.size() != b.elements.size())
    return false;
  for (size_t i = 0; i < a.elements.size(); ++i)
    if (!Same(a.elements[i], b.elements[i])) return false;
  return true;
}

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const RespParser parser;  // default limits, as the client runs
  RespLimits small;
  small.max_bulk_bytes = 8;
  small.max_array_elements = 3;
  small.max_depth = 2;
  const RespParser tight(small);
  RedisReply r, again;
  size_t pos = 0;
  for (;;) {
    const std::string_view rest = in.substr(pos);
    size_t used = 0;
    State s = parser.Parse(rest, &r, &used);
    // Tighter limits may refuse a reply but never read it differently.
    size_t tight_used = 0;
    State ts = tight.Parse(rest, &again, &tight_used);
    if (ts == State::kReply) Check(s == State::kReply && tight_used == used && Same(r, again));
    if (s != State::kReply) {
      Check(used == 0);
      break;
    }
    Check(used > 0 && used <= rest.size());
    const std::string_view whole = rest.substr(0, used);
    for (size_t cut : {size_t{0}, used / 2, used - 1}) {
      size_t u = 1;
      Check(parser.Parse(whole.substr(0, cut), &again, &u) == State::kNeedMore && u == 0);
    }
    std::string wire;
    Write(r, &wire);
    Check(parser.Parse(wire, &again, &used) == State::kReply && used == wire.size() &&
          Same(r, again));
    // An array of strings is what a command is: encoding it as one gives the same strings.
    if (r.type == RedisReply::Type::kArray) {
      std::vector<std::string> argv;
      for (const auto& e : r.elements)
        if (e.type == RedisReply::Type::kString) argv.push_back(e.str);
      wire.clear();
      EncodeCommand(argv, &wire);
      Check(parser.Parse(wire, &again, &used) == State::kReply && used == wire.size() &&
            again.type == RedisReply::Type::kArray && again.elements.size() == argv.size());
      for (size_t i = 0; i < argv.size(); ++i) Check(again.elements[i].str == argv[i]);
    }
    pos += whole.size();
  }
  return 0;
}
