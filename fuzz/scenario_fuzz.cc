// libFuzzer target: raw bytes as a node's /metrics text and as `millions load --json`'s summary
// (what `millions scenario` reads from other processes), and as text in a scenario's plot and
// HTML page. Beyond "no crash": a parsed timeline has two numbers a second, and escaped text
// carries no markup of its own (no <, > or ", and every & starts an entity we wrote).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "ctl/scenario.h"
#include "ctl/scenario_env.h"

using namespace millions::ctl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  SumMetric(in, "millions_db_queries_total", {"kind=\"read\""});
  SumMetric(in, in.substr(0, in.find(' ')), {});
  if (auto r = ParseLoadJson(in))
    for (const auto& [ok, err] : r->timeline) (void)(ok + err);
  std::string esc = XmlEscape(in);
  if (esc.find_first_of("<>\"") != std::string::npos) abort();
  for (size_t p = esc.find('&'); p != std::string::npos; p = esc.find('&', p + 1))
    if (esc.compare(p, 5, "&amp;") != 0 && esc.compare(p, 4, "&lt;") != 0 &&
        esc.compare(p, 4, "&gt;") != 0 && esc.compare(p, 6, "&quot;") != 0)
      abort();
  Plot plot;
  plot.title = in;
  plot.categories = {in};
  plot.series = {{in, {static_cast<double>(size)}}};
  if (RenderSvg(plot).rfind("<svg ", 0) != 0) abort();
  return 0;
}
