// libFuzzer target: the fast header-block reader (core/http_head.h) against Beast's full
// parser, on the same bytes. Whatever the fast reader accepts, the full parser must accept
// too, reading the same method, target, fields and framing; otherwise a request or response
// could mean one thing on the fast path and another on the full one.
#include <algorithm>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/http_convert.h"
#include "core/http_head.h"
#include "core/http_limits.h"

namespace bhttp = boost::beast::http;
using millions::http::FastHead;

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Fields as (lower-case name, value), stably sorted by name: Beast groups repeated names
// together, keeping their order, and field order across different names carries no meaning
// (RFC 9110 5.3); within one name it does, and it must agree.
using Fields = std::vector<std::pair<std::string, std::string>>;
Fields Grouped(Fields f) {
  std::stable_sort(f.begin(), f.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return f;
}

void Request(std::string_view in) {
  size_t end = millions::http::HeaderEnd(in);
  if (end == std::string_view::npos) return;
  std::string_view block = in.substr(0, end);
  millions::http::RequestHeadView fast;
  if (millions::http::ParseRequestHead(block, fast) != FastHead::kOk) return;
  millions::http::Limits limits;
  limits.max_headers = 1000;
  limits.max_header_bytes = 1 << 20;
  auto full = millions::http::ParseRequest(block, limits);
  millions::http::Request mine;
  auto st = millions::http::FillRequest(fast.method, fast.target, fast.version, fast.fields,
                                        fast.count, limits, mine);
  if (full.ok() != st.ok()) __builtin_trap();
  if (!full.ok()) return;
  if (full->method != mine.method || full->target != mine.target || full->path != mine.path ||
      full->query != mine.query || full->keep_alive != mine.keep_alive || !full->body.empty())
    __builtin_trap();
  Fields a, b;
  for (const auto& h : full->headers) a.emplace_back(Lower(h.name), h.value);
  for (const auto& h : mine.headers) b.emplace_back(Lower(h.name), h.value);
  if (Grouped(a) != Grouped(b)) __builtin_trap();
}

void Response(std::string_view in) {
  size_t end = millions::http::HeaderEnd(in);
  if (end == std::string_view::npos) return;
  std::string_view block = in.substr(0, end);
  millions::http::ResponseHeadView fast;
  if (millions::http::ParseResponseHead(block, fast) != FastHead::kOk) return;
  bhttp::response_parser<bhttp::empty_body> p;
  p.skip(true);  // the head only
  boost::beast::error_code ec;
  p.put(boost::asio::buffer(block.data(), block.size()), ec);
  if (ec || !p.is_header_done()) __builtin_trap();
  if (p.get().result_int() != static_cast<unsigned>(fast.status)) __builtin_trap();
  // (A 204 or 304 has no body whatever its fields say; Beast may report its length as 0.)
  if (fast.status != 204 && fast.status != 304) {
    if (fast.has_length != p.content_length().has_value()) __builtin_trap();
    if (fast.has_length && *p.content_length() != fast.content_length) __builtin_trap();
  }
  if (p.chunked() || p.keep_alive() == fast.close) __builtin_trap();
  Fields a, b;
  for (const auto& f : p.get()) a.emplace_back(Lower(f.name_string()), std::string(f.value()));
  for (size_t i = 0; i < fast.count; ++i)
    b.emplace_back(Lower(fast.fields[i].name), std::string(fast.fields[i].value));
  if (Grouped(a) != Grouped(b)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Request(in);
  Response(in);
  return 0;
}
