// The dashboard's graphs over time: a fixed table of named queries (each a recording rule's
// series or a metric the runner exports), asked of Prometheus' query_range API by the runner on
// the page's behalf, so the page names a graph and a range and never sends PromQL. The same
// table is the panels of docs/grafana/millions.json (graphs_test checks they agree).
// Thread-safety: functions only; the table is immutable. Ownership: static storage and values.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace millions::ctl {

struct GraphQuery {
  std::string_view name;    // what the page asks for: /api/graphs/NAME
  std::string_view title;   // the graph's heading
  std::string_view unit;    // "req/s", "s", "ratio", "bytes", "cores", "jobs", "nodes"
  std::string_view expr;    // PromQL: recording rules' series (prometheus.cc) and our metrics
  std::string_view legend;  // the labels that tell its series apart, comma-separated
};

// Every graph, in the page's order.
const std::vector<GraphQuery>& GraphQueries();
const GraphQuery* FindGraph(std::string_view name);

// The ranges the page offers ("5m", "30m", "3h") in seconds; nothing for any other text.
std::optional<int> GraphRangeSeconds(std::string_view range);

// The query_range target for graph `name` over `range` ending at `end_s` (Unix seconds), with
// a step of about 150 points and never below the scrape interval; nothing when either is not in
// the tables (the runner answers 400 then).
std::optional<std::string> GraphTarget(std::string_view name, std::string_view range, int64_t end_s,
                                       int scrape_interval_ms);

// The page's view of Prometheus' query_range answer `body`: {"series":[{"label": "dc1 web",
// "points":[[t, v], ...]}]} (t in Unix seconds; NaN and infinite samples dropped), at most 50
// series; {"series":[],"error":..} when the answer is not Prometheus' matrix.
boost::json::object SummarizeRange(std::string_view body, const GraphQuery& q);

// Every series name (a recording rule's or a metric's) that PromQL text `expr` mentions: tokens
// holding "millions_" outside label matchers and strings.
std::vector<std::string> SeriesNames(std::string_view expr);

}  // namespace millions::ctl
