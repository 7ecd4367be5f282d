// The recipes the table (recipes.cc) lists, one factory per file of this folder. Internal to
// the runner: the supervisor sees them only as Recipe (ctl/recipe.h).
// Thread-safety and ownership: see ctl/recipe.h.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/resp.h"
#include "ctl/recipe.h"

namespace millions::ctl {

std::unique_ptr<Recipe> NewEtcdRecipe();
std::unique_ptr<Recipe> NewPatroniRecipe();
std::unique_ptr<Recipe> NewRedisRecipe();
std::unique_ptr<Recipe> NewNatsRecipe();
std::unique_ptr<Recipe> NewWebRecipe();
std::unique_ptr<Recipe> NewWorkerRecipe();
std::unique_ptr<Recipe> NewEdgeRecipe();
std::unique_ptr<Recipe> NewDnsRecipe();
std::unique_ptr<Recipe> NewLbRecipe();
std::unique_ptr<Recipe> NewTimelineRecipe();
std::unique_ptr<Recipe> NewPrometheusRecipe();

// A self-signed certificate and key for local use (CN localhost, 127.0.0.1) when the topology
// names files that do not exist yet; nothing when `cert` is empty (lb.cc: the balancer's and the
// edge's HTTPS listeners).
Status EnsureCertificate(const std::string& cert, const std::string& key);

// ---- Redis helpers the redis and timeline recipes share (redis.cc) ----------------------------
// An ACL user and its password (AUTH); no password: no AUTH.
struct RedisAuth {
  std::string user, password;
};
// A Redis node's own state: the credentials of the runner's checks (its `admin` ACL user).
struct RedisExtra : NodeExtra {
  RedisAuth admin;
};
// The runner's credentials for a Redis node; empty when it has none.
const RedisAuth& AdminAuth(const Node& n);
// One command to a Redis node on a fresh blocking connection, within `timeout` in all, after
// AUTH when `auth` has a password; the reply, or nothing (a refused AUTH included).
std::optional<cache::RedisReply> RedisCommand(const std::string& host, int port,
                                              const std::vector<std::string>& argv,
                                              std::chrono::milliseconds timeout,
                                              const RedisAuth& auth = {});
// An ACL file line: user `name`, on, with the SHA-256 of its password (the file holds no
// password), then `rules`.
std::string RedisAclUser(const std::string& name, const std::string& password,
                         const std::string& rules);
// Writes a node's ACL file (DIR/users.acl: the default user off, then `users` lines) and its
// configuration file (DIR/redis.conf: the aclfile, then `conf`), both 0600 and owned by the
// engine's user; the configuration file's path, for redis-server's command line (which then
// carries no secret).
std::string WriteRedisFiles(const RecipeContext& ctx, const std::string& dir,
                            const std::string& users, const std::string& conf);
// Memory, keys, evictions and hits from the node's INFO, into its status row.
void AddRedisInfo(const Node& n, boost::json::object* o);

}  // namespace millions::ctl
