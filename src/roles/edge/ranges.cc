// Range requests on a cached body (RFC 9110 §14): one byte range, or the whole body. Several
// ranges would need multipart/byteranges, which is rarely asked for and a known way to make a
// server do much work for little request (§17.15); §14.2 lets a server ignore them.
#include <limits>

#include "roles/edge/http_cache.h"
#include "roles/edge/http_cache_internal.h"

namespace millions::edge {
namespace {

using internal::TrimOws;

// first-pos, last-pos and suffix-length: any number of digits, saturating (§14.1.2 "recipients
// MUST anticipate potentially large decimal numerals"): a saturated value is past any body.
std::optional<uint64_t> Position(std::string_view s) {
  return internal::ParseDigits(s, std::numeric_limits<uint64_t>::max());
}

}  // namespace

ByteRange ParseRange(std::string_view value, uint64_t length) {
  ByteRange out;  // kIgnore
  value = TrimOws(value);
  const size_t eq = value.find('=');
  if (eq == std::string_view::npos || !internal::IEquals(value.substr(0, eq), "bytes"))
    return out;  // another unit, or not a ranges-specifier: ignored (§14.2)
  const std::string_view set = value.substr(eq + 1);
  // range-set = 1#range-spec, with empty elements tolerated (§5.6.1.2); exactly one non-empty.
  std::string_view spec;
  int specs = 0;
  for (size_t i = 0; i <= set.size();) {
    size_t comma = set.find(',', i);
    if (comma == std::string_view::npos) comma = set.size();
    const std::string_view element = TrimOws(set.substr(i, comma - i));
    i = comma + 1;
    if (element.empty()) continue;
    if (++specs > 1) return out;
    spec = element;
  }
  if (specs != 1 || length == 0) return out;  // an empty body: §14.2 lets us ignore the Range
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return out;
  const std::string_view first_s = spec.substr(0, dash), last_s = spec.substr(dash + 1);
  if (first_s.empty()) {
    // suffix-range: the last N bytes, or all of them when N >= length.
    const auto n = Position(last_s);
    if (!n) return out;
    if (*n == 0) return {ByteRange::kUnsatisfiable, 0, 0};
    return {ByteRange::kRange, *n >= length ? 0 : length - *n, length - 1};
  }
  const auto first = Position(first_s);
  if (!first) return out;
  std::optional<uint64_t> last;
  if (!last_s.empty()) {
    last = Position(last_s);
    if (!last || *last < *first) return out;  // invalid (§14.1.1): ignored
  }
  if (*first >= length) return {ByteRange::kUnsatisfiable, 0, 0};
  return {ByteRange::kRange, *first, (!last || *last >= length) ? length - 1 : *last};
}

bool IfRangeHolds(std::string_view if_range, const ResponseInfo& stored) {
  if_range = TrimOws(if_range);
  if (!if_range.empty() && (if_range[0] == '"' || if_range.substr(0, 2) == "W/")) {
    // Strong comparison (§8.8.3.2): neither weak, the same opaque-tag.
    const auto theirs = internal::ParseEntityTag(if_range);
    const auto mine = internal::ParseEntityTag(stored.etag);
    return theirs && mine && !theirs->weak && !mine->weak && theirs->opaque == mine->opaque;
  }
  const auto date = ParseHttpDate(if_range);
  // Last-Modified is a strong validator only with a Date at least a second later (§8.8.2.2).
  return date && stored.last_modified && *date == *stored.last_modified && stored.date &&
         *stored.date > *stored.last_modified;
}

}  // namespace millions::edge
