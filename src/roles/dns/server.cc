#include "roles/dns/server.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>
#include <cstring>

#include "core/config.h"
#include "core/log.h"

namespace millions::dns {
namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using asio::ip::udp;

namespace {

// The bounded label values of millions_dns_queries_total.
constexpr const char* kTypes[] = {"A",     "AAAA", "NS",   "SOA",  "ANY",
                                  "CNAME", "AXFR", "IXFR", "other"};
constexpr size_t kNumTypes = std::size(kTypes);
constexpr Rcode kRcodes[] = {Rcode::kNoError, Rcode::kFormErr, Rcode::kServFail, Rcode::kNxDomain,
                             Rcode::kNotImp,  Rcode::kRefused, Rcode::kBadVers};
constexpr size_t kNumRcodes = std::size(kRcodes);

size_t TypeIndex(uint16_t t) {
  std::string_view l = TypeLabel(t);
  for (size_t i = 0; i < kNumTypes; ++i)
    if (l == kTypes[i]) return i;
  return kNumTypes - 1;
}
size_t RcodeIndex(Rcode r) {
  for (size_t i = 0; i < kNumRcodes; ++i)
    if (kRcodes[i] == r) return i;
  return 0;
}

Subnet FromAddress(const asio::ip::address& a) {
  Subnet s;
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return FromAddress(asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()));
  if (a.is_v4()) {
    auto b = a.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), s.address.begin());
    s.family = 1;
    s.prefix = 32;
  } else {
    auto b = a.to_v6().to_bytes();
    std::copy(b.begin(), b.end(), s.address.begin());
    s.family = 2;
    s.prefix = 128;
  }
  return s;
}

Subnet FromSockaddr(const sockaddr_storage& ss) {
  Subnet s;
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    std::memcpy(s.address.data(), &a.sin_addr, 4);
    s.family = 1;
    s.prefix = 32;
    return s;
  }
  const auto& a6 = reinterpret_cast<const sockaddr_in6&>(ss);
  const uint8_t* b = a6.sin6_addr.s6_addr;
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(b, kMapped, 12) == 0) {
    std::memcpy(s.address.data(), b + 12, 4);
    s.family = 1;
    s.prefix = 32;
    return s;
  }
  std::memcpy(s.address.data(), b, 16);
  s.family = 2;
  s.prefix = 128;
  return s;
}

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  std::vector<asio::io_context*> contexts;
  const DnsConfig& cfg;
  ZoneSource zone;
  metrics::Registry& reg;
  std::vector<std::unique_ptr<udp::socket>> sockets;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::atomic<int> tcp_open{0};
  std::atomic<bool> stopped{false};
  // Series handles, made on first use: [transport][type][rcode].
  std::array<std::atomic<metrics::Counter*>, 2 * kNumTypes * kNumRcodes> queries{};
  metrics::Counter* truncated[2] = {};
  metrics::Counter* dropped = nullptr;
  metrics::Counter* tcp_refused = nullptr;
  metrics::Histogram* duration[2] = {};

  Impl(std::vector<asio::io_context*> c, const DnsConfig& d, ZoneSource z, metrics::Registry& r)
      : contexts(std::move(c)), cfg(d), zone(std::move(z)), reg(r) {
    const char* tr[2] = {"udp", "tcp"};
    for (int i = 0; i < 2; ++i) {
      truncated[i] = &reg.GetCounter("millions_dns_truncated_total",
                                     "Answers sent with TC=1 (too big for the client's limit)",
                                     {{"transport", tr[i]}});
      duration[i] = &reg.GetHistogram("millions_dns_answer_duration_seconds",
                                      "From a query's bytes read to its answer built",
                                      {{"transport", tr[i]}});
    }
    dropped = &reg.GetCounter("millions_dns_dropped_total",
                              "Datagrams not answered (responses, fewer than 12 bytes)", {});
    tcp_refused = &reg.GetCounter("millions_dns_tcp_refused_total",
                                  "TCP connections closed on accept: tcp_max_connections open", {});
  }

  void Count(const Outcome& o, int transport, std::chrono::steady_clock::time_point t0) {
    if (!o.answered) {
      dropped->Inc();
      return;
    }
    size_t idx = (transport * kNumTypes + TypeIndex(o.qtype)) * kNumRcodes + RcodeIndex(o.rcode);
    metrics::Counter* c = queries[idx].load(std::memory_order_acquire);
    if (!c) {
      c = &reg.GetCounter("millions_dns_queries_total", "DNS queries answered",
                          {{"qtype", kTypes[TypeIndex(o.qtype)]},
                           {"rcode", RcodeName(o.rcode)},
                           {"transport", transport == 0 ? "udp" : "tcp"}});
      queries[idx].store(c, std::memory_order_release);
    }
    c->Inc();
    if (o.truncated) truncated[transport]->Inc();
    duration[transport]->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }

  // Up to kBatch datagrams are taken with one recvmmsg and their answers sent with one
  // sendmmsg: under load the system calls, not the answers, are the cost of a query. Without
  // waiting while datagrams come; through the reactor only when none has.
  static constexpr int kBatch = 32;
  static constexpr size_t kSlot = 4096;  // a bigger query is not one we answer: dropped
  struct Batch {
    std::array<mmsghdr, kBatch> in{}, out{};
    std::array<iovec, kBatch> in_iov{}, out_iov{};
    std::array<sockaddr_storage, kBatch> from{};
    std::vector<char> bufs = std::vector<char>(kBatch * kSlot);
    std::array<std::string, kBatch> answers;
  };

  awaitable<void> UdpLoop(udp::socket& s) {
    auto self = shared_from_this();
    auto b = std::make_unique<Batch>();
    boost::system::error_code ec;
    const int fd = s.native_handle();
    while (!stopped) {
      for (int i = 0; i < kBatch; ++i) {
        b->in_iov[i] = {b->bufs.data() + i * kSlot, kSlot};
        b->in[i].msg_hdr = {};
        b->in[i].msg_hdr.msg_name = &b->from[i];
        b->in[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
        b->in[i].msg_hdr.msg_iov = &b->in_iov[i];
        b->in[i].msg_hdr.msg_iovlen = 1;
      }
      int n = ::recvmmsg(fd, b->in.data(), kBatch, MSG_DONTWAIT, nullptr);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
          co_await s.async_wait(udp::socket::wait_read,
                                asio::redirect_error(asio::use_awaitable, ec));
          if (ec == asio::error::operation_aborted || stopped) break;
          continue;
        }
        if (errno == EBADF) break;
        continue;  // e.g. an ICMP error from an earlier send: the next datagram
      }
      auto z = zone();
      int m = 0;
      for (int i = 0; i < n; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        if (b->in[i].msg_hdr.msg_flags & MSG_TRUNC) {
          dropped->Inc();
          continue;
        }
        std::string_view wire(b->bufs.data() + i * kSlot, b->in[i].msg_len);
        Outcome o = z->Respond(wire, FromSockaddr(b->from[i]), true, &b->answers[i]);
        Count(o, 0, t0);
        if (!o.answered) continue;
        b->out_iov[m] = {b->answers[i].data(), b->answers[i].size()};
        b->out[m].msg_hdr = {};
        b->out[m].msg_hdr.msg_name = &b->from[i];
        b->out[m].msg_hdr.msg_namelen = b->in[i].msg_hdr.msg_namelen;
        b->out[m].msg_hdr.msg_iov = &b->out_iov[m];
        b->out[m].msg_hdr.msg_iovlen = 1;
        ++m;
      }
      int sent = 0;
      while (sent < m) {
        int k = ::sendmmsg(fd, b->out.data() + sent, m - sent, MSG_DONTWAIT);
        if (k > 0) {
          sent += k;
          continue;
        }
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          co_await s.async_wait(udp::socket::wait_write,
                                asio::redirect_error(asio::use_awaitable, ec));
          if (ec) break;
          continue;
        }
        ++sent;  // this datagram cannot be sent (its address): the others can
      }
    }
  }

  awaitable<void> TcpConn(tcp::socket sock) {
    auto self = shared_from_this();
    struct Open {
      std::atomic<int>& n;
      ~Open() { --n; }
    } open{tcp_open};
    Subnet source;
    boost::system::error_code ec;
    auto remote = sock.remote_endpoint(ec);
    if (ec) co_return;
    source = FromAddress(remote.address());
    boost::beast::tcp_stream stream(std::move(sock));
    const auto idle = std::chrono::milliseconds(cfg.settings.tcp_idle_timeout_ms);
    std::vector<char> buf(65535);
    std::string out;
    for (int i = 0; i < cfg.settings.tcp_max_queries && !stopped; ++i) {
      unsigned char len[2];
      stream.expires_after(idle);
      co_await asio::async_read(stream, asio::buffer(len, 2),
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      size_t n = (size_t{len[0]} << 8) | len[1];
      co_await asio::async_read(stream, asio::buffer(buf.data(), n),
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      auto t0 = std::chrono::steady_clock::now();
      auto z = zone();
      Outcome o = z->Respond(std::string_view(buf.data(), n), source, false, &out);
      Count(o, 1, t0);
      if (!o.answered) break;
      unsigned char olen[2] = {static_cast<unsigned char>(out.size() >> 8),
                               static_cast<unsigned char>(out.size() & 0xff)};
      std::array<asio::const_buffer, 2> bufs{asio::buffer(olen, 2), asio::buffer(out)};
      co_await asio::async_write(stream, bufs, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
    }
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.close();
  }

  awaitable<void> Accept() {
    auto self = shared_from_this();
    size_t next = 0;
    for (;;) {
      boost::system::error_code ec;
      // Each connection on a context of its own, in turn: no strand needed.
      asio::io_context& ctx = *contexts[next++ % contexts.size()];
      tcp::socket sock(ctx);
      co_await acceptor->async_accept(sock, asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted || stopped) break;
      if (ec) continue;
      if (tcp_open.load() >= cfg.settings.tcp_max_connections) {
        tcp_refused->Inc();
        sock.close(ec);
        continue;
      }
      ++tcp_open;
      asio::co_spawn(ctx, TcpConn(std::move(sock)), asio::detached);
    }
  }
};

Server::Server(std::vector<asio::io_context*> contexts, const DnsConfig& cfg, ZoneSource zone,
               metrics::Registry& reg)
    : impl_(std::make_shared<Impl>(std::move(contexts), cfg, std::move(zone), reg)) {}

Server::~Server() { Stop(); }

void Server::Start() {
  auto hp = config::ParseHostPort(impl_->cfg.listen);
  std::string host = hp.host;
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  udp::endpoint uep(asio::ip::make_address(host), static_cast<unsigned short>(hp.port));
  const bool several = impl_->contexts.size() > 1;
  for (auto* ctx : impl_->contexts) {
    auto s = std::make_unique<udp::socket>(*ctx);
    s->open(uep.protocol());
    if (several) {
      int one = 1;
      ::setsockopt(s->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    }
    // A burst of queries waits in the socket's buffer while the thread answers: the default
    // (about 200 KiB, a few hundred small datagrams at their kernel size) drops queries under
    // a resolver's load. As root the limit (net.core.rmem_max) does not apply.
    for (auto [force, plain] :
         {std::pair{SO_RCVBUFFORCE, SO_RCVBUF}, {SO_SNDBUFFORCE, SO_SNDBUF}}) {
      int bytes = 8 << 20;
      if (::setsockopt(s->native_handle(), SOL_SOCKET, force, &bytes, sizeof bytes) != 0)
        ::setsockopt(s->native_handle(), SOL_SOCKET, plain, &bytes, sizeof bytes);
    }
    s->bind(uep);
    s->non_blocking(true);
    impl_->sockets.push_back(std::move(s));
  }
  tcp::endpoint tep(uep.address(), uep.port());
  impl_->acceptor = std::make_unique<tcp::acceptor>(*impl_->contexts.front());
  impl_->acceptor->open(tep.protocol());
  impl_->acceptor->set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor->bind(tep);
  impl_->acceptor->listen();
  for (size_t i = 0; i < impl_->sockets.size(); ++i)
    asio::co_spawn(*impl_->contexts[i], impl_->UdpLoop(*impl_->sockets[i]), asio::detached);
  asio::co_spawn(*impl_->contexts.front(), impl_->Accept(), asio::detached);
}

void Server::Stop() {
  if (impl_->stopped.exchange(true)) return;
  auto impl = impl_;
  for (size_t i = 0; i < impl->sockets.size(); ++i)
    asio::post(*impl->contexts[i], [impl, i] {
      boost::system::error_code ec;
      impl->sockets[i]->close(ec);
    });
  if (impl->acceptor)
    asio::post(*impl->contexts.front(), [impl] {
      boost::system::error_code ec;
      impl->acceptor->close(ec);
    });
}

}  // namespace millions::dns
