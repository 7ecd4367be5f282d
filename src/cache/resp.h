// RESP (Redis serialization protocol, version 2): encoding commands and parsing replies
// incrementally from a byte stream. Pure functions and a small value type; no I/O.
// Thread-safety: a RespParser is used by one thread at a time; the rest are values.
// Ownership: replies own their strings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace millions::cache {

struct RedisReply {
  enum class Type { kString, kInteger, kNil, kArray, kError };
  Type type = Type::kNil;
  std::string str;  // kString (simple or bulk) and kError (the message)
  int64_t integer = 0;
  std::vector<RedisReply> elements;  // kArray
  bool is_nil() const { return type == Type::kNil; }
  bool is_error() const { return type == Type::kError; }
};

// Appends the command as a RESP array of bulk strings to *out.
void EncodeCommand(const std::vector<std::string>& argv, std::string* out);

// Limits that keep a hostile or broken peer from exhausting memory.
struct RespLimits {
  size_t max_bulk_bytes = 64 << 20;
  size_t max_array_elements = 1 << 20;
  int max_depth = 8;
};

// Parses replies out of a buffer that grows as bytes arrive.
class RespParser {
 public:
  explicit RespParser(RespLimits limits = {}) : limits_(limits) {}
  enum class State { kNeedMore, kReply, kProtocolError };
  // Parses one reply from the front of `in`. kReply: *reply is set and *consumed bytes were used.
  // kNeedMore: nothing consumed. kProtocolError: the stream cannot be parsed (close it).
  State Parse(std::string_view in, RedisReply* reply, size_t* consumed) const;

 private:
  RespLimits limits_;
};

}  // namespace millions::cache
