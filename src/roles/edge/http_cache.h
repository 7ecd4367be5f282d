// The edge's HTTP caching rules (RFC 9111, with RFC 5861's stale-while-revalidate and
// stale-if-error), as pure functions over header values and times: what may be stored, for how
// long it is fresh, its age, whether a stored response may answer a request now, and what a
// client's conditional request gets. No I/O, no clock: the caller passes `now`. The edge's
// server (edge.cc) calls these; http_cache_test.cc is the conformance suite, one test per
// requirement, each naming its section.
// Thread-safety: pure functions and value types. Ownership: values own their strings.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace millions::edge {

// Times are whole seconds since the Unix epoch, as HTTP dates are (RFC 9110 §5.6.7).
using Seconds = int64_t;

// Cache-Control directives (RFC 9111 §5.2), from every Cache-Control field of a message joined
// with commas. Unknown directives are ignored (§5.2.3). A directive whose delta-seconds are
// not a valid non-negative integer is treated as absent, except max-age and s-maxage, which
// count as 0 (stale: §4.2.1 "invalid ... treat as stale"). Values above 2^31 are 2^31
// (§1.2.2). Directive names are case-insensitive; quoted values are accepted.
struct CacheControl {
  std::optional<Seconds> max_age;
  std::optional<Seconds> s_maxage;
  std::optional<Seconds> min_fresh;               // request only
  std::optional<Seconds> max_stale;               // request only; present without a value: any
  bool max_stale_any = false;                     // max-stale with no value
  std::optional<Seconds> stale_while_revalidate;  // RFC 5861 §3
  std::optional<Seconds> stale_if_error;          // RFC 5861 §4
  bool no_store = false;
  bool no_cache = false;  // unqualified no-cache; a field-named no-cache="x" counts too (§5.2.2.4)
  bool private_ = false;  // qualified or not: a shared cache stores neither (§5.2.2.7)
  bool public_ = false;
  bool must_revalidate = false;
  bool proxy_revalidate = false;
  bool immutable = false;  // RFC 8246
  bool only_if_cached = false;
  bool no_transform = false;
  bool must_understand = false;
};
CacheControl ParseCacheControl(std::string_view value);

// HTTP-date in any of the three forms a recipient must accept (RFC 9110 §5.6.7: IMF-fixdate,
// obsolete RFC 850, asctime); nullopt for anything else.
std::optional<Seconds> ParseHttpDate(std::string_view value);
// IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT").
std::string FormatHttpDate(Seconds t);

// Looks up a header's value in a message; every field of that name joined with ", " (RFC 9110
// §5.3), or nullopt when absent. Names compare case-insensitively.
using HeaderLookup = std::function<std::optional<std::string>(std::string_view name)>;

// What the cache knows of a response when it receives it.
struct ResponseInfo {
  int status = 200;
  CacheControl cc;
  std::optional<Seconds> date;           // Date
  std::optional<Seconds> expires;        // Expires; an invalid value is a time in the past
  bool expires_present = false;          // an Expires field, valid or not (§5.3)
  std::optional<Seconds> age;            // Age (§5.1): a non-negative integer, else absent
  std::optional<Seconds> last_modified;  // Last-Modified
  std::string etag;                      // ETag as sent, with W/ and quotes; empty: none
  std::vector<std::string> vary;         // Vary's field names, lower case; "*" kept as is
  bool pragma_no_cache = false;          // unused for responses (§5.4); kept for logs
};
ResponseInfo ReadResponse(int status, const HeaderLookup& headers);

struct Policy {
  // Freshness for a response without explicit expiration (no max-age, s-maxage or Expires):
  // 0, the default, stores none of them (heuristic freshness off, §4.2.2); above 0, the
  // topology's default TTL applies to responses whose status is heuristically cacheable
  // (RFC 9110 §15.1: 200 203 204 206 300 301 308 404 405 410 414 501).
  Seconds default_ttl = 0;
  // Upper bound of any freshness lifetime.
  Seconds max_ttl = 365 * 24 * 3600;
  // How long past its freshness a stored response may still be served when the origin fails,
  // when the response itself says nothing (no stale-if-error); 0: never. must-revalidate,
  // proxy-revalidate and s-maxage forbid it (§4.2.4, §5.2.2.2).
  Seconds grace = 0;
};

// Why a response may not be stored by a shared cache (§3), or kStore.
enum class Storable {
  kStore,
  kMethod,         // only GET responses are stored here (HEAD is answered from a GET's)
  kStatus,         // a status the cache does not understand or that is not final (§3 bullet 2-3)
  kNoStore,        // no-store in the request or the response (§5.2.1.5, §5.2.2.5)
  kPrivate,        // private (§5.2.2.7)
  kAuthorization,  // the request had Authorization and the response allows no sharing (§3.5)
  kVaryStar,       // Vary: * never matches (§4.1)
  kNoFreshness,    // no explicit freshness, no validator that makes it worth keeping, and
                   // default_ttl 0: nothing to serve it with (§3, last bullet)
  kPartial,        // 206 and anything with Content-Range: this cache stores whole bodies only
};
const char* StorableName(Storable s);
Storable CanStore(std::string_view method, const CacheControl& request_cc,
                  bool request_has_authorization, const ResponseInfo& r, const Policy& p);

// The freshness lifetime (§4.2.1): s-maxage, else max-age, else Expires - Date (Date, or the
// response time when Date is absent), else default_ttl for a heuristically cacheable status;
// bounded by max_ttl, never negative.
Seconds FreshnessLifetime(const ResponseInfo& r, Seconds response_time, const Policy& p);

// The current age (§4.2.3): apparent_age = max(0, response_time - date_value);
// corrected_age_value = age_value + (response_time - request_time);
// corrected_initial_age = max(apparent_age, corrected_age_value);
// resident_time = now - response_time; current_age = corrected_initial_age + resident_time.
Seconds CurrentAge(const ResponseInfo& r, Seconds request_time, Seconds response_time, Seconds now);

// A stored response, as the cache needs to decide with it.
struct Stored {
  ResponseInfo info;
  Seconds request_time = 0;   // when the request that got it was sent to the origin
  Seconds response_time = 0;  // when its response was received
  Seconds lifetime = 0;       // FreshnessLifetime at storing
};

enum class Use {
  kFresh,            // answer from the cache
  kStaleRevalidate,  // answer from the cache (stale, within stale-while-revalidate) and
                     // revalidate in the background
  kRevalidate,       // ask the origin first (a conditional request when there is a validator);
                     // if the origin fails, StaleIfError says whether the stored one may answer
};
struct Decision {
  Use use = Use::kRevalidate;
  Seconds age = 0;  // current age, for the Age header
  bool stale = false;
};
// Whether a stored response may answer this request now (§4.2, §4.2.4, §5.2.1, RFC 5861 §3):
// fresh, allowing for the request's max-age, min-fresh and max-stale; no-cache in either makes
// it kRevalidate; a stale one within stale-while-revalidate (and not must-revalidate) is
// kStaleRevalidate. Request no-cache and max-age=0 always revalidate.
Decision Decide(const Stored& s, const CacheControl& request_cc, Seconds now);

// Whether a stale stored response may answer because the origin failed (an error, a timeout, a
// 500, 502, 503 or 504): within stale-if-error from the response or the request (RFC 5861 §4),
// else within the policy's grace; never with must-revalidate, proxy-revalidate or s-maxage.
bool StaleIfError(const Stored& s, const CacheControl& request_cc, Seconds now, const Policy& p);

// The headers of a conditional request to the origin for a stored response (§4.3.1):
// If-None-Match with its ETag, and If-Modified-Since with its Last-Modified (or, without one,
// nothing: the Date is not a validator this cache uses).
std::vector<std::pair<std::string, std::string>> ValidationHeaders(const ResponseInfo& r);

// A client's conditional GET or HEAD against the stored response (RFC 9110 §13.1.2, §13.1.3,
// §13.2.2): If-None-Match (weak comparison, "*" matches) decides when present, and then
// If-Modified-Since is ignored; else If-Modified-Since with a valid date not before
// Last-Modified. True: answer 304.
bool NotModified(const HeaderLookup& request, const ResponseInfo& stored);

// A Range header on a cached body of `length` bytes (RFC 9110 §14.2): one byte range (first-
// last, first-, or -suffix) satisfiable: its [first, last]; unsatisfiable: kUnsatisfiable (416
// with Content-Range: bytes */length); not a single bytes range (several ranges, other units,
// a syntax error): kIgnore (answer 200 with the whole body, as §14.2 allows).
struct ByteRange {
  enum Kind { kIgnore, kRange, kUnsatisfiable } kind = kIgnore;
  uint64_t first = 0, last = 0;
};
ByteRange ParseRange(std::string_view value, uint64_t length);

}  // namespace millions::edge
