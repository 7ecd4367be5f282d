// Private to core: turns a parsed Beast request into our Request, checking what Beast does not
// (header count, target form, path encoding), and fills request id and trace id.
// Thread-safety: pure functions. Ownership: takes the Beast message by value.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "core/http.h"
#include "core/http_head.h"
#include "core/http_limits.h"
#include "core/result.h"

namespace millions::http {

// `body` is the whole body, or empty when the server streams it (Request::body_stream).
Result<Request> ConvertRequest(const boost::beast::http::request_header<>& msg, std::string body,
                               const Limits& limits);
std::string NewRequestId();

// The checks and conversion of ConvertRequest, from a header block read by ParseRequestHead
// (http_head.h) or by Beast, into `req`, whose every field it assigns (body empty): a
// connection reuses one Request and its strings' storage from request to request.
Status FillRequest(std::string_view method, std::string_view target, int version,
                   const HeadField* fields, size_t count, const Limits& limits, Request& req);

// The status line and header block of `resp`, written by hand: Beast's serializer walked every
// buffer of a response several times and was the largest user-space cost of the balancer.
// Framing is the caller's: Content-Length when `content_length` is set, else chunked (for
// statuses that carry a body). Handlers' own framing headers are dropped.
std::string ResponseHead(const Response& resp, std::string_view request_id, bool keep_alive,
                         std::optional<uint64_t> content_length);
// The same, appended to `out` (a connection's buffer, reused from response to response), with
// `extra` (pre-formatted header lines) after the response's own.
void AppendResponseHead(std::string& out, const Response& resp, std::string_view request_id,
                        bool keep_alive, std::optional<uint64_t> content_length,
                        std::string_view extra = {});

// Where the header block ends in `data` (just past the blank line), or npos when it has not
// all arrived. A bare-LF blank line counts, so that the parser can reject it promptly.
size_t HeaderEnd(std::string_view data);

// RFC 9112 checks Beast's parser does not make, on the raw header block: obs-fold (a line that
// starts with SP or HTAB), NUL bytes, and a CR not followed by LF. Nothing ambiguous may reach
// a handler or a backend.
Status CheckRawHeader(std::string_view block);

}  // namespace millions::http
