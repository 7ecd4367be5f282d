// The runner's dashboard: one page, served on the admin listener, that polls /api/status and
// /api/metrics. Thread-safety: immutable. Ownership: static storage.
#pragma once

#include <string_view>

namespace millions::ctl {

std::string_view DashboardHtml();

}  // namespace millions::ctl
