#include "core/http_server.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <stdexcept>
#include <string>

#include "core/http_server_impl.h"
#include "core/log.h"
#include "core/tls.h"

namespace millions::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

HttpServer::HttpServer(asio::io_context& ioc, ServerOptions options, Handler handler,
                       metrics::Registry* registry)
    : impl_(std::make_shared<Impl>(ioc, std::move(options), std::move(handler), registry)) {}

HttpServer::~HttpServer() = default;

void HttpServer::Start() {
  if (!impl_->opt.tls_cert_file.empty()) {
    // Throws (start-up) when the files are missing or do not match.
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    tls::ApplyPolicy(*ctx);  // the TLS 1.2 floor and suites (docs/security.md)
    ctx->use_certificate_chain_file(impl_->opt.tls_cert_file);
    ctx->use_private_key_file(impl_->opt.tls_key_file, asio::ssl::context::pem);
    impl_->ssl = std::move(ctx);
  }
  auto& a = impl_->acceptor;
  tcp::endpoint ep(asio::ip::make_address(impl_->opt.host), static_cast<uint16_t>(impl_->opt.port));
  a.open(ep.protocol());
  a.set_option(asio::socket_base::reuse_address(true));
  a.bind(ep);
  a.listen(asio::socket_base::max_listen_connections);
  asio::co_spawn(impl_->ioc, impl_->AcceptLoop(), asio::detached);
  impl_->Sweep();
}

uint16_t HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

bool HttpServer::draining() const { return impl_->draining.load(); }

void HttpServer::Drain(std::function<void()> done) {
  auto self = impl_;
  asio::post(self->ioc, [self, done = std::move(done)]() mutable {
    if (self->draining.exchange(true)) return;
    self->sweep_timer.cancel();
    beast::error_code ec;
    self->acceptor.close(ec);
    std::vector<std::shared_ptr<ServerConn>> idle;
    {
      std::lock_guard lock(self->mu);
      self->drain_done = std::move(done);
      for (auto& [id, c] : self->conns)
        if (c->idle.load()) idle.push_back(c);
      if (self->conns.empty()) {
        asio::post(self->ioc, std::exchange(self->drain_done, nullptr));
        return;
      }
    }
    for (auto& c : idle) self->CloseConn(c);
    // Requests still running when the drain timeout fires are cut off.
    self->drain_timer.expires_after(self->opt.limits.drain_timeout);
    self->drain_timer.async_wait([self](beast::error_code) {
      std::vector<std::shared_ptr<ServerConn>> all;
      {
        std::lock_guard lock(self->mu);
        for (auto& [id, c] : self->conns) all.push_back(c);
      }
      for (auto& c : all) self->CloseConn(c);
    });
  });
}

void HttpServer::Impl::CloseConn(const std::shared_ptr<ServerConn>& c) {
  asio::post(c->strand, [c] { c->Close(SHUT_RDWR); });
}

void HttpServer::Impl::Forget(uint64_t id) {
  std::function<void()> done;
  {
    std::lock_guard lock(mu);
    conns.erase(id);
    if (draining && conns.empty() && drain_done) done = std::exchange(drain_done, nullptr);
  }
  open_conns->Add(-1);
  if (done) {
    drain_timer.cancel();
    asio::post(ioc, std::move(done));
  }
}

void HttpServer::Impl::Sweep() {
  auto period = std::clamp(opt.limits.idle_timeout / 4, std::chrono::milliseconds(10),
                           std::chrono::milliseconds(1000));
  sweep_timer.expires_after(period);
  sweep_timer.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->draining) return;
    int64_t now = SteadyMillis();
    std::vector<std::shared_ptr<ServerConn>> expired;
    {
      std::lock_guard lock(self->mu);
      for (auto& [id, c] : self->conns) {
        int64_t d = c->idle_deadline_ms.load(std::memory_order_relaxed);
        if (d != 0 && d <= now) expired.push_back(c);
      }
    }
    for (auto& c : expired) self->CloseConn(c);
    self->Sweep();
  });
}

awaitable<void> HttpServer::Impl::AcceptLoop() {
  auto self = shared_from_this();
  for (;;) {
    beast::error_code ec;
    // The socket is made on the context that will run the connection.
    asio::io_context& io =
        opt.contexts.empty() ? ioc : *opt.contexts[next_context++ % opt.contexts.size()];
    tcp::socket sock = co_await acceptor.async_accept(io, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (draining || ec == asio::error::operation_aborted) co_return;
      // EMFILE and friends: back off briefly instead of spinning.
      log::Warn("accept failed", {{"error", ec.message()}});
      asio::steady_timer t(ioc, std::chrono::milliseconds(50));
      co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    // Responses go out in as few writes as we can make, so Nagle only ever delays (streamed
    // bodies, 100 Continue); every proxy we compare with turns it off too.
    sock.set_option(tcp::no_delay(true), ec);
    if (opt.limits.send_buffer_bytes > 0)
      sock.set_option(asio::socket_base::send_buffer_size(int(opt.limits.send_buffer_bytes)), ec);
    uint64_t id;
    std::shared_ptr<ServerConn> c;
    {
      std::lock_guard lock(mu);
      if (conns.size() >= opt.limits.max_connections) {
        sock.close(ec);
        continue;
      }
      id = next_id++;
      asio::any_io_executor ex = opt.one_thread || !opt.contexts.empty()
                                     ? asio::any_io_executor(io.get_executor())
                                     : asio::any_io_executor(asio::make_strand(io));
      c = std::make_shared<ServerConn>(io, ex, std::move(sock), ssl.get());
      conns.emplace(id, c);
    }
    open_conns->Add(1);
    asio::co_spawn(c->strand, Session(c, id), asio::detached);
  }
}

void HttpServer::Impl::Record(const Request& req, int status, double seconds) {
  // Per route handles found without formatting or building a string (metrics_http.h).
  request_metrics.Record(req.route.empty() ? std::string_view("unmatched") : req.route, req.method,
                         status, seconds);
}

}  // namespace millions::http
