// Limits on every HTTP input and the parsing step that enforces them.
// ParseRequest is the one path from raw bytes to a Request: the server's reader and the fuzz
// target both go through the same conversion and checks.
// Thread-safety: pure functions. Ownership: results own their data.
#pragma once

#include <chrono>
#include <cstddef>
#include <string_view>

#include "core/http.h"
#include "core/result.h"

namespace millions::http {

struct Limits {
  size_t max_header_bytes = 16 * 1024;
  size_t max_headers = 100;
  size_t max_body_bytes = 20 * 1024 * 1024;
  size_t max_target_bytes = 8 * 1024;
  std::chrono::milliseconds header_timeout{10'000};   // first byte to end of headers
  std::chrono::milliseconds request_timeout{30'000};  // end of headers to end of body
  std::chrono::milliseconds idle_timeout{60'000};     // keep-alive wait for the next request
  std::chrono::milliseconds drain_timeout{10'000};    // SIGTERM: in-flight requests get this long
  // SIGTERM: how long a node keeps serving with /readyz at 503 before it drains, so that load
  // balancers stop sending to it first (a "withdraw" period; 0 for a node without balancer).
  std::chrono::milliseconds withdraw{0};
  size_t max_connections = 10'000;
  // SO_SNDBUF of each accepted connection; 0 leaves the kernel's autotuning, which lets one
  // connection queue megabytes. Against slow readers (a client that reads a byte a second, by
  // the thousand) a bound keeps the kernel's TCP memory below its pressure mark, where every
  // connection of the machine stalls, legitimate ones too (bench/slow_clients.sh). The kernel
  // doubles the value; what does not fit waits in our buffer, one response per connection.
  size_t send_buffer_bytes = 0;
};

// Parses exactly one request from `bytes`. Errors carry the status the server answers with:
// 400 malformed, 413 body too large, 431 headers too large or too many.
Result<Request> ParseRequest(std::string_view bytes, const Limits& limits);

}  // namespace millions::http

namespace millions::config {
class Section;
}
namespace millions::http {
// Reads an [http] table of a topology into `out` (absent keys keep their defaults).
void ReadLimits(config::Section section, Limits* out);
}  // namespace millions::http
