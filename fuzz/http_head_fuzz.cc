// libFuzzer target: the fast header-block reader (core/http_head.h) against Beast's full
// parser, on the same bytes. Whatever the fast reader accepts, the full parser must accept
// too, reading the same method, target, fields and framing; otherwise a request or response
// could mean one thing on the fast path and another on the full one.
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/http_convert.h"
#include "core/http_head.h"
#include "core/http_limits.h"

namespace bhttp = boost::beast::http;
using millions::http::FastHead;

namespace {

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
      full->query != mine.query || full->keep_alive != mine.keep_alive ||
      full->headers.size() != mine.headers.size() || !full->body.empty())
    __builtin_trap();
  for (size_t i = 0; i < mine.headers.size(); ++i)
    if (full->headers[i].name != mine.headers[i].name ||
        full->headers[i].value != mine.headers[i].value)
      __builtin_trap();
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
  if (fast.has_length != p.content_length().has_value()) __builtin_trap();
  if (fast.has_length && *p.content_length() != fast.content_length) __builtin_trap();
  if (p.chunked() || p.keep_alive() == fast.close) __builtin_trap();
  size_t n = 0;
  for (const auto& f : p.get()) {
    if (n >= fast.count || f.name_string() != fast.fields[n].name ||
        f.value() != fast.fields[n].value)
      __builtin_trap();
    ++n;
  }
  if (n != fast.count) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Request(in);
  Response(in);
  return 0;
}
