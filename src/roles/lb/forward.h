// The request a backend sees: the client's headers minus hop-by-hop ones and minus the
// forwarding headers only the balancer may write, plus X-Forwarded-For, X-Forwarded-Proto,
// Forwarded, X-Request-Id and (when absent) traceparent. Pure, so the fuzz target drives it.
// Thread-safety: pure function. Ownership: returns values.
#pragma once

#include <string>
#include <vector>

#include "core/http.h"

namespace millions::lb {

std::vector<http::Header> UpstreamHeaders(const http::Request& req);
// The request line and header block sent to a backend: UpstreamHeaders plus the framing
// (Content-Length, or chunked for a streamed body of unknown length), ready to write, with
// `default_host` as Host when the client (HTTP/1.0) sent none.
std::string UpstreamHead(const http::Request& req, std::string_view default_host);
bool HopByHop(std::string_view name);

}  // namespace millions::lb
