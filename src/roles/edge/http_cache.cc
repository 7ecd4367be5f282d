#include "roles/edge/http_cache.h"

#include <algorithm>

#include "roles/edge/http_cache_internal.h"

namespace millions::edge {
namespace {

using internal::IEquals;
using internal::IsOws;
using internal::kDeltaMax;
using internal::SatAdd;
using internal::SatSub;
using internal::TrimOws;

// One cache-directive (RFC 9111 §5.2): token [ "=" ( token / quoted-string ) ].
struct Directive {
  std::string_view name;
  std::string_view value;  // a quoted-string's content, quoted-pairs left as they are
  bool has_value = false;
};

// Reads the next directive from s[*pos...]; false at the end. Every call moves *pos forward,
// and the whole scan is linear: a hostile field costs at most its length.
bool NextDirective(std::string_view s, size_t* pos, Directive* d) {
  size_t i = *pos;
  while (i < s.size() && (s[i] == ',' || IsOws(s[i]))) ++i;  // empty list elements (§5.6.1.2)
  if (i >= s.size()) {
    *pos = i;
    return false;
  }
  const size_t name_start = i;
  while (i < s.size() && s[i] != ',' && s[i] != '=') ++i;
  *d = Directive{TrimOws(s.substr(name_start, i - name_start)), {}, false};
  if (i < s.size() && s[i] == '=') {
    ++i;
    while (i < s.size() && IsOws(s[i])) ++i;
    d->has_value = true;
    if (i < s.size() && s[i] == '"') {
      const size_t start = ++i;
      while (i < s.size() && s[i] != '"') i += (s[i] == '\\' && i + 1 < s.size()) ? 2 : 1;
      d->value = s.substr(start, std::min(i, s.size()) - start);
      if (i < s.size()) ++i;  // the closing quote; an unclosed one runs to the end
    } else {
      const size_t start = i;
      while (i < s.size() && s[i] != ',') ++i;
      d->value = TrimOws(s.substr(start, i - start));
    }
  }
  while (i < s.size() && s[i] != ',') ++i;  // anything after a quoted value, up to the comma
  *pos = i;
  return true;
}

// First occurrence counts (§4.2.1); a delta-seconds that is invalid makes the directive absent.
void SetFirst(std::optional<Seconds>* field, bool* seen, const Directive& d) {
  if (*seen) return;
  *seen = true;
  if (d.has_value) *field = internal::ParseDelta(d.value);
}

// max-age and s-maxage: invalid is 0 (stale), and two different values are 0 too (§4.2.1).
void SetAge(std::optional<Seconds>* field, const Directive& d) {
  const Seconds v = (d.has_value ? internal::ParseDelta(d.value) : std::nullopt).value_or(0);
  if (!*field)
    *field = v;
  else if (**field != v)
    *field = 0;
}

bool OneOf(int status, std::initializer_list<int> list) {
  return std::find(list.begin(), list.end(), status) != list.end();
}

// RFC 9110 §15.1.
bool HeuristicallyCacheable(int status) {
  return OneOf(status, {200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501});
}

// The statuses whose caching rules this cache implements in full (§3 "understood"), for
// must-understand (§5.2.2.3). 206 is not: partial content is never stored here.
bool Understood(int status) {
  return OneOf(status, {200, 203, 204, 300, 301, 302, 307, 308, 404, 405, 410, 414, 501});
}

constexpr size_t kMaxVary = 32;

std::vector<std::string> ReadVary(std::string_view v) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= v.size()) {
    size_t comma = v.find(',', i);
    if (comma == std::string_view::npos) comma = v.size();
    const std::string_view member = TrimOws(v.substr(i, comma - i));
    i = comma + 1;
    if (member.empty()) continue;
    bool name = member != "*";
    for (char c : member) name = name && internal::IsTokenChar(c);
    if (!name || out.size() == kMaxVary) return {"*"};
    std::string lower(member);
    for (char& c : lower) c = internal::Lower(c);
    out.push_back(std::move(lower));
  }
  return out;
}

bool HasToken(std::string_view list, std::string_view token) {
  size_t pos = 0;
  Directive d;
  while (NextDirective(list, &pos, &d))
    if (IEquals(d.name, token)) return true;
  return false;
}

// The first member of a list-valued singleton field (§5.1).
std::string_view FirstMember(std::string_view v) { return TrimOws(v.substr(0, v.find(','))); }

}  // namespace

CacheControl ParseCacheControl(std::string_view value) {
  CacheControl cc;
  bool seen_min_fresh = false, seen_max_stale = false, seen_swr = false, seen_sie = false;
  size_t pos = 0;
  Directive d;
  while (NextDirective(value, &pos, &d)) {
    const std::string_view n = d.name;
    if (IEquals(n, "max-age")) {
      SetAge(&cc.max_age, d);
    } else if (IEquals(n, "s-maxage")) {
      SetAge(&cc.s_maxage, d);
    } else if (IEquals(n, "min-fresh")) {
      SetFirst(&cc.min_fresh, &seen_min_fresh, d);
    } else if (IEquals(n, "max-stale")) {
      if (!seen_max_stale && !d.has_value) cc.max_stale_any = true;
      SetFirst(&cc.max_stale, &seen_max_stale, d);
    } else if (IEquals(n, "stale-while-revalidate")) {
      SetFirst(&cc.stale_while_revalidate, &seen_swr, d);
    } else if (IEquals(n, "stale-if-error")) {
      SetFirst(&cc.stale_if_error, &seen_sie, d);
    } else if (IEquals(n, "no-store")) {
      cc.no_store = true;
    } else if (IEquals(n, "no-cache")) {
      cc.no_cache = true;
    } else if (IEquals(n, "private")) {
      cc.private_ = true;
    } else if (IEquals(n, "public")) {
      cc.public_ = true;
    } else if (IEquals(n, "must-revalidate")) {
      cc.must_revalidate = true;
    } else if (IEquals(n, "proxy-revalidate")) {
      cc.proxy_revalidate = true;
    } else if (IEquals(n, "immutable")) {
      cc.immutable = true;
    } else if (IEquals(n, "only-if-cached")) {
      cc.only_if_cached = true;
    } else if (IEquals(n, "no-transform")) {
      cc.no_transform = true;
    } else if (IEquals(n, "must-understand")) {
      cc.must_understand = true;
    }
  }
  return cc;
}

ResponseInfo ReadResponse(int status, const HeaderLookup& headers, std::optional<Seconds> now) {
  ResponseInfo r;
  r.status = status;
  if (auto v = headers("cache-control")) r.cc = ParseCacheControl(*v);
  if (auto v = headers("date")) r.date = ParseHttpDate(*v, now);
  if (auto v = headers("expires")) {
    r.expires_present = true;
    r.expires = ParseHttpDate(*v, now);  // two fields joined by ", " are not a date: stale
  }
  if (auto v = headers("age")) r.age = internal::ParseDelta(FirstMember(*v));
  if (auto v = headers("last-modified")) r.last_modified = ParseHttpDate(*v, now);
  if (auto v = headers("etag")) {
    const std::string_view t = TrimOws(*v);
    if (internal::ParseEntityTag(t)) r.etag = std::string(t);
  }
  if (auto v = headers("vary")) r.vary = ReadVary(*v);
  r.content_range = headers("content-range").has_value();
  r.set_cookie = headers("set-cookie").has_value();
  if (auto v = headers("pragma")) r.pragma_no_cache = HasToken(*v, "no-cache");
  return r;
}

const char* StorableName(Storable s) {
  switch (s) {
    case Storable::kStore:
      return "store";
    case Storable::kMethod:
      return "method";
    case Storable::kStatus:
      return "status";
    case Storable::kNoStore:
      return "no_store";
    case Storable::kPrivate:
      return "private";
    case Storable::kAuthorization:
      return "authorization";
    case Storable::kVaryStar:
      return "vary_star";
    case Storable::kNoFreshness:
      return "no_freshness";
    case Storable::kPartial:
      return "partial";
    case Storable::kSetCookie:
      return "set_cookie";
  }
  return "unknown";
}

Storable CanStore(std::string_view method, const CacheControl& request_cc,
                  bool request_has_authorization, const ResponseInfo& r, const Policy& p) {
  const CacheControl& cc = r.cc;
  if (method != "GET") return Storable::kMethod;  // methods are case-sensitive (RFC 9110 §9.1)
  if (request_cc.no_store) return Storable::kNoStore;
  if (r.status < 200 || r.status > 599 || r.status == 304) return Storable::kStatus;
  const bool understood = Understood(r.status);
  if (cc.must_understand && !understood) return Storable::kStatus;
  // must-understand on a status we implement overrides no-store (§5.2.2.3).
  if (cc.no_store && !(cc.must_understand && understood)) return Storable::kNoStore;
  if (r.status == 206 || r.content_range) return Storable::kPartial;
  if (cc.private_) return Storable::kPrivate;
  if (request_has_authorization && !cc.public_ && !cc.s_maxage && !cc.must_revalidate)
    return Storable::kAuthorization;
  if (std::find(r.vary.begin(), r.vary.end(), "*") != r.vary.end()) return Storable::kVaryStar;
  if (r.set_cookie) return Storable::kSetCookie;
  const bool explicit_expiry = cc.max_age || cc.s_maxage || r.expires_present;
  const bool heuristic = HeuristicallyCacheable(r.status);
  if (!explicit_expiry && !heuristic && !cc.public_) return Storable::kNoFreshness;
  const bool validator = !r.etag.empty() || r.last_modified;
  if (!explicit_expiry && !(p.default_ttl > 0 && heuristic) && !validator)
    return Storable::kNoFreshness;
  return Storable::kStore;
}

Seconds FreshnessLifetime(const ResponseInfo& r, Seconds response_time, const Policy& p) {
  Seconds lifetime = 0;
  if (r.cc.s_maxage) {
    lifetime = *r.cc.s_maxage;
  } else if (r.cc.max_age) {
    lifetime = *r.cc.max_age;
  } else if (r.expires_present) {
    // An invalid Expires is "already expired" (§5.3): 0.
    if (r.expires) lifetime = SatSub(*r.expires, r.date.value_or(response_time));
  } else if (p.default_ttl > 0 && HeuristicallyCacheable(r.status)) {
    lifetime = p.default_ttl;
  }
  return internal::Clamp(lifetime, 0, std::min(std::max<Seconds>(p.max_ttl, 0), kDeltaMax));
}

Seconds CurrentAge(const ResponseInfo& r, Seconds request_time, Seconds response_time,
                   Seconds now) {
  const Seconds date_value = r.date.value_or(response_time);
  const Seconds apparent_age = std::max<Seconds>(0, SatSub(response_time, date_value));
  const Seconds response_delay = std::max<Seconds>(0, SatSub(response_time, request_time));
  const Seconds corrected_age_value = SatAdd(r.age.value_or(0), response_delay);
  const Seconds corrected_initial_age = std::max(apparent_age, corrected_age_value);
  const Seconds resident_time = std::max<Seconds>(0, SatSub(now, response_time));
  return std::min(SatAdd(corrected_initial_age, resident_time), kDeltaMax);
}

Decision Decide(const Stored& s, const CacheControl& request_cc, Seconds now) {
  const CacheControl& cc = s.info.cc;
  Decision d;
  d.age = CurrentAge(s.info, s.request_time, s.response_time, now);
  const Seconds lifetime = internal::Clamp(s.lifetime, 0, kDeltaMax);
  const bool fresh = lifetime > d.age;  // §4.2 response_is_fresh
  d.stale = !fresh;
  auto use = [&](Use u) {
    d.use = (u == Use::kRevalidate && request_cc.only_if_cached) ? Use::kGatewayTimeout : u;
    return d;
  };
  if (cc.no_cache || request_cc.no_cache) return use(Use::kRevalidate);
  if (request_cc.max_age && d.age > *request_cc.max_age && !(fresh && cc.immutable))
    return use(Use::kRevalidate);
  if (fresh) {
    if (request_cc.min_fresh && lifetime - d.age < *request_cc.min_fresh)
      return use(Use::kRevalidate);
    return use(Use::kFresh);
  }
  // s-maxage carries proxy-revalidate's semantics for a shared cache (§5.2.2.10).
  if (cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage) return use(Use::kRevalidate);
  const Seconds staleness = d.age - lifetime;  // both in [0, 2^31]
  if (request_cc.max_stale_any || (request_cc.max_stale && staleness <= *request_cc.max_stale))
    return use(Use::kFresh);
  if (cc.stale_while_revalidate && staleness <= *cc.stale_while_revalidate)
    return use(Use::kStaleRevalidate);
  return use(Use::kRevalidate);
}

bool StaleIfError(const Stored& s, const CacheControl& request_cc, Seconds now, const Policy& p) {
  const CacheControl& cc = s.info.cc;
  if (cc.no_cache) return false;
  const Seconds age = CurrentAge(s.info, s.request_time, s.response_time, now);
  const Seconds lifetime = internal::Clamp(s.lifetime, 0, kDeltaMax);
  if (lifetime > age) return true;
  if (cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage) return false;
  const Seconds staleness = age - lifetime;
  if (cc.stale_if_error && staleness <= *cc.stale_if_error) return true;
  if (request_cc.stale_if_error && staleness <= *request_cc.stale_if_error) return true;
  return !cc.stale_if_error && p.grace > 0 && staleness <= p.grace;
}

std::vector<std::pair<std::string, std::string>> ValidationHeaders(const ResponseInfo& r) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!r.etag.empty()) out.emplace_back("If-None-Match", r.etag);
  if (r.last_modified) out.emplace_back("If-Modified-Since", FormatHttpDate(*r.last_modified));
  return out;
}

bool NotModified(const HeaderLookup& request, const ResponseInfo& stored,
                 std::optional<Seconds> now) {
  if (stored.status < 200 || stored.status > 299) return false;
  if (auto inm = request("if-none-match")) {
    const std::string_view v = TrimOws(*inm);
    if (v == "*") return true;  // the stored response is a current representation
    const auto mine = internal::ParseEntityTag(stored.etag);
    if (!mine) return false;
    // A list of entity-tags; members that are not one are skipped.
    for (size_t i = 0; i < v.size();) {
      if (v[i] == ',' || IsOws(v[i])) {
        ++i;
        continue;
      }
      size_t used = 0;
      if (auto t = internal::ReadEntityTag(v.substr(i), &used)) {
        if (t->opaque == mine->opaque) return true;  // weak comparison (§8.8.3.2)
        i += used;
      } else {
        const size_t comma = v.find(',', i);
        i = comma == std::string_view::npos ? v.size() : comma;
      }
    }
    return false;  // If-Modified-Since is ignored when If-None-Match is present (§13.1.3)
  }
  auto ims_field = request("if-modified-since");
  if (!ims_field) return false;
  const auto ims = ParseHttpDate(*ims_field, now);
  if (!ims || (now && *ims > *now)) return false;
  const auto modified = stored.last_modified ? stored.last_modified : stored.date;
  return modified && *modified <= *ims;
}

}  // namespace millions::edge
