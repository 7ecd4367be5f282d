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
// (§1.2.2). Directive names are case-insensitive; quoted values are accepted, and a quoted
// value may hold commas. A directive given twice: the first occurrence counts (§4.2.1), except
// max-age and s-maxage given twice with different values, which count as 0 (§4.2.1 allows
// "considered stale", the more restrictive choice).
struct CacheControl {
  std::optional<Seconds> max_age;
  std::optional<Seconds> s_maxage;
  std::optional<Seconds> min_fresh;               // request only
  std::optional<Seconds> max_stale;               // request only; with a value
  bool max_stale_any = false;                     // max-stale with no value: any staleness
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
// obsolete RFC 850, asctime); nullopt for anything else. Names match case-insensitively
// (RFC 9111 §4.2); a zone other than GMT is invalid (§4.2); the weekday is not checked against
// the date. RFC 850's two-digit year is read relative to `now` (§5.6.7: more than 50 years
// ahead means the century before); without `now`, 70-99 are 19xx and 00-69 are 20xx.
std::optional<Seconds> ParseHttpDate(std::string_view value,
                                     std::optional<Seconds> now = std::nullopt);
// IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT").
std::string FormatHttpDate(Seconds t);

// Looks up a header's value in a message; every field of that name joined with ", " (RFC 9110
// §5.3), or nullopt when absent. Names compare case-insensitively.
using HeaderLookup = std::function<std::optional<std::string>(std::string_view name)>;

// What the cache knows of a response when it receives it.
struct ResponseInfo {
  int status = 200;
  CacheControl cc;
  std::optional<Seconds> date;  // Date; an invalid one is absent (RFC 9110 §6.6.1)
  // Expires; nullopt when absent or invalid. An invalid one (expires_present without a value,
  // e.g. "0" or two Expires fields) means already expired (§5.3).
  std::optional<Seconds> expires;
  bool expires_present = false;          // an Expires field, valid or not (§5.3)
  std::optional<Seconds> age;            // Age (§5.1): its first member, a non-negative integer
  std::optional<Seconds> last_modified;  // Last-Modified
  std::string etag;  // ETag as sent, with W/ and quotes; empty: none or not a valid entity-tag
  // Vary's field names, lower case; "*" kept as is. A member that is not a field name, or more
  // than 32 members, reads as "*" (a Vary the cache cannot match is never matched).
  std::vector<std::string> vary;
  bool content_range = false;    // a Content-Range field (a partial response: not stored)
  bool set_cookie = false;       // a Set-Cookie field (not stored: it is one user's)
  bool pragma_no_cache = false;  // unused for responses (§5.4); kept for logs
};
// `now` (the response time) only resolves RFC 850 dates' two-digit years.
ResponseInfo ReadResponse(int status, const HeaderLookup& headers,
                          std::optional<Seconds> now = std::nullopt);

struct Policy {
  // Freshness for a response without explicit expiration (no max-age, s-maxage or Expires):
  // 0, the default, gives it none (heuristic freshness off, §4.2.2): it is stored only when it
  // has a validator, and revalidated on every use; above 0, the topology's default TTL applies
  // to responses whose status is heuristically cacheable (RFC 9110 §15.1: 200 203 204 206 300
  // 301 308 404 405 410 414 501).
  Seconds default_ttl = 0;
  // Upper bound of any freshness lifetime.
  Seconds max_ttl = 365 * 24 * 3600;
  // How long past its freshness a stored response may still be served when the origin fails,
  // when the response itself says nothing (no stale-if-error); 0: never. no-cache,
  // must-revalidate, proxy-revalidate and s-maxage forbid it (§4.2.4, §5.2.2.2, §5.2.2.4).
  Seconds grace = 0;
};

// Why a response may not be stored by a shared cache (§3), or kStore.
enum class Storable {
  kStore,
  kMethod,   // only GET responses are stored here (HEAD is answered from a GET's)
  kStatus,   // not final, 304, not a status at all, or must-understand with a status this cache
             // does not implement (§3 bullets 2-3, §5.2.2.3)
  kNoStore,  // no-store in the request, or in the response without must-understand on a status
             // this cache implements (§5.2.1.5, §5.2.2.5, §5.2.2.3)
  kPrivate,  // private (§5.2.2.7)
  kAuthorization,  // the request had Authorization and the response allows no sharing (§3.5)
  kVaryStar,       // Vary: * never matches (§4.1)
  kNoFreshness,    // no explicit freshness, no validator that makes it worth keeping, and
                   // default_ttl 0: nothing to serve it with; or neither explicit freshness,
                   // public nor a heuristically cacheable status (§3, last bullet)
  kPartial,        // 206 and anything with Content-Range: this cache stores whole bodies only
  kSetCookie,      // Set-Cookie: one user's state, never replayed to another (store.h)
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
// date_value is the response time when there is no Date; a negative response delay or resident
// time (a clock that stepped back) counts as 0; the result is within [0, 2^31] (§1.2.2).
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
  kGatewayTimeout,   // the request has only-if-cached and the stored response may not answer
                     // without the origin: answer 504 (§5.2.1.7)
};
struct Decision {
  Use use = Use::kRevalidate;
  Seconds age = 0;  // current age, for the Age header
  bool stale = false;
};
// Whether a stored response may answer this request now (§4.2, §4.2.4, §5.2.1, RFC 5861 §3):
// fresh (lifetime > age), allowing for the request's max-age, min-fresh and max-stale; no-cache
// in either makes it kRevalidate; a stale one within stale-while-revalidate (and not
// must-revalidate, proxy-revalidate or s-maxage) is kStaleRevalidate. A window of n seconds
// (max-stale, stale-while-revalidate, stale-if-error, grace) covers age - lifetime <= n.
// Request no-cache and max-age=0 always revalidate, except that a fresh immutable response
// ignores the request's max-age (RFC 8246 §2: a reload sends max-age=0; a forced one no-cache).
// With only-if-cached, every kRevalidate is kGatewayTimeout.
Decision Decide(const Stored& s, const CacheControl& request_cc, Seconds now);

// Whether a stale stored response may answer because the origin failed (an error, a timeout, a
// 500, 502, 503 or 504): within stale-if-error from the response or the request (RFC 5861 §4),
// else within the policy's grace; never with must-revalidate, proxy-revalidate or s-maxage,
// and never with no-cache (§5.2.2.4: "even by caches that have been configured to send stale
// responses"). A fresh one may (the origin was asked only because the client wanted it).
bool StaleIfError(const Stored& s, const CacheControl& request_cc, Seconds now, const Policy& p);

// The headers of a conditional request to the origin for a stored response (§4.3.1):
// If-None-Match with its ETag, and If-Modified-Since with its Last-Modified (or, without one,
// nothing: the Date is not a validator this cache uses).
std::vector<std::pair<std::string, std::string>> ValidationHeaders(const ResponseInfo& r);

// A client's conditional GET or HEAD against the stored response (RFC 9110 §13.1.2, §13.1.3,
// §13.2.2): If-None-Match (weak comparison, "*" matches) decides when present, and then
// If-Modified-Since is ignored; else If-Modified-Since with a valid date not before
// Last-Modified (or, without one, the Date: RFC 9111 §4.3.2). An If-Modified-Since later than
// `now` is invalid (§13.1.3), as is one with two dates. Only a 2xx stored response can answer
// 304 (§13.2.1). Call it for GET and HEAD only. True: answer 304.
bool NotModified(const HeaderLookup& request, const ResponseInfo& stored,
                 std::optional<Seconds> now = std::nullopt);

// If-Range on a request with a Range (RFC 9110 §13.1.5): an entity-tag holds when it matches
// the stored ETag by strong comparison; a date when it equals Last-Modified exactly and that is
// a strong validator (a Date at least one second later, §8.8.2.2). False: ignore the Range and
// answer 200 with the whole body.
bool IfRangeHolds(std::string_view if_range, const ResponseInfo& stored);

// A Range header on a cached body of `length` bytes (RFC 9110 §14.2): one byte range (first-
// last, first-, or -suffix) satisfiable: its [first, last]; unsatisfiable: kUnsatisfiable (416
// with Content-Range: bytes */length); not a single bytes range (several ranges, other units,
// a syntax error, or an empty body): kIgnore (answer 200 with the whole body, as §14.2
// allows). Positions of any length are read without overflow (§14.1.2): a last-pos past the end
// is the last byte, a first-pos past it unsatisfiable.
struct ByteRange {
  enum Kind { kIgnore, kRange, kUnsatisfiable } kind = kIgnore;
  uint64_t first = 0, last = 0;
};
ByteRange ParseRange(std::string_view value, uint64_t length);

}  // namespace millions::edge
