// libFuzzer target: raw bytes as Prometheus' query_range answer (the runner turns it into the
// dashboard's points), as PromQL text (graphs_test reads series names from it), and as a graph
// name and range from the page. Beyond "no crash": every point is finite, at most 50 series; a
// query_range target exists only for a name and a range of the tables.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ctl/graphs.h"

using namespace millions::ctl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto o = SummarizeRange(in, GraphQueries().front());
  const auto& series = o.at("series").as_array();
  if (series.size() > 50) abort();
  for (const auto& s : series)
    for (const auto& p : s.at("points").as_array())
      if (!std::isfinite(p.at(0).as_double()) || !std::isfinite(p.at(1).as_double())) abort();
  for (const auto& name : SeriesNames(in))
    if (name.find("millions_") == std::string::npos) abort();
  size_t cut = in.find('?');
  std::string_view name = in.substr(0, cut), range = cut == in.npos ? "" : in.substr(cut + 1);
  if (GraphTarget(name, range, 1'800'000'000, 1000) &&
      (!FindGraph(name) || !GraphRangeSeconds(range)))
    abort();
  return 0;
}
