// The conformance suite for the edge's caching rules, part 1: what may be stored (RFC 9111 §3,
// §4.1 Vary) and how Cache-Control is read (§5.2). One test per requirement, named by its
// section, with the requirement quoted. Part 2 (http_freshness_test.cc): freshness, age,
// serving stale, request directives, RFC 5861. Part 3 (http_validation_test.cc): validation,
// conditional requests, dates, ranges.
#include "roles/edge/http_cache.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "roles/edge/http_cache_test_util.h"

namespace millions::edge {
namespace {

using testing::Fields;
using testing::Request;
using testing::Response;

constexpr Seconds k2To31 = Seconds{1} << 31;

Storable Store(const ResponseInfo& r, const Policy& p = {}) {
  return CanStore("GET", CacheControl{}, false, r, p);
}

// A response every rule allows: explicit freshness, a validator.
Fields Cacheable() { return {{"Cache-Control", "max-age=60"}, {"ETag", "\"v1\""}}; }

// ---- §3 Storing Responses in Caches ----

// §3: "the request method is understood by the cache" (here: GET; HEAD is answered from GET's).
TEST(Rfc9111, Sec3_OnlyUnderstoodMethodsAreStored) {
  const ResponseInfo r = Response(Cacheable());
  EXPECT_EQ(CanStore("GET", {}, false, r, {}), Storable::kStore);
  for (const char* m : {"POST", "PUT", "DELETE", "HEAD", "OPTIONS", "get", ""})
    EXPECT_EQ(CanStore(m, {}, false, r, {}), Storable::kMethod) << m;
}

// §3: "the response status code is final".
TEST(Rfc9111, Sec3_NonFinalStatusIsNotStored) {
  for (int status : {100, 101, 103, 199})
    EXPECT_EQ(Store(Response(status, Cacheable())), Storable::kStatus) << status;
}

// §3: a status that is not an HTTP status at all is not understood.
TEST(Rfc9111, Sec3_InvalidStatusIsNotStored) {
  for (int status : {0, -1, 99, 600, 999})
    EXPECT_EQ(Store(Response(status, Cacheable())), Storable::kStatus) << status;
}

// §3: "if the response status code is 206 or 304 ... the cache understands the response status
// code": a 304 updates a stored response (§4.3.4), it is never stored as one.
TEST(Rfc9111, Sec3_NotModifiedIsNotStoredAsAResponse) {
  EXPECT_EQ(Store(Response(304, Cacheable())), Storable::kStatus);
}

// §3.3: "a cache MUST NOT store incomplete or partial-content responses if it does not support
// the Range and Content-Range header fields": this cache stores whole bodies only.
TEST(Rfc9111, Sec3_3_PartialContentIsNotStored) {
  EXPECT_EQ(Store(Response(206, Cacheable())), Storable::kPartial);
  Fields f = Cacheable();
  f.emplace_back("Content-Range", "bytes 0-9/100");
  EXPECT_EQ(Store(Response(200, f)), Storable::kPartial);
}

// §5.2.1.5: "a cache MUST NOT store any part of either this request or any response to it".
TEST(Rfc9111, Sec5_2_1_5_RequestNoStoreForbidsStoring) {
  EXPECT_EQ(CanStore("GET", Request("no-store"), false, Response(Cacheable()), {}),
            Storable::kNoStore);
}

// §5.2.2.5: "a cache MUST NOT store any part of either the immediate request or the response".
TEST(Rfc9111, Sec5_2_2_5_ResponseNoStoreForbidsStoring) {
  for (const char* cc : {"no-store", "public, max-age=60, no-store", "NO-STORE", "No-Store=1"})
    EXPECT_EQ(Store(Response({{"Cache-Control", cc}, {"ETag", "\"a\""}})), Storable::kNoStore)
        << cc;
}

// §5.2.2.3: must-understand "limits caching of the response to a cache that understands and
// conforms to the requirements for that response's status code".
TEST(Rfc9111, Sec5_2_2_3_MustUnderstandWithUnknownStatusIsNotStored) {
  for (int status : {299, 418, 500})
    EXPECT_EQ(Store(Response(status, {{"Cache-Control", "must-understand, max-age=60"}})),
              Storable::kStatus)
        << status;
  EXPECT_EQ(Store(Response(200, {{"Cache-Control", "must-understand, max-age=60"}})),
            Storable::kStore);
}

// §5.2.2.3: "the cache SHOULD ignore the no-store directive if it understands and implements the
// status code's caching requirements".
TEST(Rfc9111, Sec5_2_2_3_MustUnderstandOverridesNoStoreForUnderstoodStatus) {
  EXPECT_EQ(Store(Response(200, {{"Cache-Control", "must-understand, no-store, max-age=60"}})),
            Storable::kStore);
  EXPECT_EQ(Store(Response(299, {{"Cache-Control", "must-understand, no-store, max-age=60"}})),
            Storable::kStatus);
}

// §5.2.2.7: "The unqualified private response directive indicates that a shared cache MUST NOT
// store the response".
TEST(Rfc9111, Sec5_2_2_7_PrivateIsNotStoredBySharedCache) {
  for (const char* cc : {"private", "private, max-age=60", "public, private", "PRIVATE"})
    EXPECT_EQ(Store(Response({{"Cache-Control", cc}, {"ETag", "\"a\""}})), Storable::kPrivate)
        << cc;
}

// §5.2.2.7: a qualified private: "a shared cache MUST NOT store the listed header fields"; this
// cache does not rewrite stored headers, so it stores none of the response (the note: "often
// handled by caches as if an unqualified private directive was received").
TEST(Rfc9111, Sec5_2_2_7_QualifiedPrivateIsNotStored) {
  EXPECT_EQ(Store(Response({{"Cache-Control", "private=\"Set-Cookie, X-User\", max-age=60"}})),
            Storable::kPrivate);
}

// §3.5: "A shared cache MUST NOT use a cached response to a request with an Authorization header
// field ... unless the response contains a Cache-Control field with a response directive ...
// that allows it to be stored by a shared cache".
TEST(Rfc9111, Sec3_5_AuthorizedResponseIsNotStoredWithoutPermission) {
  for (const char* cc : {"max-age=60", "max-age=60, proxy-revalidate", "no-cache, max-age=60"})
    EXPECT_EQ(CanStore("GET", {}, true, Response({{"Cache-Control", cc}}), {}),
              Storable::kAuthorization)
        << cc;
  Fields with_expires = {{"Expires", "Thu, 01 Dec 2039 16:00:00 GMT"}};
  EXPECT_EQ(CanStore("GET", {}, true, Response(with_expires), {}), Storable::kAuthorization);
}

// §3.5: "the following response directives have such an effect: must-revalidate ..."
TEST(Rfc9111, Sec3_5_MustRevalidateAllowsStoringAuthorizedResponse) {
  EXPECT_EQ(
      CanStore("GET", {}, true, Response({{"Cache-Control", "must-revalidate, max-age=60"}}), {}),
      Storable::kStore);
}

// §3.5: "... public ..." (§5.2.2.9: "public permits a shared cache to reuse a response to a
// request containing an Authorization header field").
TEST(Rfc9111, Sec3_5_PublicAllowsStoringAuthorizedResponse) {
  EXPECT_EQ(CanStore("GET", {}, true, Response({{"Cache-Control", "public, max-age=60"}}), {}),
            Storable::kStore);
}

// §3.5: "... and s-maxage" (§5.2.2.10: "This directive also permits a shared cache to reuse a
// response to a request containing an Authorization header field").
TEST(Rfc9111, Sec3_5_SMaxageAllowsStoringAuthorizedResponse) {
  EXPECT_EQ(CanStore("GET", {}, true, Response({{"Cache-Control", "s-maxage=60"}}), {}),
            Storable::kStore);
}

// §3: "the response contains at least one of: public ..., an Expires header field, a max-age
// response directive, ... an s-maxage response directive, ... a status code that is defined as
// heuristically cacheable".
TEST(Rfc9111, Sec3_ResponseWithoutAnyCachingPermissionIsNotStored) {
  for (int status : {302, 307, 500, 503})
    EXPECT_EQ(Store(Response(status, {{"ETag", "\"a\""}})), Storable::kNoFreshness) << status;
  EXPECT_EQ(Store(Response(302, {{"ETag", "\"a\""}, {"Cache-Control", "max-age=60"}})),
            Storable::kStore);
  EXPECT_EQ(Store(Response(302, {{"ETag", "\"a\""}, {"Cache-Control", "s-maxage=60"}})),
            Storable::kStore);
  EXPECT_EQ(Store(Response(302, {{"ETag", "\"a\""}, {"Expires", "Thu, 01 Dec 2039 16:00:00 GMT"}})),
            Storable::kStore);
}

// §5.2.2.9: "The public response directive indicates that a cache MAY store the response even if
// it would otherwise be prohibited".
TEST(Rfc9111, Sec5_2_2_9_PublicMarksOtherStatusCacheable) {
  EXPECT_EQ(Store(Response(302, {{"ETag", "\"a\""}, {"Cache-Control", "public"}})),
            Storable::kStore);
}

// §3: "some caches will not store a response that has neither a cache validator nor an explicit
// expiration time, as such responses are not usually useful to store": with heuristic freshness
// off (§4.2.2, the default) it could never be served, so it is not stored.
TEST(Rfc9111, Sec4_2_2_HeuristicOffByDefaultResponseWithoutValidatorIsNotStored) {
  EXPECT_EQ(Store(Response(200, {})), Storable::kNoFreshness);
  EXPECT_EQ(Store(Response(200, {{"Cache-Control", "public"}})), Storable::kNoFreshness);
  EXPECT_EQ(Store(Response(200, {{"ETag", "\"a\""}})), Storable::kStore);
  EXPECT_EQ(Store(Response(200, {{"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"}})),
            Storable::kStore);
  Policy ttl;
  ttl.default_ttl = 300;
  EXPECT_EQ(Store(Response(200, {}), ttl), Storable::kStore);
}

// §4.1: "A stored response with a Vary header field value containing a member "*" always fails
// to match": storing it is useless.
TEST(Rfc9111, Sec4_1_VaryStarIsNotStored) {
  Fields f = Cacheable();
  f.emplace_back("Vary", "Accept-Encoding, *");
  EXPECT_EQ(Store(Response(f)), Storable::kVaryStar);
}

// §4.1: header fields match after "adding or removing whitespace" and "combining multiple header
// field lines"; field names are case-insensitive (RFC 9110 §5.1): the Vary list is normalised.
TEST(Rfc9111, Sec4_1_VaryFieldNamesNormalised) {
  const ResponseInfo r =
      Response({{"Vary", " Accept-Encoding ,USER-Agent,, "}, {"vary", "Accept-Language"}});
  EXPECT_EQ(r.vary, (std::vector<std::string>{"accept-encoding", "user-agent", "accept-language"}));
  EXPECT_EQ(Store(Response({{"Cache-Control", "max-age=1"}, {"Vary", "Accept-Encoding"}})),
            Storable::kStore);
}

// §4.1 (and §4.1 "a valid Vary field value"): a member that is not a field name cannot be
// matched reliably, so it is treated like "*"; so is a list long enough to be an attack.
TEST(Rfc9111, Sec4_1_InvalidVaryIsNeverMatched) {
  EXPECT_EQ(Response({{"Vary", "Accept Encoding"}}).vary, std::vector<std::string>{"*"});
  EXPECT_EQ(Response({{"Vary", "a\"b"}}).vary, std::vector<std::string>{"*"});
  std::string many;
  for (int i = 0; i < 40; ++i) many += "x-h" + std::to_string(i) + ",";
  EXPECT_EQ(Response({{"Vary", many}}).vary, std::vector<std::string>{"*"});
}

// ---- §5.2 Cache-Control syntax ----

// §5.2: "Cache directives are identified by a token, to be compared case-insensitively".
TEST(Rfc9111, Sec5_2_DirectiveNamesAreCaseInsensitive) {
  const CacheControl cc = ParseCacheControl("Max-Age=60, NO-CACHE, Public, S-MAXAGE=5");
  EXPECT_EQ(cc.max_age, 60);
  EXPECT_EQ(cc.s_maxage, 5);
  EXPECT_TRUE(cc.no_cache);
  EXPECT_TRUE(cc.public_);
}

// §5.2: arguments "can use both token and quoted-string syntax ... recipients ought to accept
// both forms, even if a specific form is required for generation".
TEST(Rfc9111, Sec5_2_QuotedArgumentsAreAccepted) {
  const CacheControl cc =
      ParseCacheControl("max-age=\"60\", s-maxage=\"7\", stale-while-revalidate=\"30\"");
  EXPECT_EQ(cc.max_age, 60);
  EXPECT_EQ(cc.s_maxage, 7);
  EXPECT_EQ(cc.stale_while_revalidate, 30);
}

// RFC 9110 §5.6.4: a quoted-string "is parsed as a single value": a comma inside one does not
// end the directive (no-cache="a, max-age=1" must not read as max-age=1).
TEST(Rfc9111, Sec5_2_QuotedArgumentMayHoldCommas) {
  const CacheControl cc =
      ParseCacheControl("no-cache=\"Set-Cookie, max-age=1\", max-age=60, private=\"a,\\\"b\"");
  EXPECT_TRUE(cc.no_cache);
  EXPECT_TRUE(cc.private_);
  EXPECT_EQ(cc.max_age, 60);
}

// RFC 9110 §5.6.1.2: "A recipient MUST parse and ignore a reasonable number of empty list
// elements".
TEST(Rfc9111, Sec5_2_EmptyListElementsAreIgnored) {
  const CacheControl cc = ParseCacheControl(" , ,max-age=5,, public ,");
  EXPECT_EQ(cc.max_age, 5);
  EXPECT_TRUE(cc.public_);
}

// §5.2.3: "A cache MUST ignore unrecognized cache directives."
TEST(Rfc9111, Sec5_2_3_UnknownDirectivesAreIgnored) {
  const CacheControl cc =
      ParseCacheControl("community=\"UCI\", foo, bar=baz, max-age=5, x-max-age=9, max-ages=7");
  EXPECT_EQ(cc.max_age, 5);
  const CacheControl none = ParseCacheControl("community=\"UCI\", foo, bar=baz");
  EXPECT_FALSE(none.max_age || none.s_maxage || none.no_cache || none.no_store || none.private_ ||
               none.public_);
}

// §5.2.2.4 (no-cache), §5.2.2.7 (private): "Argument syntax: #field-name": either form sets the
// directive, qualified or not.
TEST(Rfc9111, Sec5_2_2_4_QualifiedNoCacheCountsAsNoCache) {
  EXPECT_TRUE(ParseCacheControl("no-cache=\"Set-Cookie\"").no_cache);
  EXPECT_TRUE(ParseCacheControl("no-cache=Set-Cookie").no_cache);
  EXPECT_TRUE(ParseCacheControl("private=\"Set-Cookie\"").private_);
}

// §1.2.2: "If a cache receives a delta-seconds value greater than the greatest integer it can
// represent, or if any of its subsequent calculations overflows, the cache MUST consider the
// value to be 2147483648 (2^31)".
TEST(Rfc9111, Sec1_2_2_HugeDeltaSecondsAre2To31) {
  const CacheControl cc = ParseCacheControl(
      "max-age=99999999999999999999999999999, s-maxage=2147483649, min-fresh=18446744073709551616,"
      " stale-if-error=0000000000000000000000000000000000000000000000012");
  EXPECT_EQ(cc.max_age, k2To31);
  EXPECT_EQ(cc.s_maxage, k2To31);
  EXPECT_EQ(cc.min_fresh, k2To31);
  EXPECT_EQ(cc.stale_if_error, 12);  // leading zeros are digits, not a large value
  EXPECT_EQ(ParseCacheControl("max-age=2147483647").max_age, 2147483647);
}

// §4.2.1: "Caches are encouraged to consider responses that have invalid freshness information
// (e.g., a max-age directive with non-integer content) to be stale."
TEST(Rfc9111, Sec4_2_1_InvalidMaxAgeIsStale) {
  for (const char* cc : {"max-age=abc", "max-age=-1", "max-age=", "max-age", "max-age=1.5",
                         "max-age=+5", "max-age=5s", "s-maxage=x"}) {
    const CacheControl parsed = ParseCacheControl(cc);
    EXPECT_EQ(parsed.max_age.value_or(parsed.s_maxage.value_or(-1)), 0) << cc;
    EXPECT_EQ(FreshnessLifetime(Response({{"Cache-Control", cc}}), testing::kT0, {}), 0) << cc;
  }
}

// §1.2.2: "delta-seconds = 1*DIGIT": other directives with an invalid value are absent.
TEST(Rfc9111, Sec1_2_2_InvalidDeltaSecondsMakeOtherDirectivesAbsent) {
  const CacheControl cc =
      ParseCacheControl("min-fresh=x, max-stale=-3, stale-while-revalidate=, stale-if-error=1e3");
  EXPECT_FALSE(cc.min_fresh);
  EXPECT_FALSE(cc.max_stale);
  EXPECT_FALSE(cc.max_stale_any);
  EXPECT_FALSE(cc.stale_while_revalidate);
  EXPECT_FALSE(cc.stale_if_error);
}

// §4.2.1: "When there is more than one value present for a given directive (e.g., two Expires
// header field lines or multiple Cache-Control: max-age directives), either the first occurrence
// should be used or the response should be considered stale": two different max-ages are stale
// (the more restrictive reading); equal ones are one.
TEST(Rfc9111, Sec4_2_1_DuplicateConflictingMaxAgeIsStale) {
  EXPECT_EQ(ParseCacheControl("max-age=60, max-age=3600").max_age, 0);
  EXPECT_EQ(ParseCacheControl("max-age=3600, max-age=60").max_age, 0);
  EXPECT_EQ(ParseCacheControl("max-age=60, max-age=60").max_age, 60);
  EXPECT_EQ(ParseCacheControl("s-maxage=60, s-maxage=61").s_maxage, 0);
  // Two Cache-Control fields are one list (RFC 9110 §5.3).
  EXPECT_EQ(
      Response({{"Cache-Control", "max-age=60"}, {"Cache-Control", "max-age=600"}}).cc.max_age, 0);
}

// §4.2.1: "... either the first occurrence should be used": other directives given twice.
TEST(Rfc9111, Sec4_2_1_DuplicateOtherDirectivesUseFirstOccurrence) {
  const CacheControl cc = ParseCacheControl(
      "stale-while-revalidate=10, stale-while-revalidate=99, min-fresh=5, min-fresh=50, "
      "max-stale=7, max-stale");
  EXPECT_EQ(cc.stale_while_revalidate, 10);
  EXPECT_EQ(cc.min_fresh, 5);
  EXPECT_EQ(cc.max_stale, 7);
  EXPECT_FALSE(cc.max_stale_any);
  EXPECT_TRUE(ParseCacheControl("max-stale, max-stale=7").max_stale_any);
}

// §5.2: hostile field values: unbalanced quotes, stray '=' and control bytes read without
// crashing and without inventing directives.
TEST(Rfc9111, Sec5_2_MalformedFieldsAreReadSafely) {
  EXPECT_FALSE(ParseCacheControl("no-cache=\"max-age=5").max_age);
  EXPECT_TRUE(ParseCacheControl("no-cache=\"max-age=5").no_cache);
  EXPECT_EQ(ParseCacheControl("==,=,max-age=5,\"").max_age, 5);
  EXPECT_EQ(ParseCacheControl(std::string("max-age=5\0, no-store", 20)).max_age, 0);
  std::string big(100000, ',');
  big += "max-age=9";
  EXPECT_EQ(ParseCacheControl(big).max_age, 9);
}

// Not RFC 9111: this edge never replays one user's Set-Cookie to another (store.h).
TEST(EdgePolicy, SetCookieIsNotStored) {
  Fields f = Cacheable();
  f.emplace_back("Set-Cookie", "sid=1");
  EXPECT_EQ(Store(Response(f)), Storable::kSetCookie);
}

TEST(EdgePolicy, StorableNamesAreDistinct) {
  std::set<std::string> names;
  for (int s = 0; s <= static_cast<int>(Storable::kSetCookie); ++s)
    names.insert(StorableName(static_cast<Storable>(s)));
  EXPECT_EQ(names.size(), static_cast<size_t>(Storable::kSetCookie) + 1);
}

}  // namespace
}  // namespace millions::edge
