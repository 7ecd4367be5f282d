// The few API calls scenarios make themselves (sign-ups, uploads, edit jobs, photo reads): one
// blocking request per connection through core/http_client.h, bounded by a timeout.
#include <boost/algorithm/string/predicate.hpp>
#include <boost/json.hpp>

#include "core/http_client.h"
#include "ctl/scenario_env.h"

namespace millions::ctl {
namespace json = boost::json;

ApiAnswer Api(const std::string& base, const std::string& method, const std::string& target,
              const std::string& body, const std::string& content_type, const std::string& token) {
  std::string rest = base.rfind("http://", 0) == 0 ? base.substr(7) : base;
  rest = rest.substr(0, rest.find('/'));
  auto colon = rest.rfind(':');
  http::FetchRequest r;
  r.method = method;
  r.host = rest.substr(0, colon);
  r.port = colon == std::string::npos ? 80 : std::stoi(rest.substr(colon + 1));
  r.target = target;
  r.body = body;
  r.content_type = content_type;
  if (!token.empty()) r.authorization = "Bearer " + token;
  r.timeout = std::chrono::milliseconds(30000);
  ApiAnswer a;
  auto res = http::Fetch(r);
  if (!res.ok()) return a;
  a.status = res->status;
  a.body = std::move(res->body);
  for (const auto& h : res->headers)
    if (boost::iequals(h.name, "x-cache")) a.x_cache = h.value;
  return a;
}

std::pair<std::string, std::string> SignUpUser(const std::string& base, const std::string& handle) {
  std::string creds = "{\"handle\":\"" + handle + "\",\"password\":\"password123\"}";
  auto u = Api(base, "POST", "/api/users", creds, "application/json");
  auto s = Api(base, "POST", "/api/sessions", creds, "application/json");
  if (u.status != 201 || s.status != 201)
    throw std::runtime_error("sign-up of " + handle + " failed: " + std::to_string(u.status) + "/" +
                             std::to_string(s.status) + " " + u.body + s.body);
  return {std::string(json::parse(u.body).as_object().at("id").as_string()),
          std::string(json::parse(s.body).as_object().at("token").as_string())};
}

}  // namespace millions::ctl
