// The conformance suite, part 2: freshness lifetime (RFC 9111 §4.2.1, §4.2.2, §5.3), age
// (§4.2.3, §5.1), reuse and serving stale (§4, §4.2.4, §5.2.1, §5.2.2), RFC 5861's
// stale-while-revalidate and stale-if-error, RFC 8246's immutable, and the edge's grace.
#include <gtest/gtest.h>

#include "roles/edge/http_cache.h"
#include "roles/edge/http_cache_test_util.h"

namespace millions::edge {
namespace {

using testing::Fields;
using testing::kT0;
using testing::Request;
using testing::Response;
using testing::StoredAt;

constexpr Seconds k2To31 = Seconds{1} << 31;

Seconds Lifetime(Fields f, const Policy& p = {}, int status = 200) {
  f.emplace_back("Date", FormatHttpDate(kT0));
  return FreshnessLifetime(Response(status, std::move(f)), kT0, p);
}

// The decision for a request `elapsed` seconds after the response arrived.
Decision DecideAfter(Seconds elapsed, Fields response, std::string_view request_cc = "") {
  return Decide(StoredAt(kT0, std::move(response)), Request(request_cc), kT0 + elapsed);
}
bool ErrorAfter(Seconds elapsed, Fields response, std::string_view request_cc = "",
                const Policy& p = {}) {
  return StaleIfError(StoredAt(kT0, std::move(response), p), Request(request_cc), kT0 + elapsed, p);
}

// ---- §4.2.1 Calculating Freshness Lifetime ----

// §4.2.1: "If the cache is shared and the s-maxage response directive is present, use its value"
// (§5.2.2.10: "the maximum age specified by this directive overrides the maximum age specified by
// either the max-age directive or the Expires header field").
TEST(Rfc9111, Sec4_2_1_SMaxageOverridesMaxAge) {
  EXPECT_EQ(Lifetime({{"Cache-Control", "max-age=10, s-maxage=100"}}), 100);
  EXPECT_EQ(Lifetime({{"Cache-Control", "s-maxage=5, max-age=1000"}}), 5);
  EXPECT_EQ(Lifetime({{"Cache-Control", "s-maxage=0, max-age=1000"}}), 0);
}

// §5.3: "if a response includes the s-maxage directive, a shared cache recipient MUST ignore the
// Expires header field".
TEST(Rfc9111, Sec5_3_SMaxageMakesExpiresIgnored) {
  EXPECT_EQ(Lifetime({{"Cache-Control", "s-maxage=100"}, {"Expires", FormatHttpDate(kT0 + 9)}}),
            100);
  EXPECT_EQ(Lifetime({{"Cache-Control", "s-maxage=100"}, {"Expires", "0"}}), 100);
}

// §5.3: "If a response includes a Cache-Control header field with the max-age directive, a
// recipient MUST ignore the Expires header field."
TEST(Rfc9111, Sec5_3_MaxAgeMakesExpiresIgnored) {
  EXPECT_EQ(Lifetime({{"Cache-Control", "max-age=10"}, {"Expires", FormatHttpDate(kT0 + 999)}}),
            10);
  EXPECT_EQ(Lifetime({{"Cache-Control", "max-age=10"}, {"Expires", "0"}}), 10);
}

// §4.2.1: "If the Expires response header field is present, use its value minus the value of the
// Date response header field" (the origin's clock on both sides: skew does not matter).
TEST(Rfc9111, Sec4_2_1_ExpiresMinusDate) {
  const ResponseInfo r =
      Response({{"Date", FormatHttpDate(kT0)}, {"Expires", FormatHttpDate(kT0 + 600)}});
  EXPECT_EQ(FreshnessLifetime(r, kT0, {}), 600);
  EXPECT_EQ(FreshnessLifetime(r, kT0 + 5000, {}), 600);  // our clock is ahead: still 600
}

// §4.2.1: "... (using the time the message was received if it is not present ...)".
TEST(Rfc9111, Sec4_2_1_ExpiresWithoutDateUsesResponseTime) {
  const ResponseInfo r = Response({{"Expires", FormatHttpDate(kT0 + 300)}});
  EXPECT_EQ(FreshnessLifetime(r, kT0, {}), 300);
  EXPECT_EQ(FreshnessLifetime(r, kT0 + 100, {}), 200);
}

// §4.2: "an explicit expiration time in the past to indicate that the response is already stale".
TEST(Rfc9111, Sec4_2_1_ExpiresInThePastIsStale) {
  EXPECT_EQ(Lifetime({{"Expires", FormatHttpDate(kT0 - 1)}}), 0);
  EXPECT_EQ(Lifetime({{"Expires", "Thu, 01 Jan 1970 00:00:00 GMT"}}), 0);
  EXPECT_EQ(Lifetime({{"Expires", FormatHttpDate(kT0)}}), 0);
}

// §5.3: "A cache recipient MUST interpret invalid date formats, especially the value "0", as
// representing a time in the past (i.e., "already expired")."
TEST(Rfc9111, Sec5_3_InvalidExpiresIsAlreadyExpired) {
  Policy ttl;
  ttl.default_ttl = 300;  // an invalid Expires is explicit: no heuristic either
  for (const char* v : {"0", "-1", "never", "", "Thu, 01 Dec 2039 16:00:00 UTC"}) {
    const ResponseInfo r = Response({{"Expires", v}, {"ETag", "\"a\""}});
    EXPECT_TRUE(r.expires_present) << v;
    EXPECT_FALSE(r.expires) << v;
    EXPECT_EQ(FreshnessLifetime(r, kT0, ttl), 0) << v;
  }
}

// §4.2.1: "two Expires header field lines ... either the first occurrence should be used or the
// response should be considered stale": joined into one value they are not a date: stale.
TEST(Rfc9111, Sec4_2_1_DuplicateExpiresIsStale) {
  EXPECT_EQ(
      Lifetime({{"Expires", FormatHttpDate(kT0 + 600)}, {"Expires", FormatHttpDate(kT0 + 600)}}),
      0);
}

// §4.2.1: the rules are "evaluating the following rules and using the first match": a lifetime
// is never negative and the edge bounds it by its max_ttl.
TEST(EdgePolicy, MaxTtlBoundsEveryLifetime) {
  Policy p;
  p.max_ttl = 3600;
  EXPECT_EQ(Lifetime({{"Cache-Control", "max-age=1000000"}}, p), 3600);
  EXPECT_EQ(Lifetime({{"Cache-Control", "s-maxage=1000000"}}, p), 3600);
  EXPECT_EQ(Lifetime({{"Expires", FormatHttpDate(kT0 + 1000000)}}, p), 3600);
  p.default_ttl = 7200;
  EXPECT_EQ(Lifetime({}, p), 3600);
  p.max_ttl = Seconds{1} << 40;
  EXPECT_EQ(Lifetime({{"Cache-Control", "max-age=99999999999999"}}, p), k2To31);
}

// ---- §4.2.2 Calculating Heuristic Freshness ----

// §4.2.2: "a cache MAY assign a heuristic expiration time": this edge does not by default (the
// topology's default_ttl is 0), so a response without explicit expiration is never fresh.
TEST(Rfc9111, Sec4_2_2_HeuristicFreshnessOffByDefault) {
  EXPECT_EQ(Lifetime({{"Last-Modified", FormatHttpDate(kT0 - 86400 * 365)}}), 0);
  const Decision d = DecideAfter(0, {{"ETag", "\"a\""}});
  EXPECT_EQ(d.use, Use::kRevalidate);
  EXPECT_TRUE(d.stale);
}

// §4.2.2: heuristics apply to "responses without explicit freshness whose status codes are
// defined as heuristically cacheable" (RFC 9110 §15.1: "all other status codes are not
// heuristically cacheable"): the default TTL is for those statuses only.
TEST(Rfc9111, Sec4_2_2_DefaultTtlOnlyForHeuristicallyCacheableStatuses) {
  Policy p;
  p.default_ttl = 300;
  for (int status : {200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501})
    EXPECT_EQ(Lifetime({}, p, status), 300) << status;
  for (int status : {201, 302, 303, 307, 400, 403, 500, 502, 503})
    EXPECT_EQ(Lifetime({{"Cache-Control", "public"}}, p, status), 0) << status;
}

// §4.2.2: "A cache MUST NOT use heuristics to determine freshness when an explicit expiration time
// is present in the stored response."
TEST(Rfc9111, Sec4_2_2_NoHeuristicWhenExplicitExpirationPresent) {
  Policy p;
  p.default_ttl = 300;
  EXPECT_EQ(Lifetime({{"Cache-Control", "max-age=10"}}, p), 10);
  EXPECT_EQ(Lifetime({{"Cache-Control", "max-age=0"}}, p), 0);
  EXPECT_EQ(Lifetime({{"Cache-Control", "s-maxage=0"}}, p), 0);
  EXPECT_EQ(Lifetime({{"Expires", FormatHttpDate(kT0 - 10)}}, p), 0);
  EXPECT_EQ(Lifetime({{"Expires", FormatHttpDate(kT0 + 20)}}, p), 20);
}

// ---- §4.2.3 Calculating Age, §5.1 Age ----

// §4.2.3: "age_value: the value of the Age header field" and "corrected_age_value = age_value +
// response_delay".
TEST(Rfc9111, Sec4_2_3_AgeHeaderCounts) {
  const ResponseInfo r = Response({{"Date", FormatHttpDate(kT0)}, {"Age", "100"}});
  EXPECT_EQ(CurrentAge(r, kT0, kT0, kT0), 100);
  EXPECT_EQ(CurrentAge(r, kT0, kT0, kT0 + 7), 107);
}

// §4.2.3: "A cache MUST interpret this value relative to the time the request was initiated, not
// the time that the response was received."
TEST(Rfc9111, Sec4_2_3_AgeIsRelativeToRequestTime) {
  const ResponseInfo r = Response({{"Date", FormatHttpDate(kT0 + 5)}, {"Age", "10"}});
  EXPECT_EQ(CurrentAge(r, kT0, kT0 + 5, kT0 + 5), 15);  // 10 + the 5 s the response took
}

// §4.2.3: "apparent_age = max(0, response_time - date_value)" and "corrected_initial_age =
// max(apparent_age, corrected_age_value)".
TEST(Rfc9111, Sec4_2_3_ApparentAgeFromDate) {
  const ResponseInfo r = Response({{"Date", FormatHttpDate(kT0 - 50)}, {"Age", "20"}});
  EXPECT_EQ(CurrentAge(r, kT0, kT0, kT0), 50);  // apparent 50 beats corrected 20
  const ResponseInfo older = Response({{"Date", FormatHttpDate(kT0 - 50)}, {"Age", "80"}});
  EXPECT_EQ(CurrentAge(older, kT0, kT0, kT0), 80);
}

// §4.2.3: "If the result is negative, the result is replaced by zero": a Date from a clock ahead
// of ours does not make the age negative.
TEST(Rfc9111, Sec4_2_3_ClockSkewNeverMakesAgeNegative) {
  const ResponseInfo r = Response({{"Date", FormatHttpDate(kT0 + 3600)}});
  EXPECT_EQ(CurrentAge(r, kT0, kT0, kT0), 0);
  EXPECT_EQ(CurrentAge(r, kT0, kT0, kT0 + 30), 30);
}

// §4.2.3: "resident_time = now - response_time; current_age = corrected_initial_age +
// resident_time", with a clock that stepped back (now before the response, a response before its
// request) counting as no time rather than a negative age.
TEST(Rfc9111, Sec4_2_3_NegativeIntervalsCountAsZero) {
  const ResponseInfo r = Response({{"Age", "5"}});
  EXPECT_EQ(CurrentAge(r, kT0, kT0 + 10, kT0), 15);  // resident -10 -> 0
  EXPECT_EQ(CurrentAge(r, kT0 + 10, kT0, kT0), 5);   // response delay -10 -> 0
  EXPECT_EQ(CurrentAge(Response({}), kT0, kT0, kT0 - 1000), 0);
}

// §4.2.3 with §6.6.1 of RFC 9110 (a recipient "MUST record the time it was received" when there
// is no Date): without Date, apparent_age is 0.
TEST(Rfc9111, Sec4_2_3_NoDateMeansNoApparentAge) {
  EXPECT_EQ(CurrentAge(Response({}), kT0, kT0 + 2, kT0 + 2), 2);
  EXPECT_EQ(CurrentAge(Response({{"Date", "garbage"}}), kT0, kT0, kT0 + 3), 3);
}

// §1.2.2: "or if any of its subsequent calculations overflows, the cache MUST consider the value
// to be 2147483648": no overflow, whatever the inputs.
TEST(Rfc9111, Sec1_2_2_AgeCalculationsSaturate) {
  const ResponseInfo r = Response({{"Age", "999999999999999999999999"}});
  EXPECT_EQ(r.age, k2To31);
  EXPECT_EQ(CurrentAge(r, INT64_MIN, INT64_MAX, INT64_MAX), k2To31);
  EXPECT_EQ(CurrentAge(Response({}), INT64_MIN, INT64_MAX, INT64_MIN), k2To31);
  EXPECT_EQ(CurrentAge(Response({}), INT64_MAX, INT64_MIN, INT64_MAX), k2To31);
  const ResponseInfo dated = Response({{"Date", "Sat, 01 Jan 0000 00:00:00 GMT"}});
  EXPECT_EQ(CurrentAge(dated, INT64_MAX, INT64_MAX, INT64_MAX), k2To31);
}

// §5.1: "a cache encountering a message with a list-based Age field value SHOULD use the first
// member of the field value, discarding subsequent ones."
TEST(Rfc9111, Sec5_1_ListAgeUsesFirstMember) {
  EXPECT_EQ(Response({{"Age", "30, 40"}}).age, 30);
  EXPECT_EQ(Response({{"Age", "30"}, {"Age", "4000"}}).age, 30);
}

// §5.1: "If the field value ... is invalid (e.g., it contains something other than a non-negative
// integer), a cache SHOULD ignore the field."
TEST(Rfc9111, Sec5_1_InvalidAgeIsIgnored) {
  for (const char* v : {"-5", "abc", "1.5", "", "5s", "+5", "0x10"}) {
    const ResponseInfo r = Response({{"Age", v}});
    EXPECT_FALSE(r.age) << v;
    EXPECT_EQ(CurrentAge(r, kT0, kT0, kT0), 0) << v;
  }
}

// ---- §4 Constructing Responses from Caches, §4.2 Freshness ----

// §4.2: "response_is_fresh = (freshness_lifetime > current_age)".
TEST(Rfc9111, Sec4_2_FreshWhileLifetimeExceedsAge) {
  const Fields f = {{"Cache-Control", "max-age=60"}};
  EXPECT_EQ(DecideAfter(0, f).use, Use::kFresh);
  EXPECT_EQ(DecideAfter(59, f).use, Use::kFresh);
  EXPECT_FALSE(DecideAfter(59, f).stale);
  EXPECT_EQ(DecideAfter(60, f).use, Use::kRevalidate);
  EXPECT_TRUE(DecideAfter(60, f).stale);
  // An Age from upstream uses up freshness too.
  EXPECT_EQ(DecideAfter(0, {{"Cache-Control", "max-age=60"}, {"Age", "60"}}).use, Use::kRevalidate);
}

// §4: "When a stored response is used to satisfy a request without validation, a cache MUST
// generate an Age header field ... equal to the stored response's current_age".
TEST(Rfc9111, Sec4_AgeOfAReusedResponseIsItsCurrentAge) {
  const Decision d = DecideAfter(25, {{"Cache-Control", "max-age=600"}, {"Age", "100"}});
  EXPECT_EQ(d.use, Use::kFresh);
  EXPECT_EQ(d.age, 125);
}

// §4: the stored response must not "contain the no-cache directive, unless it is successfully
// validated" (§5.2.2.4: "MUST NOT be used to satisfy any other request without forwarding it for
// validation").
TEST(Rfc9111, Sec5_2_2_4_ResponseNoCacheAlwaysRevalidates) {
  EXPECT_EQ(DecideAfter(0, {{"Cache-Control", "no-cache, max-age=600"}}).use, Use::kRevalidate);
  EXPECT_EQ(DecideAfter(0, {{"Cache-Control", "no-cache=\"Set-Cookie\", max-age=600"}}).use,
            Use::kRevalidate);
  EXPECT_EQ(
      DecideAfter(0, {{"Cache-Control", "no-cache, max-age=600"}}, "max-stale, only-if-cached").use,
      Use::kGatewayTimeout);
}

// ---- §4.2.4 Serving Stale Responses ----

// §4.2.4: "A cache MUST NOT generate a stale response unless it is disconnected or doing so is
// explicitly permitted by the client or origin server".
TEST(Rfc9111, Sec4_2_4_StaleIsNotServedWithoutPermission) {
  const Decision d = DecideAfter(61, {{"Cache-Control", "max-age=60"}});
  EXPECT_EQ(d.use, Use::kRevalidate);
  EXPECT_TRUE(d.stale);
  EXPECT_FALSE(ErrorAfter(61, {{"Cache-Control", "max-age=60"}}));  // grace 0: not disconnected
}

// §5.2.2.2: "once the response has become stale, a cache MUST NOT reuse that response to satisfy
// another request until it has been successfully validated by the origin" (§4.2.4: not even when
// the client's max-stale or stale-while-revalidate would allow it).
TEST(Rfc9111, Sec5_2_2_2_MustRevalidateForbidsServingStale) {
  const Fields f = {{"Cache-Control", "max-age=60, must-revalidate, stale-while-revalidate=600"}};
  EXPECT_EQ(DecideAfter(59, f).use, Use::kFresh);
  EXPECT_EQ(DecideAfter(61, f).use, Use::kRevalidate);
  EXPECT_EQ(DecideAfter(61, f, "max-stale").use, Use::kRevalidate);
  EXPECT_EQ(DecideAfter(61, f, "max-stale=1000").use, Use::kRevalidate);
}

// §5.2.2.2: "if a cache is disconnected, the cache MUST generate an error response rather than
// reuse the stale response".
TEST(Rfc9111, Sec5_2_2_2_MustRevalidateForbidsStaleWhenOriginFails) {
  Policy grace;
  grace.grace = 3600;
  const Fields f = {{"Cache-Control", "max-age=60, must-revalidate, stale-if-error=600"}};
  EXPECT_FALSE(ErrorAfter(61, f, "", grace));
  EXPECT_FALSE(ErrorAfter(61, f, "stale-if-error=600", grace));
}

// §5.2.2.8: proxy-revalidate: "once the response has become stale, a shared cache MUST NOT reuse
// that response to satisfy another request until it has been successfully validated".
TEST(Rfc9111, Sec5_2_2_8_ProxyRevalidateForbidsServingStale) {
  Policy grace;
  grace.grace = 3600;
  const Fields f = {{"Cache-Control", "max-age=60, proxy-revalidate, stale-while-revalidate=60"}};
  EXPECT_EQ(DecideAfter(61, f).use, Use::kRevalidate);
  EXPECT_EQ(DecideAfter(61, f, "max-stale").use, Use::kRevalidate);
  EXPECT_FALSE(ErrorAfter(61, f, "", grace));
}

// §5.2.2.10: "A shared cache MUST NOT reuse a stale response with s-maxage to satisfy another
// request until it has been successfully validated by the origin".
TEST(Rfc9111, Sec5_2_2_10_SMaxageForbidsServingStale) {
  Policy grace;
  grace.grace = 3600;
  const Fields f = {{"Cache-Control", "s-maxage=60, stale-while-revalidate=60"}};
  EXPECT_EQ(DecideAfter(59, f).use, Use::kFresh);
  EXPECT_EQ(DecideAfter(61, f).use, Use::kRevalidate);
  EXPECT_EQ(DecideAfter(61, f, "max-stale").use, Use::kRevalidate);
  EXPECT_FALSE(ErrorAfter(61, f, "", grace));
}

// §5.2.2.4: no-cache "allows an origin server to prevent a cache from using the response to
// satisfy a request without contacting it, even by caches that have been configured to send
// stale responses".
TEST(Rfc9111, Sec5_2_2_4_NoCacheForbidsStaleEvenWithGrace) {
  Policy grace;
  grace.grace = 3600;
  const Fields f = {{"Cache-Control", "no-cache, max-age=600, stale-if-error=600"}};
  EXPECT_FALSE(ErrorAfter(0, f, "", grace));
  EXPECT_FALSE(ErrorAfter(700, f, "", grace));
}

// ---- §5.2.1 Request Directives ----

// §5.2.1.1: max-age: "the client prefers a response whose age is less than or equal to the
// specified number of seconds".
TEST(Rfc9111, Sec5_2_1_1_RequestMaxAgeLimitsAge) {
  const Fields f = {{"Cache-Control", "max-age=600"}};
  EXPECT_EQ(DecideAfter(30, f, "max-age=30").use, Use::kFresh);
  EXPECT_EQ(DecideAfter(31, f, "max-age=30").use, Use::kRevalidate);
  EXPECT_FALSE(DecideAfter(31, f, "max-age=30").stale);
  EXPECT_EQ(DecideAfter(0, f, "max-age=0").use, Use::kFresh);  // age 0 <= 0
  EXPECT_EQ(DecideAfter(1, f, "max-age=0").use, Use::kRevalidate);
}

// §5.2.1.1: "Unless the max-stale request directive is also present, the client does not wish to
// receive a stale response."
TEST(Rfc9111, Sec5_2_1_1_RequestMaxAgeWithoutMaxStaleRefusesStale) {
  const Fields f = {{"Cache-Control", "max-age=10"}};
  EXPECT_EQ(DecideAfter(20, f, "max-age=100").use, Use::kRevalidate);
  EXPECT_EQ(DecideAfter(20, f, "max-age=100, max-stale=10").use, Use::kFresh);
}

// §5.2.1.2: "If a value is present, then the client is willing to accept a response that has
// exceeded its freshness lifetime by no more than the specified number of seconds."
TEST(Rfc9111, Sec5_2_1_2_MaxStaleWithValue) {
  const Fields f = {{"Cache-Control", "max-age=60"}};
  const Decision ok = DecideAfter(80, f, "max-stale=20");
  EXPECT_EQ(ok.use, Use::kFresh);
  EXPECT_TRUE(ok.stale);
  EXPECT_EQ(ok.age, 80);
  EXPECT_EQ(DecideAfter(81, f, "max-stale=20").use, Use::kRevalidate);
}

// §5.2.1.2: "If no value is assigned to max-stale, then the client will accept a stale response
// of any age."
TEST(Rfc9111, Sec5_2_1_2_MaxStaleWithoutValueAcceptsAnyStaleness) {
  const Decision d = DecideAfter(10'000'000, {{"Cache-Control", "max-age=60"}}, "max-stale");
  EXPECT_EQ(d.use, Use::kFresh);
  EXPECT_TRUE(d.stale);
}

// §5.2.1.3: min-fresh: "the client wants a response that will still be fresh for at least the
// specified number of seconds".
TEST(Rfc9111, Sec5_2_1_3_MinFresh) {
  const Fields f = {{"Cache-Control", "max-age=100"}};
  EXPECT_EQ(DecideAfter(50, f, "min-fresh=50").use, Use::kFresh);
  EXPECT_EQ(DecideAfter(50, f, "min-fresh=51").use, Use::kRevalidate);
  EXPECT_FALSE(DecideAfter(50, f, "min-fresh=51").stale);
}

// §5.2.1.4: no-cache: "the client prefers a stored response not be used to satisfy the request
// without successful validation on the origin server".
TEST(Rfc9111, Sec5_2_1_4_RequestNoCacheRevalidates) {
  const Fields f = {{"Cache-Control", "max-age=600, immutable, stale-while-revalidate=60"}};
  EXPECT_EQ(DecideAfter(0, f, "no-cache").use, Use::kRevalidate);
  EXPECT_EQ(DecideAfter(610, f, "no-cache").use, Use::kRevalidate);
}

// §5.2.1.5: "if a request containing this directive is satisfied from a cache, the no-store
// request directive does not apply to the already stored response".
TEST(Rfc9111, Sec5_2_1_5_RequestNoStoreMayBeAnsweredFromCache) {
  EXPECT_EQ(DecideAfter(5, {{"Cache-Control", "max-age=60"}}, "no-store").use, Use::kFresh);
}

// §5.2.1.7: only-if-cached: caches "SHOULD ... respond with either a stored response consistent
// with the other constraints of the request or a 504 (Gateway Timeout) status code".
TEST(Rfc9111, Sec5_2_1_7_OnlyIfCachedServesStoredOr504) {
  const Fields f = {{"Cache-Control", "max-age=60"}};
  EXPECT_EQ(DecideAfter(5, f, "only-if-cached").use, Use::kFresh);
  EXPECT_EQ(DecideAfter(61, f, "only-if-cached").use, Use::kGatewayTimeout);
  EXPECT_EQ(DecideAfter(5, f, "only-if-cached, no-cache").use, Use::kGatewayTimeout);
  EXPECT_EQ(DecideAfter(61, f, "only-if-cached, max-stale").use, Use::kFresh);
}

// RFC 8246 §2: "Clients SHOULD NOT issue a conditional request during the response's freshness
// lifetime (e.g., upon a reload) unless explicitly overridden by the user (e.g., a force reload)":
// a reload's max-age=0 does not revalidate a fresh immutable response; a forced one (no-cache)
// does, and so does staleness ("Stale responses SHOULD be revalidated as they normally would").
TEST(Rfc8246, Sec2_ImmutableFreshResponseIgnoresRequestMaxAge) {
  const Fields f = {{"Cache-Control", "public, max-age=31536000, immutable"}};
  EXPECT_EQ(DecideAfter(100, f, "max-age=0").use, Use::kFresh);
  EXPECT_EQ(DecideAfter(100, f, "no-cache").use, Use::kRevalidate);
  const Fields short_lived = {{"Cache-Control", "max-age=10, immutable"}};
  EXPECT_EQ(DecideAfter(20, short_lived, "max-age=0").use, Use::kRevalidate);
  EXPECT_EQ(DecideAfter(100, {{"Cache-Control", "max-age=600"}}, "max-age=0").use,
            Use::kRevalidate);
}

// ---- RFC 5861 ----

// RFC 5861 §3: stale-while-revalidate "indicates that caches MAY serve the response in which it
// appears after it becomes stale, up to the indicated number of seconds", revalidating it "while
// still serving stale responses (i.e., without blocking)".
TEST(Rfc5861, Sec3_StaleWhileRevalidateWithinItsWindow) {
  const Fields f = {{"Cache-Control", "max-age=60, stale-while-revalidate=30"}};
  EXPECT_EQ(DecideAfter(59, f).use, Use::kFresh);
  const Decision d = DecideAfter(70, f);
  EXPECT_EQ(d.use, Use::kStaleRevalidate);
  EXPECT_TRUE(d.stale);
  EXPECT_EQ(d.age, 70);
  EXPECT_EQ(DecideAfter(90, f).use, Use::kStaleRevalidate);
  EXPECT_EQ(DecideAfter(91, f).use, Use::kRevalidate);
}

// RFC 5861 §3 with RFC 9111 §5.2.1.4: the window is the origin's permission; a client that asks
// for validation (no-cache) or for a younger response (max-age) still gets one.
TEST(Rfc5861, Sec3_StaleWhileRevalidateYieldsToTheRequest) {
  const Fields f = {{"Cache-Control", "max-age=60, stale-while-revalidate=30"}};
  EXPECT_EQ(DecideAfter(70, f, "no-cache").use, Use::kRevalidate);
  EXPECT_EQ(DecideAfter(70, f, "max-age=65").use, Use::kRevalidate);
}

// RFC 5861 §4: stale-if-error: "when an error is encountered, a cached stale response MAY be used
// to satisfy the request", and "when the cached response is more stale than the indicated amount,
// the cached response SHOULD NOT be used".
TEST(Rfc5861, Sec4_StaleIfErrorFromResponse) {
  const Fields f = {{"Cache-Control", "max-age=60, stale-if-error=100"}};
  EXPECT_TRUE(ErrorAfter(61, f));
  EXPECT_TRUE(ErrorAfter(160, f));
  EXPECT_FALSE(ErrorAfter(161, f));
}

// RFC 5861 §4: "When used as a request Cache-Control extension, its scope of application is the
// request it appears in".
TEST(Rfc5861, Sec4_StaleIfErrorFromRequest) {
  const Fields f = {{"Cache-Control", "max-age=60"}};
  EXPECT_TRUE(ErrorAfter(100, f, "stale-if-error=40"));
  EXPECT_FALSE(ErrorAfter(101, f, "stale-if-error=40"));
  EXPECT_FALSE(ErrorAfter(100, f));
}

// RFC 5861 §4: "Note that this directive does not affect freshness": only an error lets the
// stale response answer; a request that reaches the origin fine is not answered stale.
TEST(Rfc5861, Sec4_StaleIfErrorDoesNotServeStaleWithoutAnError) {
  EXPECT_EQ(DecideAfter(61, {{"Cache-Control", "max-age=60, stale-if-error=600"}}).use,
            Use::kRevalidate);
}

// RFC 5861 §4 on a response that is still fresh (the origin was asked because the client sent
// no-cache): it may answer when the origin fails.
TEST(Rfc5861, Sec4_FreshResponseMayAnswerOnError) {
  EXPECT_TRUE(ErrorAfter(10, {{"Cache-Control", "max-age=60"}}, "no-cache"));
}

// The edge's grace (an "out-of-band contract", §4.2.4): when the origin fails, a response that
// says nothing may be served up to `grace` seconds stale; a response's own stale-if-error
// replaces it; 0 is never.
TEST(EdgePolicy, GraceWhenTheResponseIsSilent) {
  Policy p;
  p.grace = 300;
  const Fields f = {{"Cache-Control", "max-age=60"}};
  EXPECT_TRUE(ErrorAfter(360, f, "", p));
  EXPECT_FALSE(ErrorAfter(361, f, "", p));
  EXPECT_FALSE(ErrorAfter(90, {{"Cache-Control", "max-age=60, stale-if-error=10"}}, "", p));
  EXPECT_TRUE(ErrorAfter(70, {{"Cache-Control", "max-age=60, stale-if-error=10"}}, "", p));
  p.grace = 0;
  EXPECT_FALSE(ErrorAfter(60, f, "", p));  // stale by 0 s is still stale
  EXPECT_FALSE(ErrorAfter(61, f, "", p));
  EXPECT_TRUE(ErrorAfter(59, f, "", p));
}

}  // namespace
}  // namespace millions::edge
