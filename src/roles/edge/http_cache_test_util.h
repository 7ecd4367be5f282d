// Helpers for the RFC 9111 conformance suite (http_cache_test.cc, http_freshness_test.cc,
// http_validation_test.cc): messages from header lines as a server would hand them over, and
// stored responses at a time.
#pragma once

#include <cctype>
#include <string>
#include <utility>
#include <vector>

#include "roles/edge/http_cache.h"

namespace millions::edge::testing {

using Fields = std::vector<std::pair<std::string, std::string>>;

// Every field of a name joined with ", " (RFC 9110 §5.3), names compared case-insensitively:
// what the edge's server passes as a HeaderLookup.
inline HeaderLookup Headers(Fields fields) {
  return [fields = std::move(fields)](std::string_view name) -> std::optional<std::string> {
    auto same = [](std::string_view a, std::string_view b) {
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) !=
            std::tolower(static_cast<unsigned char>(b[i])))
          return false;
      return true;
    };
    std::optional<std::string> out;
    for (const auto& [n, v] : fields) {
      if (!same(n, name)) continue;
      if (out)
        *out += ", " + v;
      else
        out = v;
    }
    return out;
  };
}

// A moment in 2023 (Tue, 14 Nov 2023 22:13:20 GMT): the suite's "now" unless a test says.
inline constexpr Seconds kT0 = 1'700'000'000;

inline ResponseInfo Response(int status, Fields fields) {
  return ReadResponse(status, Headers(std::move(fields)));
}
inline ResponseInfo Response(Fields fields) { return Response(200, std::move(fields)); }

// A response received at `at` (requested then too) whose Date says `at`, with these fields.
inline Stored StoredAt(Seconds at, Fields fields, const Policy& p = {}, int status = 200) {
  fields.emplace_back("Date", FormatHttpDate(at));
  Stored s;
  s.info = Response(status, std::move(fields));
  s.request_time = at;
  s.response_time = at;
  s.lifetime = FreshnessLifetime(s.info, at, p);
  return s;
}

inline CacheControl Request(std::string_view cache_control) {
  return ParseCacheControl(cache_control);
}

}  // namespace millions::edge::testing
