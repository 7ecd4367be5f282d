// Private to core: what the upstream client's two paths share: one request per connection
// (upstream.cc) and pipelined GETs (upstream_pipe.cc).
// Thread-safety: pure functions. Ownership: the views borrow their bytes.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/fields.hpp>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "core/http.h"
#include "core/http_head.h"
#include "core/upstream.h"

namespace millions::upstream {

// Past this many bytes without the end of the header block, the full parser takes over (and
// applies its own limit).
inline constexpr size_t kFastHeadBytes = 16 * 1024;

// The fast reader's fields, one per thread: filled and read between two suspensions, never
// across one.
inline http::ResponseHeadView& FastView() {
  thread_local http::ResponseHeadView v;
  return v;
}

// The response's status and its fields as one pre-formatted block (hop-by-hop fields and
// X-Request-Id dropped: the server writes its own).
void FillFromView(const http::ResponseHeadView& v, http::Response& r);

// The same from Beast's parsed header (the full parser's path); the status is the caller's.
void FillFromFields(const boost::beast::http::fields& f, http::Response& r);

// The X-Request-Id the response carries, or empty.
std::string_view RequestIdOf(const http::ResponseHeadView& v);

// True when a pooled connection's peer has closed it (readable with nothing to read).
bool PeerClosed(int fd, bool tls);

// Pipelined connections (upstream_pipe.cc): per io_context and backend, for GETs.
class PipePool;
std::shared_ptr<PipePool> MakePipePool(const Options& o);
size_t PipeCount(const PipePool& pool, const std::string& backend);
Client::PipelineCounts PipeCounts(const PipePool& pool);
// Forwards a GET without a body (`head` as for Client::Forward) over a pipelined connection
// to `backend`: it joins the batch being written on one when there is one, else takes an idle
// one or makes one. Never throws.
boost::asio::awaitable<Outcome> ForwardPipelined(std::shared_ptr<PipePool> pool,
                                                 const std::string& backend,
                                                 std::string_view address, std::string_view head,
                                                 const http::Request& req,
                                                 boost::asio::io_context& ctx);

}  // namespace millions::upstream
