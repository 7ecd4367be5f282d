#include "core/http_client.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>

#include "core/tls.h"

namespace millions::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

template <class Stream>
asio::awaitable<void> Request(const FetchRequest& in, Stream& stream) {
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(in.method), in.target, 11};
  req.set(bhttp::field::host, in.host + ":" + std::to_string(in.port));
  req.set(bhttp::field::connection, "close");
  if (!in.content_type.empty()) req.set(bhttp::field::content_type, in.content_type);
  if (!in.authorization.empty()) req.set(bhttp::field::authorization, in.authorization);
  for (const auto& [name, value] : in.headers) req.set(name, value);
  req.body() = in.body;
  req.prepare_payload();
  co_await bhttp::async_write(stream, req, asio::use_awaitable);
}

template <class Stream>
asio::awaitable<Response> ReadResponse(Stream& stream) {
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  co_await bhttp::async_read(stream, buf, parser, asio::use_awaitable);
  auto res = parser.release();
  Response r;
  r.status = static_cast<int>(res.result_int());
  for (const auto& f : res)
    r.headers.push_back({std::string(f.name_string()), std::string(f.value())});
  r.body = std::move(res.body());
  co_return r;
}

asio::awaitable<void> Exchange(const FetchRequest& in, std::optional<Result<Response>>& out) {
  auto ex = co_await asio::this_coro::executor;
  beast::tcp_stream stream(ex);
  stream.expires_after(in.timeout);
  beast::error_code ec;
  asio::ip::tcp::endpoint ep(asio::ip::make_address(in.host, ec),
                             static_cast<unsigned short>(in.port));
  if (ec) {
    out = MakeError(Errc::kBadInput, "bad_address", "bad host " + in.host);
    co_return;
  }
  std::string where = in.host + ":" + std::to_string(in.port) + ": ";
  try {
    co_await stream.async_connect(ep, asio::use_awaitable);
    if (!in.tls) {
      co_await Request(in, stream);
      out = co_await ReadResponse(stream);
      co_return;
    }
    beast::ssl_stream<beast::tcp_stream> s(std::move(stream), *in.tls);
    if (!tls::Expect(s.native_handle(), in.host)) {
      out = MakeError(Errc::kUnavailable, "unreachable", where + "cannot expect that host");
      co_return;
    }
    co_await s.async_handshake(asio::ssl::stream_base::client,
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      out = MakeError(
          Errc::kUnavailable, "unreachable",
          where + "TLS handshake: " + tls::HandshakeError(s.native_handle(), ec.message()));
      co_return;
    }
    co_await Request(in, s);
    out = co_await ReadResponse(s);
  } catch (const std::exception& e) {
    out = MakeError(Errc::kUnavailable, "unreachable", where + e.what());
  }
}

}  // namespace

Result<Response> Fetch(const FetchRequest& req) {
  asio::io_context ioc;
  std::optional<Result<Response>> out;
  asio::co_spawn(ioc, Exchange(req, out), asio::detached);
  ioc.run();
  if (!out) return MakeError(Errc::kUnavailable, "unreachable", "no answer");
  return std::move(*out);
}

}  // namespace millions::http
