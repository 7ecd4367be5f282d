#include "core/membership.h"

#include <boost/json.hpp>
#include <chrono>

#include "core/config.h"
#include "core/http_client.h"

namespace millions::membership {

Membership::Membership(Members initial)
    : current_(std::make_shared<const Members>(std::move(initial))) {}

bool Membership::Publish(Members next) {
  if (*current_.load() == next) return false;
  current_.store(std::make_shared<const Members>(std::move(next)));
  return true;
}

RunnerMembership::RunnerMembership(std::string runner_admin, std::string role, Members initial,
                                   std::string token)
    : Membership(std::move(initial)),
      admin_(std::move(runner_admin)),
      role_(std::move(role)),
      token_(std::move(token)) {}

bool RunnerMembership::Refresh() {
  auto hp = config::ParseHostPort(admin_);
  http::FetchRequest r;
  r.host = hp.host;
  r.port = hp.port;
  r.target = "/api/status";
  if (!token_.empty()) r.authorization = "Bearer " + token_;
  r.timeout = std::chrono::milliseconds(500);
  auto res = http::Fetch(r);
  if (!res.ok() || res->status != 200) return false;
  auto now = ParseRunnerStatus(res->body, role_);
  if (!now.ok() || now->empty()) return false;
  return Publish(std::move(now.value()));
}

Result<Members> ParseRunnerStatus(std::string_view json, std::string_view role) {
  boost::system::error_code ec;
  auto v = boost::json::parse(json, ec);
  if (ec) return MakeError(Errc::kBadInput, "bad_status", ec.message());
  const auto* root = v.if_object();
  const auto* nodes = root ? root->if_contains("nodes") : nullptr;
  if (!nodes || !nodes->is_array())
    return MakeError(Errc::kBadInput, "bad_status", "no nodes array");
  Members out;
  for (const auto& n : nodes->get_array()) {
    const auto* o = n.if_object();
    if (!o) continue;
    auto str = [o](std::string_view key) -> std::string_view {
      const auto* f = o->if_contains(key);
      return f && f->is_string() ? std::string_view(f->get_string()) : std::string_view();
    };
    if (str("role") != role || str("state") != "running") continue;
    out.push_back({std::string(str("name")), std::string(str("address")), 1,
                   std::string(str("tls_address"))});
  }
  return out;
}

}  // namespace millions::membership
