// RESP2 encoding (ours) and incremental reply parsing (hiredis' redisReader). hiredis calls back
// for each value it completes; the callbacks write it straight into our RedisReply tree (the
// root is RespReader::building_, children go into their parent's elements), so no hiredis reply
// object is ever allocated and nothing is converted afterwards. On top of hiredis the callbacks
// enforce our limits (RespLimits) and the CRLF after a bulk string, which hiredis 0.14 skips
// without looking at.
// Thread-safety: a reader belongs to one thread; the callbacks touch only the reader they serve.
#include "cache/resp.h"

#include <hiredis/read.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <new>

namespace millions::cache {

namespace {

// Appends a decimal; to_chars is the cheapest correct integer formatter in the standard library.
void AppendHeader(std::string* out, char type, size_t n) {
  char buf[24];
  buf[0] = type;
  char* end = std::to_chars(buf + 1, buf + sizeof(buf) - 2, n).ptr;
  *end++ = '\r';
  *end++ = '\n';
  out->append(buf, static_cast<size_t>(end - buf));
}

size_t Digits(size_t n) {
  size_t d = 1;
  while (n >= 10) {
    n /= 10;
    ++d;
  }
  return d;
}

// A bulk header ("$" or "*", up to 20 digits with a sign, CRLF) is never longer than this, so a
// reply in progress that leaves more unparsed bytes than max_bulk_bytes plus this holds an item
// over the limit, and is refused before it can grow further.
constexpr size_t kMaxHeaderBytes = 24;

// Elements reserved up front for an array: its declared count is not trusted before its bytes
// arrive (a peer could declare 2^20 and send nothing), so bigger arrays grow as elements come.
constexpr size_t kReserveElements = 64;

}  // namespace

// hiredis' reply-object functions. A returned nullptr makes hiredis fail the stream ("out of
// memory"), which is how a limit refuses a reply. The objects live in our tree, so freeObject is
// not set: hiredis never frees what it did not allocate.
struct RespCallbacks {
  static RespReader* Self(const redisReadTask* t) { return static_cast<RespReader*>(t->privdata); }

  // The value this task fills. A child is appended to its parent, the array in progress one
  // level up: only the last element of an array can be in progress, and a parent's vector grows
  // only while its own last element is complete, so the `obj` pointers hiredis keeps stay valid.
  static RedisReply* Slot(const redisReadTask* t, RedisReply::Type type) {
    RedisReply* r;
    if (t->parent == nullptr) {
      r = &Self(t)->building_;
      r->str.clear();  // keeps its capacity for the next reply
      r->integer = 0;
      r->elements.clear();
    } else {
      auto* parent = static_cast<RedisReply*>(t->parent->obj);
      r = &parent->elements.emplace_back();
    }
    r->type = type;
    return r;
  }

  static void* CreateString(const redisReadTask* t, char* str, size_t len) {
    // hiredis has checked that len + 2 bytes follow the bulk header but not that the last two
    // are CRLF; a simple line's CRLF is always there (that is how its end was found).
    if (len > Self(t)->limits_.max_bulk_bytes || str[len] != '\r' || str[len + 1] != '\n')
      return nullptr;
    RedisReply* r = Slot(
        t, t->type == REDIS_REPLY_ERROR ? RedisReply::Type::kError : RedisReply::Type::kString);
    r->str.assign(str, len);
    return r;
  }

  static void* CreateArray(const redisReadTask* t, int n) {
    const RespLimits& lim = Self(t)->limits_;
    int depth = 1;  // this array, and one for each array around it
    for (const redisReadTask* p = t->parent; p != nullptr; p = p->parent) ++depth;
    if (n < 0 || static_cast<size_t>(n) > lim.max_array_elements || depth > lim.max_depth)
      return nullptr;
    RedisReply* r = Slot(t, RedisReply::Type::kArray);
    r->elements.reserve(std::min(static_cast<size_t>(n), kReserveElements));
    return r;
  }

  static void* CreateInteger(const redisReadTask* t, long long v) {
    RedisReply* r = Slot(t, RedisReply::Type::kInteger);
    r->integer = v;
    return r;
  }

  static void* CreateNil(const redisReadTask* t) { return Slot(t, RedisReply::Type::kNil); }

  static redisReplyObjectFunctions kFunctions;
};

redisReplyObjectFunctions RespCallbacks::kFunctions = {
    &RespCallbacks::CreateString, &RespCallbacks::CreateArray, &RespCallbacks::CreateInteger,
    &RespCallbacks::CreateNil, nullptr};

void EncodeCommand(const std::vector<std::string>& argv, std::string* out) {
  // One reservation for the whole command, so appending never reallocates midway.
  size_t total = 1 + Digits(argv.size()) + 2;
  for (const auto& a : argv) total += 1 + Digits(a.size()) + 2 + a.size() + 2;
  // Grown geometrically by hand: a reserve of exactly what is needed on every call would copy the
  // whole buffer each time with standard libraries that honour it literally.
  if (out->capacity() - out->size() < total)
    out->reserve(std::max(out->size() + total, 2 * out->capacity()));
  AppendHeader(out, '*', argv.size());
  for (const auto& a : argv) {
    AppendHeader(out, '$', a.size());
    out->append(a);
    out->append("\r\n", 2);
  }
}

RespReader::RespReader(RespLimits limits)
    : reader_(redisReaderCreateWithFunctions(&RespCallbacks::kFunctions)), limits_(limits) {
  if (reader_ == nullptr) throw std::bad_alloc();
  reader_->privdata = this;  // redisReaderSetPrivdata casts to int, which C++ refuses
  // hiredis frees its emptied buffer once it holds more than maxbuf spare bytes; its default
  // (16 KiB) is about one socket read, which would free and reallocate on most reads.
  reader_->maxbuf = 1 << 20;
}

RespReader::~RespReader() { redisReaderFree(reader_); }

void RespReader::Feed(std::string_view bytes) {
  if (failed_ || bytes.empty()) return;
  if (redisReaderFeed(reader_, bytes.data(), bytes.size()) != REDIS_OK) failed_ = true;
}

size_t RespReader::Buffered() const { return reader_->len - reader_->pos; }

RespReader::State RespReader::Next(RedisReply* reply) {
  if (failed_) return State::kProtocolError;
  void* got = nullptr;
  if (redisReaderGetReply(reader_, &got) != REDIS_OK) {
    failed_ = true;
    return State::kProtocolError;
  }
  if (got == nullptr) {
    if (Buffered() > limits_.max_bulk_bytes + kMaxHeaderBytes) {
      failed_ = true;
      return State::kProtocolError;
    }
    return State::kNeedMore;
  }
  // A swap, so the caller's old reply lends its string capacity to the next one built.
  std::swap(*reply, building_);
  return State::kReply;
}

RespParser::State RespParser::Parse(std::string_view in, RedisReply* reply,
                                    size_t* consumed) const {
  *consumed = 0;
  RespReader reader(limits_);
  // Fed in doubling steps, so a short reply at the front of a long buffer costs its own length,
  // not the buffer's (hiredis copies what it is fed).
  size_t fed = 0;
  for (size_t step = 256;; step *= 2) {
    const size_t n = std::min(in.size() - fed, step);
    reader.Feed(in.substr(fed, n));
    fed += n;
    const State s = reader.Next(reply);
    if (s == State::kReply) {
      *consumed = fed - reader.Buffered();
      return s;
    }
    if (s == State::kProtocolError || fed == in.size()) return s;
  }
}

}  // namespace millions::cache
