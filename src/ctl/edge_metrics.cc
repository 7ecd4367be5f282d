#include "ctl/edge_metrics.h"

namespace millions::ctl {

void EdgeTotals::Add(std::string_view line, double value) {
  auto has = [&](std::string_view s) { return line.find(s) != std::string_view::npos; };
  if (line.starts_with("millions_edge_requests_total{")) {
    if (has("result=\"hit\"")) hit += value;
    if (has("result=\"miss\"")) miss += value;
    if (has("result=\"stale\"")) stale += value;
    if (has("result=\"pass\"")) pass += value;
  } else if (line.starts_with("millions_edge_bytes_total{")) {
    if (has("source=\"cache\"")) bytes_cache += value;
    if (has("source=\"origin\"")) bytes_origin += value;
  }
}

boost::json::object EdgeTotals::Json() const {
  auto ratio = [](double part, double whole) -> boost::json::value {
    if (whole <= 0) return nullptr;
    return part / whole;
  };
  return {{"hit", hit},
          {"miss", miss},
          {"stale", stale},
          {"pass", pass},
          {"bytes_cache", bytes_cache},
          {"bytes_origin", bytes_origin},
          {"hit_ratio", ratio(hit, hit + miss + stale)},
          {"offload", ratio(bytes_cache, bytes_cache + bytes_origin)}};
}

}  // namespace millions::ctl
