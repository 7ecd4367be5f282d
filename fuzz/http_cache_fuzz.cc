// libFuzzer target: the edge's caching rules (roles/edge/http_cache.h) on hostile header values.
// The input's lines are field values (Cache-Control, dates, Range, If-None-Match, If-Range) and,
// where they hold a colon, the fields of a response and of a request; its first 32 bytes are also
// read as four raw 64-bit times. Beyond "no crash, no undefined behaviour" (UBSan aborts on any
// signed overflow): every delta-seconds and age is within [0, 2^31], a lifetime within the
// policy's bound, a byte range inside the body, a parsed date reads back from the IMF-fixdate we
// write for it, and Decide never lets a stale response through where a directive forbids it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "roles/edge/http_cache.h"
#include "roles/edge/http_cache_internal.h"

namespace {

using namespace millions::edge;
constexpr Seconds k2To31 = Seconds{1} << 31;

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

bool InDelta(const std::optional<Seconds>& v) { return !v || (*v >= 0 && *v <= k2To31); }

void CheckCacheControl(const CacheControl& cc) {
  Check(InDelta(cc.max_age) && InDelta(cc.s_maxage) && InDelta(cc.min_fresh) &&
        InDelta(cc.max_stale) && InDelta(cc.stale_while_revalidate) && InDelta(cc.stale_if_error));
  Check(!(cc.max_stale_any && cc.max_stale));
}

void CheckDate(std::string_view v, std::optional<Seconds> now) {
  const auto t = ParseHttpDate(v, now);
  if (!t) return;
  const std::string imf = FormatHttpDate(*t);
  Check(imf.size() == 29);
  // Years 0000-9999 format exactly; an RFC 850 year resolved against a far `now` may not.
  const Seconds lo = -62167219200, hi = 253402300799;
  if (*t >= lo && *t <= hi) Check(ParseHttpDate(imf) == t && FormatHttpDate(*t) == imf);
}

void CheckRange(std::string_view v, uint64_t length) {
  const ByteRange r = ParseRange(v, length);
  if (r.kind == ByteRange::kRange) Check(length > 0 && r.first <= r.last && r.last < length);
}

struct Message {
  std::vector<std::pair<std::string, std::string>> fields;
  HeaderLookup Lookup() const {
    return [this](std::string_view name) -> std::optional<std::string> {
      std::optional<std::string> out;
      for (const auto& [n, v] : fields) {
        if (!millions::edge::internal::IEquals(n, name)) continue;
        if (out)
          *out += ", " + v;
        else
          out = v;
      }
      return out;
    };
  }
};

Seconds Read64(const uint8_t* p) {
  uint64_t u;
  std::memcpy(&u, p, sizeof u);
  return static_cast<Seconds>(u);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;  // field values are bounded by the server's header limits anyway
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  // Times: ordinary ones, or (with 32 bytes) any 64-bit values at all.
  Seconds request_time = 1'700'000'000, response_time = request_time + 1, now = request_time + 60,
          lifetime_raw = 0;
  if (size >= 32) {
    request_time = Read64(data);
    response_time = Read64(data + 8);
    now = Read64(data + 16);
    lifetime_raw = Read64(data + 24);
  }

  // Every line as each kind of value; lines with a colon as fields, alternately of the response
  // and of the request.
  Message response, request;
  size_t line_no = 0;
  for (size_t pos = 0; pos <= in.size();) {
    size_t end = in.find('\n', pos);
    if (end == std::string_view::npos) end = in.size();
    const std::string_view line = in.substr(pos, end - pos);
    pos = end + 1;
    CheckCacheControl(ParseCacheControl(line));
    CheckDate(line, std::nullopt);
    CheckDate(line, now);
    for (uint64_t length : {uint64_t{0}, uint64_t{1}, uint64_t{10000},
                            std::numeric_limits<uint64_t>::max(), static_cast<uint64_t>(now)})
      CheckRange(line, length);
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      Message& m = (line_no++ % 2 == 0) ? response : request;
      m.fields.emplace_back(std::string(line.substr(0, colon)),
                            std::string(internal::TrimOws(line.substr(colon + 1))));
    }
  }
  CheckCacheControl(ParseCacheControl(in));

  const int status = size > 0 ? 100 + data[0] % 500 : 200;
  const ResponseInfo r = ReadResponse(status, response.Lookup(), now);
  CheckCacheControl(r.cc);
  Check(InDelta(r.age));
  Check(r.etag.empty() || internal::ParseEntityTag(r.etag));
  for (const std::string& v : r.vary) {
    Check(!v.empty());
    for (char c : v) Check(internal::IsTokenChar(c) && !(c >= 'A' && c <= 'Z'));
  }
  Check(!r.expires || r.expires_present);

  const CacheControl request_cc = ParseCacheControl(request.Lookup()("cache-control").value_or(""));
  Policy p;
  p.default_ttl = size > 1 ? data[1] * 97 : 0;
  p.grace = size > 2 ? data[2] * 31 : 0;
  p.max_ttl = size >= 32 ? lifetime_raw : p.max_ttl;
  StorableName(CanStore("GET", request_cc, size % 2 == 0, r, p));

  const Seconds lifetime = FreshnessLifetime(r, response_time, p);
  Check(lifetime >= 0 && lifetime <= k2To31 && lifetime <= std::max<Seconds>(p.max_ttl, 0));
  const Seconds age = CurrentAge(r, request_time, response_time, now);
  Check(age >= 0 && age <= k2To31);

  Stored s{r, request_time, response_time, size >= 32 ? lifetime_raw : lifetime};
  const Decision d = Decide(s, request_cc, now);
  Check(d.age == age);
  const bool fresh = std::clamp<Seconds>(s.lifetime, 0, k2To31) > age;
  Check(d.stale == !fresh);
  if (d.use == Use::kFresh || d.use == Use::kStaleRevalidate) Check(!r.cc.no_cache);
  if (d.stale && (r.cc.must_revalidate || r.cc.proxy_revalidate || r.cc.s_maxage))
    Check(d.use == Use::kRevalidate || d.use == Use::kGatewayTimeout);
  if (request_cc.only_if_cached) Check(d.use != Use::kRevalidate);
  if (StaleIfError(s, request_cc, now, p)) Check(!r.cc.no_cache);

  for (const auto& [name, value] : ValidationHeaders(r))
    Check(value.find_first_of("\r\n") == std::string::npos && !name.empty());
  NotModified(request.Lookup(), r, now);
  NotModified(request.Lookup(), r, std::nullopt);
  if (auto if_range = request.Lookup()("if-range")) IfRangeHolds(*if_range, r);
  IfRangeHolds(in, r);
  return 0;
}
