// The request a backend sees: the client's headers minus hop-by-hop ones and minus the
// forwarding headers only the balancer may write, plus X-Forwarded-For, X-Forwarded-Proto,
// Forwarded, X-Request-Id and (when absent) traceparent. Pure, so the fuzz target drives it.
// Thread-safety: pure function. Ownership: returns values.
#pragma once

#include <vector>

#include "core/http.h"

namespace millions::lb {

std::vector<http::Header> UpstreamHeaders(const http::Request& req);
bool HopByHop(std::string_view name);

}  // namespace millions::lb
