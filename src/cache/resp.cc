// RESP2 encoding and incremental reply parsing. Every cache read's reply goes through Parse, so
// it avoids allocation until a reply is known to be complete: a first pass only validates and
// finds the reply's end (no allocation, so an incomplete reply costs nothing but the scan), a
// second pass builds the value. Standard library only: the fuzz build compiles it on its own.
// hiredis' redisReader was tried in its place (issue 13) and cost about twice as much per reply;
// the figures are in docs/libraries.md.
// Thread-safety: stateless apart from the limits; a parser may be shared if not mutated.
#include "cache/resp.h"

#include <algorithm>
#include <charconv>
#include <cstring>

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

enum class Step { kOk, kNeedMore, kError };

// Longer than any int64 with its sign: a peer that sends more (leading zeros forever) is broken,
// and the cap also bounds how far an incomplete header is scanned.
constexpr size_t kMaxIntChars = 20;

// A signed decimal ended by CRLF, starting at in[*pos]; on kOk *pos is past the CRLF. Errors are
// reported as soon as the bytes seen prove the line bad, so a prefix of a good reply is never
// an error (the fuzz target relies on that).
Step ReadInt(std::string_view in, size_t* pos, int64_t* value) {
  const size_t n = in.size();
  size_t i = *pos;
  bool neg = false;
  if (i < n && in[i] == '-') {
    neg = true;
    ++i;
  }
  const uint64_t limit = neg ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  uint64_t v = 0;
  size_t digits = 0;
  for (;; ++i) {
    if (i == n) return Step::kNeedMore;
    const unsigned d = static_cast<unsigned char>(in[i]) - unsigned{'0'};
    if (d > 9) break;
    if (++digits > kMaxIntChars || v > (limit - d) / 10) return Step::kError;
    v = v * 10 + d;
  }
  if (digits == 0 || in[i] != '\r') return Step::kError;
  if (i + 1 == n) return Step::kNeedMore;
  if (in[i + 1] != '\n') return Step::kError;
  // Modular conversion (defined since C++20) gives -2^63 for the one value without a positive.
  *value = neg ? static_cast<int64_t>(uint64_t{0} - v) : static_cast<int64_t>(v);
  *pos = i + 2;
  return Step::kOk;
}

// One reply at in[*pos]. With kBuild false only validates and advances (no allocation); with
// kBuild true fills *out from bytes the first pass accepted.
template <bool kBuild>
Step Walk(std::string_view in, size_t* pos, const RespLimits& lim, int depth, RedisReply* out) {
  const size_t n = in.size();
  size_t i = *pos;
  if (i == n) return Step::kNeedMore;
  const char type = in[i++];
  switch (type) {
    case '+':
    case '-': {
      // A simple line ends at its first CR. Searching at most max_bulk_bytes+1 bytes bounds both
      // the scan and what an endless line can make the caller buffer.
      const size_t window = std::min(n - i, lim.max_bulk_bytes + 1);
      const void* cr = std::memchr(in.data() + i, '\r', window);
      if (!cr) return window > lim.max_bulk_bytes ? Step::kError : Step::kNeedMore;
      const size_t e = static_cast<size_t>(static_cast<const char*>(cr) - in.data());
      if (e + 1 == n) return Step::kNeedMore;
      if (in[e + 1] != '\n') return Step::kError;
      if constexpr (kBuild) {
        out->type = type == '+' ? RedisReply::Type::kString : RedisReply::Type::kError;
        out->str.assign(in.data() + i, e - i);
      }
      *pos = e + 2;
      return Step::kOk;
    }
    case ':': {
      int64_t v = 0;
      Step s = ReadInt(in, &i, &v);
      if (s != Step::kOk) return s;
      if constexpr (kBuild) {
        out->type = RedisReply::Type::kInteger;
        out->integer = v;
      }
      *pos = i;
      return Step::kOk;
    }
    case '$': {
      int64_t len = 0;
      Step s = ReadInt(in, &i, &len);
      if (s != Step::kOk) return s;
      if (len == -1) {
        if constexpr (kBuild) out->type = RedisReply::Type::kNil;
        *pos = i;
        return Step::kOk;
      }
      if (len < 0 || static_cast<uint64_t>(len) > lim.max_bulk_bytes) return Step::kError;
      const size_t ulen = static_cast<size_t>(len);
      if (n - i < ulen + 2) return Step::kNeedMore;
      if (in[i + ulen] != '\r' || in[i + ulen + 1] != '\n') return Step::kError;
      if constexpr (kBuild) {
        out->type = RedisReply::Type::kString;
        out->str.assign(in.data() + i, ulen);
      }
      *pos = i + ulen + 2;
      return Step::kOk;
    }
    case '*': {
      int64_t count = 0;
      Step s = ReadInt(in, &i, &count);
      if (s != Step::kOk) return s;
      if (count == -1) {
        if constexpr (kBuild) out->type = RedisReply::Type::kNil;
        *pos = i;
        return Step::kOk;
      }
      if (count < 0 || static_cast<uint64_t>(count) > lim.max_array_elements) return Step::kError;
      // `depth` counts the arrays around this value; this one makes it depth + 1.
      if (depth >= lim.max_depth) return Step::kError;
      const size_t ucount = static_cast<size_t>(count);
      if constexpr (kBuild) {
        // Safe to size from the header now: the first pass saw every element's bytes.
        out->type = RedisReply::Type::kArray;
        out->elements.resize(ucount);
      }
      for (size_t k = 0; k < ucount; ++k) {
        Step e = Walk<kBuild>(in, &i, lim, depth + 1, kBuild ? &out->elements[k] : nullptr);
        if (e != Step::kOk) return e;
      }
      *pos = i;
      return Step::kOk;
    }
    default:
      return Step::kError;
  }
}

}  // namespace

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

RespParser::State RespParser::Parse(std::string_view in, RedisReply* reply,
                                    size_t* consumed) const {
  *consumed = 0;
  size_t end = 0;
  Step s = Walk<false>(in, &end, limits_, 0, nullptr);
  if (s == Step::kNeedMore) return State::kNeedMore;
  if (s == Step::kError) return State::kProtocolError;
  // Reset what the build pass may not overwrite, keeping the string's capacity for reuse.
  reply->str.clear();
  reply->integer = 0;
  reply->elements.clear();
  size_t pos = 0;
  Walk<true>(in, &pos, limits_, 0, reply);
  *consumed = pos;
  return State::kReply;
}

}  // namespace millions::cache
