// libFuzzer target: raw bytes as one line of a node's log file, as `millions logs` reads it, and
// as a --since value. Beyond "no crash": a parsed record's time is empty or in the one sortable
// form the merge compares (YYYY-MM-DDTHH:MM:SS.mmmZ); a time that parses formats and parses back
// to the same instant; filters and the readable form take any record.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ctl/logs.h"

using namespace millions::ctl::logs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Source src{"", "node1", "patroni"};
  if (auto r = Parse(in, src, "2026-12-03T08:00:00.000Z")) {
    if (!r->ts.empty() && (r->ts.size() != 24 || r->ts[10] != 'T' || r->ts.back() != 'Z')) {
      // A JSON line's own ts of 24 characters ending in Z is taken as written.
      if (!r->json) abort();
    }
    Filter f;
    f.engines = true;
    f.level = "warn";
    f.request_id = "x";
    (void)Matches(*r, f);
    (void)Readable(*r);
  }
  if (auto t = ParseTime(in)) {
    auto back = ParseTime(FormatTs(*t));
    if (!back || *back != *t) abort();
  }
  (void)ParseSince(in, 1'800'000'000'000);
  return 0;
}
