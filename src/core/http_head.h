// A strict, allocation-free reader of the common HTTP/1.1 header block: the request line (or
// status line) and plain "Name: value" fields, as string_views into the caller's bytes.
// It accepts a strict subset of RFC 9112 and says kFallback for anything outside it (a body
// framed by Content-Length or Transfer-Encoding, Expect, obs-text, bare LF, odd spacing, more
// fields than fit): the caller then hands the same bytes to Beast's full parser, which accepts
// or refuses them. So the fast path never accepts what the full parser would refuse, and the
// hot path (a GET, a small response with Content-Length) costs no allocation and no Beast
// field-table lookup (docs/performance.md).
// Thread-safety: pure functions. Ownership: the views borrow the block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace millions::http {

struct HeadField {
  std::string_view name;
  std::string_view value;  // without leading and trailing spaces
};

inline constexpr size_t kFastHeadFields = 48;

struct RequestHeadView {
  std::string_view method;
  std::string_view target;
  int version = 11;  // 10 or 11
  size_t count = 0;
  HeadField fields[kFastHeadFields];
};

struct ResponseHeadView {
  int status = 0;
  int version = 11;
  size_t count = 0;
  // Content-Length when the response has one (it must for the fast path, unless its status
  // carries no body: 1xx, 204, 304).
  bool has_length = false;
  uint64_t content_length = 0;
  bool close = false;       // Connection: close (or HTTP/1.0 without keep-alive)
  bool request_id = false;  // an X-Request-Id field is among `fields`
  HeadField fields[kFastHeadFields];
};

enum class FastHead { kOk, kFallback };

// `block` is a whole header block, ending in CRLF CRLF (HeaderEnd's result). kOk only for a
// request without Content-Length, Transfer-Encoding or Expect fields.
FastHead ParseRequestHead(std::string_view block, RequestHeadView& out);

// `block` as above, from a backend. kOk only for a final response (status 200-599) framed by
// one Content-Length, or without body by its status (204, 304), with no Transfer-Encoding.
FastHead ParseResponseHead(std::string_view block, ResponseHeadView& out);

}  // namespace millions::http
