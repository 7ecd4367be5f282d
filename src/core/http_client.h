// A small HTTP/1.1 client for control paths: readiness checks, the CLI talking to the runner's
// admin API, tests. One request per connection, bounded by a timeout. Not for hot paths (the
// load balancer and load generator keep pooled connections of their own).
// Thread-safety: Fetch may be called from any thread; it blocks. Ownership: values only.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "core/http.h"
#include "core/result.h"

namespace millions::http {

struct FetchRequest {
  std::string method = "GET";
  std::string host = "127.0.0.1";
  int port = 80;
  std::string target = "/";
  std::string body;
  std::string content_type;   // set with a body
  std::string authorization;  // the Authorization header's value, when set
  // More request headers; their values are never logged here.
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds timeout{5000};
};

// 503 "unreachable" when the connection fails or times out; any HTTP status is a success.
Result<Response> Fetch(const FetchRequest& req);

}  // namespace millions::http
