// RESP (Redis serialization protocol, version 2): encoding commands and parsing replies
// incrementally from a byte stream. Parsing is hiredis' redisReader (read.h), which builds our
// RedisReply directly through its reply-object callbacks; encoding is ours (hiredis' formatter
// allocates per command). No I/O.
// Thread-safety: a RespReader or RespParser is used by one thread at a time; the rest are values.
// Ownership: replies own their strings; a RespReader owns its hiredis reader and the bytes fed to
// it but not yet parsed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisReader;  // hiredis, <hiredis/read.h>; only resp.cc sees it

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

// Limits that keep a hostile or broken peer from exhausting memory. hiredis nests at most 8
// arrays, so a max_depth above 8 acts as 8.
struct RespLimits {
  size_t max_bulk_bytes = 64 << 20;  // also bounds a simple line (+, -)
  size_t max_array_elements = 1 << 20;
  int max_depth = 8;
};

// Parses one reply from the front of a buffer the caller keeps (tests, the fuzz target). The
// client's read loop uses RespReader, which keeps the stream itself.
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

// The stream side: bytes as they arrive from the socket go in with Feed, replies come out of Next
// in order. A reply split over reads is carried over between calls. Not movable: hiredis holds
// a pointer to it.
class RespReader {
 public:
  using State = RespParser::State;
  explicit RespReader(RespLimits limits = {});
  ~RespReader();
  RespReader(const RespReader&) = delete;
  RespReader& operator=(const RespReader&) = delete;

  // Copies `bytes` into the reader's buffer.
  void Feed(std::string_view bytes);
  // kReply: the next complete reply is in *reply (its previous value is reused or dropped).
  // kNeedMore: feed more. kProtocolError: the stream is broken for good (close it).
  State Next(RedisReply* reply);
  // Bytes fed and not parsed yet (hiredis has already taken the finished parts of a reply that
  // is still in progress).
  size_t Buffered() const;

 private:
  friend struct RespCallbacks;
  redisReader* reader_;
  RespLimits limits_;
  RedisReply building_;  // the reply hiredis is building, swapped out when complete
  bool failed_ = false;
};

}  // namespace millions::cache
