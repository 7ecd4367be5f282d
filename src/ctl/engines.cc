// What recipes and the supervisor share for talking to the engines: HTTP readiness checks, port
// checks, the node a topology entry names. Blocking I/O with short timeouts: the runner's own
// threads call these, never an event loop. The engines' own talk (Redis INFO, Patroni's cluster
// view) is in their recipes (recipes/).
#include <boost/asio/ip/tcp.hpp>
#include <filesystem>

#include "core/config.h"
#include "ctl/recipe.h"
#include "ctl/runner_internal.h"

namespace millions::ctl {

Node NodeFor(const topo::NodeEntry& e, const std::string& check) {
  Node n;
  n.name = e.name;
  n.dc = e.dc;
  n.host = e.host;
  n.address = e.listen;
  n.tls_address = e.tls_listen;
  auto hp = config::ParseHostPort(check);
  n.check_host = hp.host;
  n.check_port = hp.port;
  return n;
}

bool HttpReady(const std::string& host, int port, const std::string& path,
               std::chrono::milliseconds timeout) {
  http::FetchRequest r;
  r.host = host;
  r.port = port;
  r.target = path;
  r.timeout = timeout;
  auto res = http::Fetch(r);
  return res.ok() && res->status == 200;
}

std::string LogPath(const RecipeContext& ctx, const std::string& node) {
  return ctx.run_dir + "/logs/" + node + ".log";
}

namespace detail {

std::string Abs(const std::string& p) {
  return std::filesystem::absolute(p).lexically_normal().string();
}

bool PortFree(const std::string& host, int port) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor a(ioc);
  boost::system::error_code ec;
  boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address(host, ec),
                                    static_cast<uint16_t>(port));
  if (ec) return false;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(boost::asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  return !ec;
}

}  // namespace detail
}  // namespace millions::ctl
