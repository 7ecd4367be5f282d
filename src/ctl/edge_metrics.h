// The edge tier's line on the dashboard: millions_edge_requests_total and
// millions_edge_bytes_total summed over every edge's /metrics, and the two figures an operator
// reads from them: the hit ratio (hit / (hit + miss + stale): passes are requests the edge may
// not cache, so they do not count against it) and the origin offload (the share of body bytes
// sent from the cache rather than fetched from the origin). Pure: the runner feeds it the lines
// it scrapes (runner_status.cc). Thread-safety: a value. Ownership: none.
#pragma once

#include <boost/json.hpp>
#include <string_view>

namespace millions::ctl {

struct EdgeTotals {
  double hit = 0, miss = 0, stale = 0, pass = 0;
  double bytes_cache = 0, bytes_origin = 0;

  // One sample line of a Prometheus text scrape ("name{labels} value"), its value parsed;
  // lines of other metrics are ignored.
  void Add(std::string_view line, double value);

  // {"hit","miss","stale","pass","bytes_cache","bytes_origin","hit_ratio","offload"}: the
  // ratios in [0, 1], null before there is anything to divide.
  boost::json::object Json() const;
};

}  // namespace millions::ctl
