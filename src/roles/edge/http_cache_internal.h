// Text helpers shared by http_cache.cc, http_date.cc and ranges.cc: ASCII-only (field values
// are octets, not locale text), bounded, never throwing. Not part of the edge's interface.
#pragma once

#include <cstdint>
#include <string_view>

#include "roles/edge/http_cache.h"

namespace millions::edge::internal {

// RFC 9111 §1.2.2: a delta-seconds too large to represent, or any calculation that overflows,
// is 2^31 ("infinity", over 68 years).
inline constexpr Seconds kDeltaMax = Seconds{1} << 31;

inline char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }
inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }
inline bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool IsOws(char c) { return c == ' ' || c == '\t'; }

// tchar (RFC 9110 §5.6.2).
inline bool IsTokenChar(char c) {
  return IsAlpha(c) || IsDigit(c) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

inline bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (Lower(a[i]) != Lower(b[i])) return false;
  return true;
}

inline std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

// 1*DIGIT and nothing else, saturating at `cap` (no overflow however many digits).
inline std::optional<uint64_t> ParseDigits(std::string_view s, uint64_t cap) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (!IsDigit(c)) return std::nullopt;
    const auto d = static_cast<uint64_t>(c - '0');
    v = v > (cap - d) / 10 ? cap : v * 10 + d;
  }
  return v;
}

// delta-seconds (§1.2.2), clamped at 2^31.
inline std::optional<Seconds> ParseDelta(std::string_view s) {
  auto v = ParseDigits(s, static_cast<uint64_t>(kDeltaMax));
  if (!v) return std::nullopt;
  return static_cast<Seconds>(*v);
}

// Saturating arithmetic on times: hostile dates and caller clocks never overflow.
inline Seconds SatAdd(Seconds a, Seconds b) {
  Seconds r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}
inline Seconds SatSub(Seconds a, Seconds b) {
  Seconds r;
  if (__builtin_sub_overflow(a, b, &r)) return b < 0 ? INT64_MAX : INT64_MIN;
  return r;
}
inline Seconds Clamp(Seconds v, Seconds lo, Seconds hi) { return v < lo ? lo : v > hi ? hi : v; }

// An entity-tag (RFC 9110 §8.8.3): [ "W/" ] DQUOTE *etagc DQUOTE, whole.
struct EntityTag {
  bool weak = false;
  std::string_view opaque;  // between the quotes
};
inline bool IsEtagChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u == 0x21 || (u >= 0x23 && u <= 0x7e) || u >= 0x80;
}
// Reads one entity-tag at the start of `s`; on success sets *used to its length.
inline std::optional<EntityTag> ReadEntityTag(std::string_view s, size_t* used) {
  EntityTag t;
  size_t i = 0;
  if (s.size() >= 2 && s[0] == 'W' && s[1] == '/') {
    t.weak = true;
    i = 2;
  }
  if (i >= s.size() || s[i] != '"') return std::nullopt;
  const size_t open = ++i;
  while (i < s.size() && IsEtagChar(s[i])) ++i;
  if (i >= s.size() || s[i] != '"') return std::nullopt;
  t.opaque = s.substr(open, i - open);
  *used = i + 1;
  return t;
}
inline std::optional<EntityTag> ParseEntityTag(std::string_view s) {
  size_t used = 0;
  auto t = ReadEntityTag(s, &used);
  if (!t || used != s.size()) return std::nullopt;
  return t;
}

}  // namespace millions::edge::internal
