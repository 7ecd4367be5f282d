// Plain HTTP message types shared by the server, the client, the router and every handler.
// Beast stays out of this header on purpose: it is the heaviest include we have.
// Thread-safety: value types. Ownership: each message owns its strings.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace millions::http {

struct Header {
  std::string name;
  std::string value;
};

// Case-insensitive ASCII comparison for header names.
bool IEquals(std::string_view a, std::string_view b);

// A message body read in pieces, for bodies too large to hold whole: the balancer streams them
// between client and backend. Read sets `piece` to the next bytes, empty at the end of the
// body; an error ends the exchange (the connection is closed). One reader at a time.
class BodyStream {
 public:
  virtual ~BodyStream() = default;
  virtual boost::asio::awaitable<Status> Read(std::string& piece) = 0;
};

struct Request {
  std::string method;  // upper case as received
  std::string target;  // raw request-target
  std::string path;    // percent-decoded path, without query
  std::string query;   // raw query string, without '?'
  std::vector<Header> headers;
  std::string body;
  // Set instead of `body` when the server streams the body (ServerOptions::stream_bodies_over):
  // the handler reads it (to the end, or the connection closes after the response).
  // `body_length` is the Content-Length, or nullopt when the body is chunked.
  std::shared_ptr<BodyStream> body_stream;
  std::optional<uint64_t> body_length;
  std::string remote_addr;
  bool keep_alive = true;
  bool tls = false;  // arrived on a TLS listener
  // Set by the server: the client's X-Request-Id if well formed, else a fresh one, and the
  // trace id from a W3C traceparent header (or a fresh one).
  std::string request_id;
  std::string trace_id;
  // Filled by the router: the route template ("/api/users/{id}") and its parameters.
  std::string route;
  std::vector<std::pair<std::string, std::string>> params;

  std::optional<std::string_view> header(std::string_view name) const;
  std::string_view param(std::string_view name) const;
  // Value of one query parameter, percent-decoded, or nullopt.
  std::optional<std::string> query_param(std::string_view name) const;
  // Value of one cookie, or nullopt.
  std::optional<std::string> cookie(std::string_view name) const;
};

struct Response {
  int status = 200;
  // A Content-Type that is a static string (Json() sets it): written first, without a header
  // object per response. set("Content-Type", ...) replaces it; header() finds it.
  std::string_view content_type;
  std::vector<Header> headers;
  // More header lines, already formatted ("Name: value\r\n" each), written after `headers`:
  // a proxy's pass-through of a backend's headers. header() does not look in them.
  std::string raw_headers;
  std::string body;
  // Instead of `body`, for bytes that outlive the response (embedded assets): written without
  // a copy.
  std::string_view static_body;
  // Keeps the bytes static_body points into alive until the response is written (a cached
  // object the edge serves without copying it).
  std::shared_ptr<const void> body_owner;
  // Instead of both: a body the server writes as it is read, with Content-Length when
  // `body_length` is set, else chunked.
  std::shared_ptr<BodyStream> body_stream;
  std::optional<uint64_t> body_length;

  Response& set(std::string name, std::string value);
  std::optional<std::string_view> header(std::string_view name) const;
};

// The error body of the contract: {"error":{"code":..,"message":..}}.
Response JsonError(int status, std::string_view code, std::string_view message);
Response Json(int status, std::string body);

using Handler = std::function<boost::asio::awaitable<Response>(Request&)>;

// Percent-decodes `in`; nullopt when an escape is malformed or decodes to NUL.
std::optional<std::string> PercentDecode(std::string_view in, bool plus_is_space);

const char* ReasonPhrase(int status);

}  // namespace millions::http
