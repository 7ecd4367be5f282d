#include "ctl/reshard_nudge.h"

#include <future>

#include "core/config.h"
#include "core/http_client.h"

namespace millions::ctl {

std::vector<bool> NudgeWebNodes(const std::vector<std::string>& nodes, int64_t version,
                                const std::string& token, std::chrono::milliseconds timeout) {
  std::vector<std::future<bool>> asked;
  for (const auto& n : nodes)
    asked.push_back(std::async(std::launch::async, [n, version, token, timeout] {
      auto hp = config::ParseHostPort(n);
      http::FetchRequest req;
      req.method = "POST";
      req.host = hp.host;
      req.port = hp.port;
      req.target = "/shardmap/refresh?version=" + std::to_string(version);
      req.timeout = timeout;
      if (!token.empty()) req.headers.emplace_back("Authorization", "Bearer " + token);
      auto r = http::Fetch(req);
      return r.ok() && r->status != 403;
    }));
  std::vector<bool> out;
  for (auto& a : asked) out.push_back(a.get());
  return out;
}

}  // namespace millions::ctl
