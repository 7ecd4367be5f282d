// What the scenarios read from other processes: a node's /metrics text and `millions load
// --json`'s summary. Pure and exception-free on any input (fuzz/scenario_fuzz.cc).
#include <boost/json.hpp>
#include <sstream>

#include "ctl/scenario_env.h"

namespace millions::ctl {
namespace json = boost::json;

double SumMetric(const std::string& text, const std::string& metric,
                 const std::vector<std::string>& must) {
  double sum = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (metric.empty() || line.empty() || line[0] == '#' || line.rfind(metric, 0) != 0) continue;
    size_t end = metric.size();
    if (end < line.size() && line[end] != '{' && line[end] != ' ') continue;  // a longer name
    size_t sp = line.rfind(' ');
    if (sp == std::string::npos || sp < end) continue;
    std::string labels = line.substr(end, sp - end);
    bool ok = true;
    for (const auto& m : must) ok = ok && labels.find(m) != std::string::npos;
    if (!ok) continue;
    try {
      sum += std::stod(line.substr(sp + 1));
    } catch (const std::exception&) {  // not a number: not a sample
    }
  }
  return sum;
}

std::optional<LoadResult> ParseLoadJson(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.get_object();
  auto num = [&](const char* k) {
    const json::value* x = o.if_contains(k);
    return x && x->is_number() ? x->to_number<double>() : 0.0;
  };
  LoadResult r;
  r.rps = num("rps");
  r.p50_ms = num("p50_ms");
  r.p99_ms = num("p99_ms");
  r.seconds = num("seconds");
  r.requests = num("requests");
  r.errors = num("errors");
  if (const json::value* t = o.if_contains("timeline")) {
    if (!t->is_array()) return std::nullopt;
    for (const auto& p : t->get_array()) {
      if (!p.is_array() || p.get_array().size() != 2 || !p.get_array()[0].is_number() ||
          !p.get_array()[1].is_number())
        return std::nullopt;
      r.timeline.emplace_back(p.get_array()[0].to_number<double>(),
                              p.get_array()[1].to_number<double>());
    }
  }
  return r;
}

}  // namespace millions::ctl
