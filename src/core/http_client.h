// A small HTTP/1.1 client for control paths: readiness checks, the CLI talking to the runner's
// admin API, tests. One request per connection, bounded by a timeout. Not for hot paths (the
// load balancer and load generator keep pooled connections of their own).
// Thread-safety: Fetch may be called from any thread; it blocks. Ownership: values only.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/http.h"
#include "core/result.h"

namespace boost::asio::ssl {
class context;
}

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
  // Set: HTTPS with this client context (core/tls.h), the server's certificate checked against
  // its CA and required to name `host`; the timeout bounds the handshake too.
  std::shared_ptr<boost::asio::ssl::context> tls;
};

// 503 "unreachable" when the connection fails or times out (or, over TLS, the handshake fails:
// the message says why); any HTTP status is a success.
Result<Response> Fetch(const FetchRequest& req);

}  // namespace millions::http
