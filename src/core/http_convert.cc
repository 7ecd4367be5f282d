#include "core/http_convert.h"

#include <algorithm>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <cstring>
#include <vector>

#include "core/env.h"

namespace millions::http {
namespace bhttp = boost::beast::http;

namespace {

bool IsLowerHex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// W3C traceparent: 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>. Empty when malformed.
std::string_view TraceIdFrom(std::string_view tp) {
  if (tp.size() != 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-') return {};
  std::string_view id = tp.substr(3, 32);
  if (!IsLowerHex(tp.substr(0, 2)) || !IsLowerHex(id) || !IsLowerHex(tp.substr(36, 16)) ||
      !IsLowerHex(tp.substr(53, 2)) || id.find_first_not_of('0') == std::string_view::npos)
    return {};
  return id;
}

bool GoodRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
}

// Request and trace ids must be unique, not secret: a per-thread xoshiro256** seeded once from
// the system's generator, instead of a getrandom(2) call per id (two per proxied request).
uint64_t NextRandom() {
  struct State {
    uint64_t s[4];
    State() { Env::Default().RandomBytes(s, sizeof s); }
  };
  thread_local State st;
  uint64_t* s = st.s;
  auto rotl = [](uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

// Sets `out` to 2 * bytes random hex digits, reusing its storage.
void RandomHexInto(std::string& out, size_t bytes) {
  static const char* kDigits = "0123456789abcdef";
  out.resize(bytes * 2);
  for (size_t i = 0; i < bytes; i += 8) {
    uint64_t r = NextRandom();
    for (size_t j = 0; j < 8 && i + j < bytes; ++j, r >>= 8) {
      out[2 * (i + j)] = kDigits[(r >> 4) & 15];
      out[2 * (i + j) + 1] = kDigits[r & 15];
    }
  }
}

std::string RandomHex(size_t bytes) {
  std::string s;
  RandomHexInto(s, bytes);
  return s;
}

// RFC 9112 section 9.3: the close and keep-alive tokens of a Connection field.
void ConnectionTokens(std::string_view connection, bool& close, bool& keep) {
  while (!connection.empty()) {
    size_t comma = connection.find(',');
    std::string_view token = connection.substr(0, comma);
    connection =
        comma == std::string_view::npos ? std::string_view() : connection.substr(comma + 1);
    while (!token.empty() && (token.front() == ' ' || token.front() == '\t'))
      token.remove_prefix(1);
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
    if (IEquals(token, "close")) close = true;
    if (IEquals(token, "keep-alive")) keep = true;
  }
}

}  // namespace

std::string NewRequestId() { return RandomHex(16); }

size_t HeaderEnd(std::string_view data) {
  size_t crlf = data.find("\r\n\r\n");
  size_t lf = data.find("\n\n");
  if (crlf == std::string_view::npos && lf == std::string_view::npos) return std::string_view::npos;
  if (lf == std::string_view::npos || (crlf != std::string_view::npos && crlf + 2 <= lf))
    return crlf + 4;
  return lf + 2;
}

Status CheckRawHeader(std::string_view block) {
  auto bad = [](const char* why) { return MakeError(Errc::kBadInput, "bad_request", why); };
  for (size_t i = 0; i < block.size(); ++i) {
    char c = block[i];
    if (c == '\0') return bad("NUL byte in the header");
    if (c == '\r' && (i + 1 >= block.size() || block[i + 1] != '\n'))
      return bad("bare CR in the header");
    if (c == '\n' && i + 1 < block.size() && (block[i + 1] == ' ' || block[i + 1] == '\t'))
      return bad("obsolete line folding");
  }
  return Ok();
}

Status FillRequest(std::string_view method, std::string_view target, int version,
                   const HeadField* fields, size_t count, const Limits& limits, Request& req) {
  if (count > limits.max_headers)
    return MakeError(Errc::kHeadersTooLarge, "too_many_headers", "too many header fields");
  if (version != 11 && version != 10)
    return MakeError(Errc::kBadInput, "bad_request", "unsupported HTTP version");
  // Framing (RFC 9112 section 6): one Content-Length of digits, or Transfer-Encoding that is
  // exactly "chunked" on HTTP/1.1; anything else could be read two ways, so it is refused.
  int lengths = 0, encodings = 0, hosts = 0;
  bool close = false, keep = false;
  std::string_view rid, traceparent;
  for (size_t i = 0; i < count; ++i) {
    std::string_view name = fields[i].name, v = fields[i].value;
    if (IEquals(name, "content-length")) {
      ++lengths;
      if (v.empty() || v.find_first_not_of("0123456789") != std::string_view::npos)
        return MakeError(Errc::kBadInput, "bad_request", "invalid Content-Length");
    } else if (IEquals(name, "transfer-encoding")) {
      ++encodings;
      if (!IEquals(v, "chunked") || version != 11)
        return MakeError(Errc::kBadInput, "bad_request", "unsupported Transfer-Encoding");
    } else if (IEquals(name, "host")) {
      ++hosts;
    } else if (IEquals(name, "connection")) {
      ConnectionTokens(v, close, keep);  // every Connection field counts
    } else if (rid.empty() && IEquals(name, "x-request-id")) {
      rid = v;
    } else if (traceparent.empty() && IEquals(name, "traceparent")) {
      traceparent = v;
    }
  }
  if (lengths > 1 || encodings > 1 || (lengths && encodings))
    return MakeError(Errc::kBadInput, "bad_request", "ambiguous message framing");
  // RFC 9112 section 3.2: HTTP/1.1 needs one Host; no request may carry two.
  if (hosts > 1 || (version == 11 && hosts != 1))
    return MakeError(Errc::kBadInput, "bad_request", "HTTP/1.1 needs exactly one Host header");
  if (target.empty() || target.front() != '/' || target.size() > limits.max_target_bytes)
    return MakeError(Errc::kBadInput, "bad_target", "request target must be an absolute path");
  // Every field is assigned, so that a connection's Request is reused from one request to the
  // next without allocating again.
  size_t q = target.find('?');
  std::string_view raw_path = target.substr(0, q);
  if (raw_path.find('%') == std::string_view::npos) {
    req.path.assign(raw_path);
  } else {
    auto path = PercentDecode(raw_path, false);
    if (!path)
      return MakeError(Errc::kBadInput, "bad_target", "malformed percent-encoding in path");
    req.path = std::move(*path);
  }
  req.method.assign(method);
  req.target.assign(target);
  if (q != std::string_view::npos) {
    req.query.assign(target.substr(q + 1));
  } else {
    req.query.clear();
  }
  req.headers.resize(count);
  for (size_t i = 0; i < count; ++i) {
    req.headers[i].name.assign(fields[i].name);
    req.headers[i].value.assign(fields[i].value);
  }
  req.keep_alive = version == 11 ? !close : (keep && !close);
  req.body.clear();
  req.body_stream.reset();
  req.body_length.reset();
  req.route.clear();
  req.params.clear();
  if (!rid.empty() && GoodRequestId(rid)) {
    req.request_id.assign(rid);
  } else {
    RandomHexInto(req.request_id, 16);
  }
  std::string_view trace = TraceIdFrom(traceparent);
  if (!trace.empty()) {
    req.trace_id.assign(trace);
  } else {
    RandomHexInto(req.trace_id, 16);
  }
  return Ok();
}

Result<Request> ConvertRequest(const bhttp::request_header<>& msg, std::string body,
                               const Limits& limits) {
  std::vector<HeadField> fields;
  for (const auto& f : msg) fields.push_back({f.name_string(), f.value()});
  Request req;
  Status st = FillRequest(msg.method_string(), msg.target(), static_cast<int>(msg.version()),
                          fields.data(), fields.size(), limits, req);
  if (!st.ok()) return st.error();
  req.body = std::move(body);
  return req;
}

Result<Request> ParseRequest(std::string_view bytes, const Limits& limits) {
  size_t end = HeaderEnd(bytes);
  if (end == std::string_view::npos) {
    if (bytes.size() > limits.max_header_bytes)
      return MakeError(Errc::kHeadersTooLarge, "headers_too_large", "headers too large");
    return MakeError(Errc::kBadInput, "bad_request", "incomplete header");
  }
  if (Status st = CheckRawHeader(bytes.substr(0, end)); !st.ok()) return st.error();
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(static_cast<uint32_t>(limits.max_header_bytes));
  parser.body_limit(limits.max_body_bytes);
  parser.eager(true);
  boost::beast::error_code ec;
  size_t used = 0;
  while (!parser.is_done() && used < bytes.size()) {
    size_t n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    if (ec == bhttp::error::need_more) break;
    if (ec) break;
    if (n == 0) break;
    used += n;
  }
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  if (ec == bhttp::error::header_limit)
    return MakeError(Errc::kHeadersTooLarge, "headers_too_large", "headers too large");
  if (ec == bhttp::error::body_limit)
    return MakeError(Errc::kTooLarge, "payload_too_large", "body too large");
  if (ec || !parser.is_done())
    return MakeError(Errc::kBadInput, "bad_request", "malformed request");
  auto msg = parser.release();
  return ConvertRequest(msg, std::move(msg.body()), limits);
}

void AppendResponseHead(std::string& out, const Response& resp, std::string_view request_id,
                        bool keep_alive, std::optional<uint64_t> content_length,
                        std::string_view extra) {
  size_t need = out.size() + 80 + request_id.size() + resp.raw_headers.size() + extra.size() +
                resp.content_type.size();
  for (const auto& h : resp.headers) need += h.name.size() + h.value.size() + 4;
  out.reserve(need);
  char num[24];
  auto digits = [&num](uint64_t v) {
    char* end = num + sizeof num;
    char* p = end;
    do {
      *--p = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v);
    return std::string_view(p, static_cast<size_t>(end - p));
  };
  out.append("HTTP/1.1 ").append(digits(static_cast<uint64_t>(resp.status))).push_back(' ');
  out.append(ReasonPhrase(resp.status)).append("\r\n");
  if (!resp.content_type.empty())
    out.append("Content-Type: ").append(resp.content_type).append("\r\n");
  for (const auto& h : resp.headers) {
    // Framing is ours to write: a handler's (or a backend's) framing headers never pass.
    if (IEquals(h.name, "content-length") || IEquals(h.name, "transfer-encoding") ||
        IEquals(h.name, "connection") ||
        (!request_id.empty() && IEquals(h.name, "x-request-id")))  // written once, below
      continue;
    out.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  out.append(resp.raw_headers);
  out.append(extra);
  if (!request_id.empty()) out.append("X-Request-Id: ").append(request_id).append("\r\n");
  if (content_length) {
    out.append("Content-Length: ").append(digits(*content_length)).append("\r\n");
  } else if (resp.status >= 200 && resp.status != 204 && resp.status != 304) {
    out.append("Transfer-Encoding: chunked\r\n");
  }
  if (!keep_alive) out.append("Connection: close\r\n");
  out.append("\r\n");
}

std::string ResponseHead(const Response& resp, std::string_view request_id, bool keep_alive,
                         std::optional<uint64_t> content_length) {
  std::string out;
  AppendResponseHead(out, resp, request_id, keep_alive, content_length);
  return out;
}

}  // namespace millions::http
