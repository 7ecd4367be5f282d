// The DNS listeners: UDP and TCP on one address. UDP: one socket per io context (SO_REUSEPORT
// spreads queries over them when there are several), each read by one coroutine that takes
// datagrams without waiting while they come and answers each in place; answers too big for the
// client are sent truncated (TC=1). TCP (RFC 1035 4.2.2, RFC 7766): two-byte length framing, at
// most tcp_max_queries per connection, closed after tcp_idle_timeout_ms without one and
// refused above tcp_max_connections. Every query is counted in millions_dns_queries_total.
// Thread-safety: Start and Stop from any thread; each socket lives on its one context.
// Ownership: borrows the contexts, the zone source and the registry, which must outlive it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <vector>

#include "core/metrics.h"
#include "roles/dns/settings.h"
#include "roles/dns/zone.h"

namespace millions::dns {

using ZoneSource = std::function<std::shared_ptr<const Zone>()>;

class Server {
 public:
  Server(std::vector<boost::asio::io_context*> contexts, const DnsConfig& cfg, ZoneSource zone,
         metrics::Registry& reg);
  ~Server();
  // Binds and starts serving; throws std::system_error when the address is unusable.
  void Start();
  // Closes every socket (in-flight TCP answers are cut: DNS clients retry).
  void Stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace millions::dns
