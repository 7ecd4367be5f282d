// The conformance suite, part 3: validation (RFC 9111 §4.3), conditional requests (RFC 9110 §13),
// HTTP dates (RFC 9110 §5.6.7, RFC 9111 §4.2) and range requests (RFC 9110 §14).
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <limits>
#include <ostream>

#include "roles/edge/http_cache.h"
#include "roles/edge/http_cache_test_util.h"

namespace millions::edge {

// For EXPECT_EQ on ranges (found by argument-dependent lookup, so outside the anonymous
// namespace): positions matter only for kRange.
bool operator==(const ByteRange& a, const ByteRange& b) {
  return a.kind == b.kind &&
         (a.kind != ByteRange::kRange || (a.first == b.first && a.last == b.last));
}
std::ostream& operator<<(std::ostream& os, const ByteRange& r) {
  return os << "{" << r.kind << ", " << r.first << ", " << r.last << "}";
}

namespace {

using testing::Fields;
using testing::Headers;
using testing::kT0;
using testing::Response;

using HeaderPairs = std::vector<std::pair<std::string, std::string>>;

constexpr Seconds k1994 = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example)

bool Conditional(Fields request, const ResponseInfo& stored, std::optional<Seconds> now = {}) {
  return NotModified(Headers(std::move(request)), stored, now);
}

// ---- RFC 9111 §4.3.1 Sending a Validation Request ----

// §4.3.1: a cache "MUST send the relevant entity tags (using If-Match, If-None-Match, or If-Range)
// if the entity tags were provided in the stored response(s) being validated".
TEST(Rfc9111, Sec4_3_1_SendsEntityTag) {
  EXPECT_EQ(ValidationHeaders(Response({{"ETag", "\"v1\""}})),
            (HeaderPairs{{"If-None-Match", "\"v1\""}}));
  EXPECT_EQ(ValidationHeaders(Response({{"ETag", " W/\"v1\" "}})),
            (HeaderPairs{{"If-None-Match", "W/\"v1\""}}));
}

// §4.3.1: a cache "SHOULD send the Last-Modified value (using If-Modified-Since) if the request is
// not for a subrange, a single stored response is being validated, and that response contains a
// Last-Modified value"; "In most cases, both validators are generated".
TEST(Rfc9111, Sec4_3_1_SendsLastModified) {
  EXPECT_EQ(ValidationHeaders(Response({{"Last-Modified", "Sunday, 06-Nov-94 08:49:37 GMT"}})),
            (HeaderPairs{{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}}));
  EXPECT_EQ(ValidationHeaders(
                Response({{"ETag", "\"a\""}, {"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"}})),
            (HeaderPairs{{"If-None-Match", "\"a\""},
                         {"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}}));
}

// §4.3.1: validators are what the stored response provided: without ETag or Last-Modified there
// are none (a Date is not one), and an ETag that is not an entity-tag (RFC 9110 §8.8.3) is not
// sent back to the origin.
TEST(Rfc9111, Sec4_3_1_NoValidatorNoPrecondition) {
  EXPECT_TRUE(ValidationHeaders(Response({{"Date", FormatHttpDate(kT0)}})).empty());
  for (const char* bad : {"v1", "\"v1", "W/v1", "\"a\" junk", "\"a\", \"b\"", "w/\"a\""})
    EXPECT_TRUE(ValidationHeaders(Response({{"ETag", bad}})).empty()) << bad;
}

// ---- RFC 9110 §13 Conditional Requests (evaluated by the cache: RFC 9111 §4.3.2) ----

// RFC 9110 §13.1.2: "A recipient MUST use the weak comparison function when comparing entity tags
// for If-None-Match".
TEST(Rfc9110, Sec13_1_2_IfNoneMatchUsesWeakComparison) {
  const ResponseInfo weak = Response({{"ETag", "W/\"1\""}});
  const ResponseInfo strong = Response({{"ETag", "\"1\""}});
  EXPECT_TRUE(Conditional({{"If-None-Match", "\"1\""}}, weak));
  EXPECT_TRUE(Conditional({{"If-None-Match", "W/\"1\""}}, weak));
  EXPECT_TRUE(Conditional({{"If-None-Match", "W/\"1\""}}, strong));
  EXPECT_FALSE(Conditional({{"If-None-Match", "W/\"2\""}}, weak));
  EXPECT_FALSE(Conditional({{"If-None-Match", "\"1 \""}}, strong));
}

// RFC 9110 §13.1.2: "If the field value is a list of entity tags, the condition is false if one
// of the listed tags matches the entity tag of the selected representation."
TEST(Rfc9110, Sec13_1_2_IfNoneMatchList) {
  const ResponseInfo stored = Response({{"ETag", "\"r2d2\""}});
  EXPECT_TRUE(Conditional({{"If-None-Match", "\"xyzzy\", W/\"r2d2\" ,\"c3po\""}}, stored));
  EXPECT_TRUE(Conditional({{"If-None-Match", "\"xyzzy\""}, {"If-None-Match", "\"r2d2\""}}, stored));
  EXPECT_TRUE(Conditional({{"If-None-Match", "junk, \"r2d2\""}}, stored));
  EXPECT_FALSE(Conditional({{"If-None-Match", "\"xyzzy\", \"c3po\""}}, stored));
  EXPECT_FALSE(Conditional({{"If-None-Match", "r2d2"}}, stored));
  EXPECT_FALSE(Conditional({{"If-None-Match", "\"r2d2"}}, stored));
}

// RFC 9110 §13.1.2: "If the field value is "*", the condition is false if the origin server has a
// current representation for the target resource."
TEST(Rfc9110, Sec13_1_2_IfNoneMatchStar) {
  EXPECT_TRUE(Conditional({{"If-None-Match", "*"}}, Response({{"ETag", "\"a\""}})));
  EXPECT_TRUE(Conditional({{"If-None-Match", " * "}}, Response({})));
}

// RFC 9110 §13.1.3: "A recipient MUST ignore If-Modified-Since if the request contains an
// If-None-Match header field".
TEST(Rfc9110, Sec13_1_3_IfNoneMatchTakesPrecedenceOverIfModifiedSince) {
  const ResponseInfo stored =
      Response({{"ETag", "\"a\""}, {"Last-Modified", FormatHttpDate(k1994)}});
  EXPECT_FALSE(Conditional(
      {{"If-None-Match", "\"b\""}, {"If-Modified-Since", FormatHttpDate(k1994 + 10)}}, stored));
  EXPECT_TRUE(Conditional(
      {{"If-None-Match", "\"a\""}, {"If-Modified-Since", FormatHttpDate(k1994 - 10)}}, stored));
  EXPECT_FALSE(Conditional(
      {{"If-None-Match", "garbage"}, {"If-Modified-Since", FormatHttpDate(k1994)}}, stored));
}

// RFC 9110 §13.1.3: "If the selected representation's last modification date is earlier or equal
// to the date provided in the field value, the condition is false" (answer 304).
TEST(Rfc9110, Sec13_1_3_IfModifiedSince) {
  const ResponseInfo stored = Response({{"Last-Modified", FormatHttpDate(k1994)}});
  EXPECT_TRUE(Conditional({{"If-Modified-Since", FormatHttpDate(k1994)}}, stored));
  EXPECT_TRUE(Conditional({{"If-Modified-Since", FormatHttpDate(k1994 + 3600)}}, stored));
  EXPECT_TRUE(Conditional({{"If-Modified-Since", "Sun Nov  6 08:49:37 1994"}}, stored));
  EXPECT_FALSE(Conditional({{"If-Modified-Since", FormatHttpDate(k1994 - 1)}}, stored));
}

// RFC 9110 §13.1.3: "A recipient MUST ignore the If-Modified-Since header field if the received
// field value is not a valid HTTP-date, the field value has more than one member".
TEST(Rfc9110, Sec13_1_3_InvalidIfModifiedSinceIsIgnored) {
  const ResponseInfo stored = Response({{"Last-Modified", FormatHttpDate(k1994)}});
  for (const char* v : {"garbage", "0", "", "Sun, 06 Nov 1994 08:49:37 PST", "784111777"})
    EXPECT_FALSE(Conditional({{"If-Modified-Since", v}}, stored)) << v;
  EXPECT_FALSE(Conditional({{"If-Modified-Since", FormatHttpDate(k1994 + 5)},
                            {"If-Modified-Since", FormatHttpDate(k1994 + 9)}},
                           stored));
}

// RFC 9110 §13.1.3: "A date which is later than the server's current time is invalid."
TEST(Rfc9110, Sec13_1_3_FutureIfModifiedSinceIsInvalid) {
  const ResponseInfo stored = Response({{"Last-Modified", FormatHttpDate(kT0 - 100)}});
  EXPECT_TRUE(Conditional({{"If-Modified-Since", FormatHttpDate(kT0)}}, stored, kT0));
  EXPECT_FALSE(Conditional({{"If-Modified-Since", FormatHttpDate(kT0 + 1)}}, stored, kT0));
}

// RFC 9111 §4.3.2: "If a request contains an If-Modified-Since header field and the Last-Modified
// header field is not present in a stored response, a cache SHOULD use the stored response's Date
// field value".
TEST(Rfc9111, Sec4_3_2_IfModifiedSinceUsesDateWithoutLastModified) {
  const ResponseInfo stored = Response({{"Date", FormatHttpDate(kT0)}});
  EXPECT_TRUE(Conditional({{"If-Modified-Since", FormatHttpDate(kT0)}}, stored));
  EXPECT_FALSE(Conditional({{"If-Modified-Since", FormatHttpDate(kT0 - 1)}}, stored));
  EXPECT_FALSE(Conditional({{"If-Modified-Since", FormatHttpDate(kT0)}}, Response({})));
}

// RFC 9110 §13.2.1: "A server MUST ignore all received preconditions if its response to the same
// request without those conditions ... would have been a status code other than a 2xx".
TEST(Rfc9110, Sec13_2_1_OnlySuccessfulResponsesAnswer304) {
  const Fields f = {{"ETag", "\"a\""}, {"Last-Modified", FormatHttpDate(k1994)}};
  for (int status : {301, 404, 410, 501}) {
    EXPECT_FALSE(Conditional({{"If-None-Match", "\"a\""}}, Response(status, f))) << status;
    EXPECT_FALSE(Conditional({{"If-None-Match", "*"}}, Response(status, f))) << status;
    EXPECT_FALSE(Conditional({{"If-Modified-Since", FormatHttpDate(k1994)}}, Response(status, f)));
  }
  EXPECT_TRUE(Conditional({{"If-None-Match", "\"a\""}}, Response(204, f)));
}

// RFC 9110 §13.1.5: "If the entity-tag validator provided exactly matches the ETag field value for
// the selected representation using the strong comparison function, the condition is true."
TEST(Rfc9110, Sec13_1_5_IfRangeEntityTagUsesStrongComparison) {
  const ResponseInfo strong = Response({{"ETag", "\"a\""}});
  EXPECT_TRUE(IfRangeHolds("\"a\"", strong));
  EXPECT_FALSE(IfRangeHolds("\"b\"", strong));
  EXPECT_FALSE(IfRangeHolds("W/\"a\"", strong));
  EXPECT_FALSE(IfRangeHolds("\"a\"", Response({{"ETag", "W/\"a\""}})));
  EXPECT_FALSE(IfRangeHolds("\"a\"", Response({})));
}

// RFC 9110 §13.1.5: "If the HTTP-date validator provided is not a strong validator ..., the
// condition is false. If the HTTP-date validator provided exactly matches the Last-Modified field
// value ..., the condition is true." (§8.8.2.2: strong when the Date is at least one second after
// Last-Modified.)
TEST(Rfc9110, Sec13_1_5_IfRangeDateMustMatchExactlyAndBeStrong) {
  const ResponseInfo stored =
      Response({{"Last-Modified", FormatHttpDate(k1994)}, {"Date", FormatHttpDate(k1994 + 60)}});
  EXPECT_TRUE(IfRangeHolds(FormatHttpDate(k1994), stored));
  EXPECT_FALSE(IfRangeHolds(FormatHttpDate(k1994 + 1), stored));  // exact, not "later or equal"
  EXPECT_FALSE(IfRangeHolds(FormatHttpDate(k1994 - 1), stored));
  const ResponseInfo weak =
      Response({{"Last-Modified", FormatHttpDate(k1994)}, {"Date", FormatHttpDate(k1994)}});
  EXPECT_FALSE(IfRangeHolds(FormatHttpDate(k1994), weak));
  EXPECT_FALSE(
      IfRangeHolds(FormatHttpDate(k1994), Response({{"Last-Modified", FormatHttpDate(k1994)}})));
  EXPECT_FALSE(IfRangeHolds("garbage", stored));
  EXPECT_FALSE(IfRangeHolds("", stored));
}

// ---- RFC 9110 §5.6.7 Date/Time Formats ----

// §5.6.7: "A recipient that parses a timestamp value in an HTTP field MUST accept all three
// HTTP-date formats."
TEST(Rfc9110, Sec5_6_7_AcceptsImfFixdate) {
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), k1994);
  EXPECT_EQ(ParseHttpDate("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
  EXPECT_EQ(ParseHttpDate("Tue, 14 Nov 2023 22:13:20 GMT"), kT0);
  EXPECT_EQ(ParseHttpDate("Thu, 29 Feb 2024 12:00:00 GMT"), 1709208000);
  EXPECT_EQ(ParseHttpDate("Wed, 31 Dec 1969 23:59:59 GMT"), -1);
}

// §5.6.7: "Sunday, 06-Nov-94 08:49:37 GMT ; obsolete RFC 850 format".
TEST(Rfc9110, Sec5_6_7_AcceptsRfc850) {
  EXPECT_EQ(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), k1994);
  EXPECT_EQ(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT", kT0), k1994);
}

// §5.6.7: "Sun Nov  6 08:49:37 1994 ; ANSI C's asctime() format".
TEST(Rfc9110, Sec5_6_7_AcceptsAsctime) {
  EXPECT_EQ(ParseHttpDate("Sun Nov  6 08:49:37 1994"), k1994);
  EXPECT_EQ(ParseHttpDate("Sun Nov 06 08:49:37 1994"), k1994);
  EXPECT_EQ(ParseHttpDate("Wed Dec 31 23:59:59 1969"), -1);
}

// §5.6.7: "Recipients of a timestamp value in rfc850-date format, which uses a two-digit year,
// MUST interpret a timestamp that appears to be more than 50 years in the future as representing
// the most recent year in the past that had the same last two digits."
TEST(Rfc9110, Sec5_6_7_Rfc850TwoDigitYearWithin50Years) {
  // now is 2023: "73" cannot be 2073 (50 years ahead is allowed), "74" is 1974.
  EXPECT_EQ(ParseHttpDate("Saturday, 01-Jan-73 00:00:00 GMT", kT0),
            ParseHttpDate("Sun, 01 Jan 2073 00:00:00 GMT"));
  EXPECT_EQ(ParseHttpDate("Tuesday, 01-Jan-74 00:00:00 GMT", kT0),
            ParseHttpDate("Tue, 01 Jan 1974 00:00:00 GMT"));
  EXPECT_EQ(ParseHttpDate("Monday, 01-Jan-24 00:00:00 GMT", kT0),
            ParseHttpDate("Mon, 01 Jan 2024 00:00:00 GMT"));
  // In 2080, "99" is 2099, and "31" is 2031: 2131 would be more than 50 years ahead.
  const Seconds in_2080 = *ParseHttpDate("Mon, 01 Jan 2080 00:00:00 GMT");
  EXPECT_EQ(ParseHttpDate("Thursday, 01-Jan-99 00:00:00 GMT", in_2080),
            ParseHttpDate("Thu, 01 Jan 2099 00:00:00 GMT"));
  EXPECT_EQ(ParseHttpDate("Wednesday, 01-Jan-31 00:00:00 GMT", in_2080),
            ParseHttpDate("Wed, 01 Jan 2031 00:00:00 GMT"));
}

// §5.6.7's 50-year rule against any clock the caller passes (found by fuzz_http_cache: a clock
// near the end of int64 overflowed): the clock counts as a year within 0000-9999, and the year
// read is within 50 years of it ("24" in 9999 is 10024: 25 years ahead, 36525 days after 9924).
TEST(Rfc9110, Sec5_6_7_Rfc850YearAgainstAFarClock) {
  const auto late =
      ParseHttpDate("Monday, 01-Jan-24 00:00:00 GMT", std::numeric_limits<Seconds>::max());
  ASSERT_TRUE(late);
  EXPECT_EQ(*late - *ParseHttpDate("Mon, 01 Jan 9924 00:00:00 GMT"), Seconds{36525} * 86400);
  EXPECT_EQ(ParseHttpDate("Monday, 01-Jan-24 00:00:00 GMT", std::numeric_limits<Seconds>::min()),
            ParseHttpDate("Mon, 01 Jan 0024 00:00:00 GMT"));
}

// §5.6.7: "When a sender generates a field that contains one or more timestamps defined as
// HTTP-date, the sender MUST generate those timestamps in the IMF-fixdate format."
TEST(Rfc9110, Sec5_6_7_GeneratesImfFixdate) {
  EXPECT_EQ(FormatHttpDate(k1994), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(FormatHttpDate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(FormatHttpDate(kT0), "Tue, 14 Nov 2023 22:13:20 GMT");
  EXPECT_EQ(FormatHttpDate(1709208000), "Thu, 29 Feb 2024 12:00:00 GMT");
  EXPECT_EQ(FormatHttpDate(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
  EXPECT_EQ(FormatHttpDate(4102444800), "Fri, 01 Jan 2100 00:00:00 GMT");
  // Out of four digits' range: clamped, never longer.
  EXPECT_EQ(FormatHttpDate(std::numeric_limits<Seconds>::max()), "Fri, 31 Dec 9999 23:59:59 GMT");
  EXPECT_EQ(FormatHttpDate(std::numeric_limits<Seconds>::min()), "Sat, 01 Jan 0000 00:00:00 GMT");
  for (Seconds t = -100000; t < 5'000'000'000; t += 7777777)
    EXPECT_EQ(ParseHttpDate(FormatHttpDate(t)), t) << t;
}

// §5.6.7: "time-of-day ... 00:00:00 - 23:59:60 (leap second)".
TEST(Rfc9110, Sec5_6_7_LeapSecondIsAccepted) {
  EXPECT_EQ(ParseHttpDate("Sat, 31 Dec 2016 23:59:60 GMT"),
            ParseHttpDate("Sun, 01 Jan 2017 00:00:00 GMT"));
}

// §5.6.7: the grammar; anything else is not an HTTP-date (and then, per the field, ignored or
// "already expired").
TEST(Rfc9110, Sec5_6_7_RejectsWhatIsNotADate) {
  for (const char* v : {"",
                        "0",
                        "-1",
                        "784111777",
                        "Sun, 06 Nov 1994 08:49:37",
                        "Sun, 06 Nov 1994 08:49 GMT",
                        "Sun, 31 Feb 1994 08:49:37 GMT",
                        "Sun, 29 Feb 2100 08:49:37 GMT",
                        "Sun, 06 Nov 1994 24:00:00 GMT",
                        "Sun, 06 Nov 1994 08:60:37 GMT",
                        "Sun, 06 Nov 1994 08:49:61 GMT",
                        "Sun, 00 Nov 1994 08:49:37 GMT",
                        "Sun, 06 Foo 1994 08:49:37 GMT",
                        "Xyz, 06 Nov 1994 08:49:37 GMT",
                        "Sun, 06 Nov 94x 08:49:37 GMT",
                        "Sun, 06 Nov 199 08:49:37 GMT",
                        "Sun, 06 Nov 19944 08:49:37 GMT",
                        "Sun, 06 Nov 1994 08:49:37 GMT x",
                        "Sun, 06-Nov 1994 08:49:37 GMT",
                        "Sun Nov  6 08:49:37 94",
                        "Sun Nov  6 08:49:37 1994 GMT",
                        "Sun, 06 Nov 1994 8:49:37 GMT",
                        "Sun, 123 Nov 1994 08:49:37 GMT",
                        "Sun,06 Nov 1994 08:49:37 GMT",
                        "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT"})
    EXPECT_FALSE(ParseHttpDate(v)) << v;
  EXPECT_FALSE(ParseHttpDate(std::string(100000, ' ') + "x"));
  EXPECT_FALSE(ParseHttpDate(std::string("Sun, 06 Nov 1994 08:49:37 GMT\0", 30)));
}

// RFC 9111 §4.2: "Although all date formats are specified to be case-sensitive, a cache recipient
// SHOULD match the field value case-insensitively."
TEST(Rfc9111, Sec4_2_DatesMatchCaseInsensitively) {
  EXPECT_EQ(ParseHttpDate("sun, 06 nov 1994 08:49:37 gmt"), k1994);
  EXPECT_EQ(ParseHttpDate("SUNDAY, 06-NOV-94 08:49:37 GMT"), k1994);
  EXPECT_EQ(ParseHttpDate("SUN NOV  6 08:49:37 1994"), k1994);
}

// RFC 9111 §4.2: "A cache recipient SHOULD consider a date with a zone abbreviation other than
// "GMT" to be invalid for calculating expiration."
TEST(Rfc9111, Sec4_2_OnlyGmtIsAZone) {
  for (const char* zone : {"UTC", "UT", "EST", "+0000", "Z", "CET"})
    EXPECT_FALSE(ParseHttpDate(std::string("Sun, 06 Nov 1994 08:49:37 ") + zone)) << zone;
}

// RFC 9111 §4.2: "A cache recipient MUST NOT allow local time zones to influence the calculation
// or comparison of an age or expiration time."
TEST(Rfc9111, Sec4_2_LocalTimeZoneHasNoInfluence) {
  const char* old = std::getenv("TZ");
  const std::string saved = old ? old : "";
  setenv("TZ", "America/New_York", 1);
  tzset();
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), k1994);
  EXPECT_EQ(FormatHttpDate(k1994), "Sun, 06 Nov 1994 08:49:37 GMT");
  if (old)
    setenv("TZ", saved.c_str(), 1);
  else
    unsetenv("TZ");
  tzset();
}

// RFC 9110 §5.6.7: "Recipients of timestamp values are encouraged to be robust in parsing
// timestamps": surrounding whitespace, doubled spaces and a one-digit day are read.
TEST(Rfc9110, Sec5_6_7_RobustToHarmlessVariants) {
  EXPECT_EQ(ParseHttpDate("  Sun, 06 Nov 1994 08:49:37 GMT\t"), k1994);
  EXPECT_EQ(ParseHttpDate("Sun,  6 Nov 1994  08:49:37 GMT"), k1994);
  EXPECT_EQ(ParseHttpDate("Sun, 06-Nov-1994 08:49:37 GMT"), k1994);
}

// ---- RFC 9110 §14 Range Requests ----

constexpr uint64_t kLen = 10000;

ByteRange Range(uint64_t first, uint64_t last) { return {ByteRange::kRange, first, last}; }
const ByteRange kIgnore{ByteRange::kIgnore, 0, 0};
const ByteRange kUnsatisfiable{ByteRange::kUnsatisfiable, 0, 0};

// §14.1.2: "bytes=0-499" is "The first 500 bytes (byte offsets 0-499, inclusive)".
TEST(Rfc9110, Sec14_1_2_IntRange) {
  EXPECT_EQ(ParseRange("bytes=0-499", kLen), Range(0, 499));
  EXPECT_EQ(ParseRange("bytes=500-999", kLen), Range(500, 999));
  EXPECT_EQ(ParseRange("bytes=9999-9999", kLen), Range(9999, 9999));
}

// §14.1.2: "If the last-pos value is absent, or if the value is greater than or equal to the
// current length of the representation data, the byte range is interpreted as the remainder".
TEST(Rfc9110, Sec14_1_2_OpenOrLongRangeIsTheRemainder) {
  EXPECT_EQ(ParseRange("bytes=9500-", kLen), Range(9500, 9999));
  EXPECT_EQ(ParseRange("bytes=500-10000", kLen), Range(500, 9999));
  EXPECT_EQ(ParseRange("bytes=0-", kLen), Range(0, 9999));
}

// §14.1.2: "A client can refer to the last N bytes (N > 0) ... If the selected representation is
// shorter than the specified suffix-length, the entire representation is used."
TEST(Rfc9110, Sec14_1_2_SuffixRange) {
  EXPECT_EQ(ParseRange("bytes=-500", kLen), Range(9500, 9999));
  EXPECT_EQ(ParseRange("bytes=-10000", kLen), Range(0, 9999));
  EXPECT_EQ(ParseRange("bytes=-20000", kLen), Range(0, 9999));
  EXPECT_EQ(ParseRange("bytes=-1", 1), Range(0, 0));
}

// §14.1.2: satisfiable is "an int-range with a first-pos that is less than the current length ...
// or a suffix-range with a non-zero suffix-length"; §14.2: otherwise "the server SHOULD send a
// 416".
TEST(Rfc9110, Sec14_2_UnsatisfiableRange) {
  EXPECT_EQ(ParseRange("bytes=10000-", kLen), kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=10000-20000", kLen), kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=-0", kLen), kUnsatisfiable);
}

// §14.1.1: "An int-range is invalid if the last-pos value is present and less than the
// first-pos"; §14.2: a server "MAY ignore or reject a Range header field that contains an invalid
// ranges-specifier".
TEST(Rfc9110, Sec14_1_1_InvalidRangeIsIgnored) {
  for (const char* v : {"bytes=500-100", "bytes=abc", "bytes=1-2-3", "bytes=", "bytes",
                        "bytes = 0-1", "bytes=0x1-2", "bytes=+1-2", "bytes=1 -2", "bytes=-",
                        "bytes=--1", "bytes=1.5-2", "=0-1", "", "bytes=0-1;x", "bytes=\"0-1\""})
    EXPECT_EQ(ParseRange(v, kLen), kIgnore) << v;
}

// §14.2: "An origin server MUST ignore a Range header field that contains a range unit it does not
// understand. A proxy MAY discard" one; §14.1: "All range unit names are case-insensitive".
TEST(Rfc9110, Sec14_1_UnitIsBytesCaseInsensitively) {
  EXPECT_EQ(ParseRange("items=0-1", kLen), kIgnore);
  EXPECT_EQ(ParseRange("none=0-1", kLen), kIgnore);
  EXPECT_EQ(ParseRange("Bytes=0-1", kLen), Range(0, 1));
  EXPECT_EQ(ParseRange("BYTES=0-1", kLen), Range(0, 1));
}

// §14.2: a server "MAY ignore the Range header field"; this edge serves one range and ignores a
// set of several (multipart/byteranges, a known amplification: §17.15).
TEST(Rfc9110, Sec14_2_SeveralRangesAreIgnored) {
  EXPECT_EQ(ParseRange("bytes=0-0,-1", kLen), kIgnore);
  EXPECT_EQ(ParseRange("bytes= 0-999, 4500-5499, -1000", kLen), kIgnore);
  EXPECT_EQ(ParseRange("bytes=0-1,0-1", kLen), kIgnore);
}

// RFC 9110 §5.6.1.2: empty list elements "do not contribute to the count of elements present".
TEST(Rfc9110, Sec14_1_1_EmptyListElementsAreNotRanges) {
  EXPECT_EQ(ParseRange("bytes=0-1,", kLen), Range(0, 1));
  EXPECT_EQ(ParseRange("bytes=, ,0-1 , ", kLen), Range(0, 1));
  EXPECT_EQ(ParseRange("bytes=,", kLen), kIgnore);
}

// §14.1.2: "recipients MUST anticipate potentially large decimal numerals and prevent parsing
// errors due to integer conversion overflows".
TEST(Rfc9110, Sec14_1_2_HugeNumbersDoNotOverflow) {
  const std::string huge(400, '9');
  EXPECT_EQ(ParseRange("bytes=0-" + huge, kLen), Range(0, 9999));
  EXPECT_EQ(ParseRange("bytes=" + huge + "-", kLen), kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=-" + huge, kLen), Range(0, 9999));
  EXPECT_EQ(ParseRange("bytes=18446744073709551615-18446744073709551616", kLen), kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=18446744073709551616-1", kLen), kIgnore);  // last < first
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(ParseRange("bytes=0-" + huge, max), Range(0, max - 1));
  EXPECT_EQ(ParseRange("bytes=-" + huge, max), Range(0, max - 1));
  EXPECT_EQ(ParseRange("bytes=-1", max), Range(max - 1, max - 1));
}

// §14.2: "A server that supports range requests MAY ignore a Range header field when the selected
// representation has no content".
TEST(Rfc9110, Sec14_2_EmptyBodyIgnoresRange) {
  EXPECT_EQ(ParseRange("bytes=0-", 0), kIgnore);
  EXPECT_EQ(ParseRange("bytes=-5", 0), kIgnore);
}

}  // namespace
}  // namespace millions::edge
