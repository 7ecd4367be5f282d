// The runner's dashboard: one page, served on the admin listener, that polls /api/status and
// /api/metrics, draws the running architecture and, with Prometheus, graphs over time
// (/api/graphs). No library: its SVG is drawn by the page's own script. Thread-safety: immutable.
// Ownership: static storage.
#pragma once

#include <string_view>

namespace millions::ctl {

std::string_view DashboardHtml();

}  // namespace millions::ctl
