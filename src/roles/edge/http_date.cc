// HTTP-date (RFC 9110 §5.6.7) in its three forms, read with our own calendar arithmetic: no
// locale, no local time zone (RFC 9111 §4.2: "MUST NOT allow local time zones to influence"),
// no libc time functions whose range or thread-safety varies.
#include <cstdio>

#include "roles/edge/http_cache.h"
#include "roles/edge/http_cache_internal.h"

namespace millions::edge {
namespace {

using internal::IEquals;
using internal::IsAlpha;
using internal::IsDigit;

constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr const char* kLongDays[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                     "Thursday", "Friday", "Saturday"};
constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
// Longer than any form with generous whitespace: a bound on the work a hostile value causes.
constexpr size_t kMaxDateLength = 64;
constexpr Seconds kDay = 86400;

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct Civil {
  int64_t y;
  int m, d;
};
Civil CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return {yoe + era * 400 + (m <= 2), m, d};
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// 0000-01-01T00:00:00 to 9999-12-31T23:59:59: what IMF-fixdate's four digits hold.
Seconds ClampToFourDigitYears(Seconds t) {
  return internal::Clamp(t, DaysFromCivil(0, 1, 1) * kDay, DaysFromCivil(10000, 1, 1) * kDay - 1);
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
int DaysInMonth(int64_t y, int m) {
  static constexpr int kLen[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kLen[m - 1];
}

// A cursor over the value; every read checks the bound.
struct Reader {
  std::string_view s;
  size_t i = 0;

  bool Eat(char c) {
    if (i < s.size() && s[i] == c) return ++i, true;
    return false;
  }
  // One or more spaces (robust to the doubled spaces senders produce).
  bool Spaces() {
    const size_t start = i;
    while (i < s.size() && s[i] == ' ') ++i;
    return i > start;
  }
  std::string_view Word() {
    const size_t start = i;
    while (i < s.size() && IsAlpha(s[i])) ++i;
    return s.substr(start, i - start);
  }
  // Between `min` and `max` digits; returns their count (0: none, or too many).
  int Digits(int min, int max, int* out) {
    int n = 0, v = 0;
    while (i < s.size() && IsDigit(s[i]) && n <= max) v = v * 10 + (s[i++] - '0'), ++n;
    if (n < min || n > max) return 0;
    *out = v;
    return n;
  }
  // hour ":" minute ":" second, two digits each.
  bool Time(int* h, int* m, int* sec) {
    return Digits(2, 2, h) && Eat(':') && Digits(2, 2, m) && Eat(':') && Digits(2, 2, sec);
  }
  bool Done() const { return i == s.size(); }
};

int Month(std::string_view w) {
  for (int m = 0; m < 12; ++m)
    if (IEquals(w, kMonths[m])) return m + 1;
  return 0;
}
bool DayName(std::string_view w) {
  for (int d = 0; d < 7; ++d)
    if (IEquals(w, kDays[d]) || IEquals(w, kLongDays[d])) return true;
  return false;
}

// A two-digit year (RFC 850): the year with those last two digits that is at most 50 years
// after `now`'s (§5.6.7 "MUST interpret a timestamp that appears to be more than 50 years in
// the future as representing the most recent year in the past that had the same last two
// digits") and not 50 or more before it.
int64_t FullYear(int yy, std::optional<Seconds> now) {
  if (!now) return yy < 70 ? 2000 + yy : 1900 + yy;
  // A clock far outside years 0000-9999 (the caller's, not the origin's) must not carry the
  // year, and then the seconds, past int64 (found by fuzz_http_cache).
  const int64_t this_year = CivilFromDays(FloorDiv(ClampToFourDigitYears(*now), kDay)).y;
  int64_t y = this_year - ((this_year % 100) + 100) % 100 + yy;
  if (y > this_year + 50) y -= 100;
  if (y <= this_year - 50) y += 100;
  return y;
}

}  // namespace

std::optional<Seconds> ParseHttpDate(std::string_view value, std::optional<Seconds> now) {
  value = internal::TrimOws(value);
  if (value.size() > kMaxDateLength) return std::nullopt;
  Reader r{value};
  if (!DayName(r.Word())) return std::nullopt;
  int day = 0, month = 0, hour = 0, minute = 0, second = 0, year_digits = 0, year = 0;
  if (r.Eat(',')) {
    // IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT" or RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT";
    // either separator with either year length (RFC 1123 and cookie-style variants).
    if (!r.Spaces() || !r.Digits(1, 2, &day)) return std::nullopt;
    const char sep = r.i < value.size() ? value[r.i] : '\0';
    if (sep != ' ' && sep != '-') return std::nullopt;
    ++r.i;
    month = Month(r.Word());
    if (!month || !r.Eat(sep)) return std::nullopt;
    year_digits = r.Digits(2, 4, &year);
    if (year_digits != 2 && year_digits != 4) return std::nullopt;
    if (!r.Spaces() || !r.Time(&hour, &minute, &second) || !r.Spaces()) return std::nullopt;
    if (!IEquals(r.Word(), "GMT")) return std::nullopt;
  } else {
    // asctime "Sun Nov  6 08:49:37 1994" (the day padded with a space or a zero).
    if (!r.Spaces()) return std::nullopt;
    month = Month(r.Word());
    if (!month || !r.Spaces() || !r.Digits(1, 2, &day) || !r.Spaces()) return std::nullopt;
    if (!r.Time(&hour, &minute, &second) || !r.Spaces()) return std::nullopt;
    year_digits = r.Digits(4, 4, &year);
    if (year_digits != 4) return std::nullopt;
  }
  if (!r.Done()) return std::nullopt;
  const int64_t full_year = year_digits == 2 ? FullYear(year, now) : year;
  // 23:59:60 is a leap second (§5.6.7); it reads as the next second, as POSIX time does.
  if (day < 1 || day > DaysInMonth(full_year, month) || hour > 23 || minute > 59 || second > 60)
    return std::nullopt;
  return DaysFromCivil(full_year, month, day) * kDay + hour * 3600 + minute * 60 + second;
}

std::string FormatHttpDate(Seconds t) {
  t = ClampToFourDigitYears(t);
  const int64_t days = FloorDiv(t, kDay);
  const int64_t secs = t - days * kDay;
  const Civil c = CivilFromDays(days);
  const int weekday = static_cast<int>(((days % 7) + 11) % 7);  // 1970-01-01 was a Thursday
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[weekday], c.d,
                kMonths[c.m - 1], static_cast<int>(c.y), static_cast<int>(secs / 3600),
                static_cast<int>(secs / 60 % 60), static_cast<int>(secs % 60));
  return buf;
}

}  // namespace millions::edge
