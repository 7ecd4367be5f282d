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

// ---- Redis helpers the redis and timeline recipes share (redis.cc) ----------------------------
// One command to a Redis node on a fresh blocking connection, within `timeout` in all; the
// reply, or nothing.
std::optional<cache::RedisReply> RedisCommand(const std::string& host, int port,
                                              const std::vector<std::string>& argv,
                                              std::chrono::milliseconds timeout);
// Memory, keys, evictions and hits from the node's INFO, into its status row.
void AddRedisInfo(const Node& n, boost::json::object* o);

}  // namespace millions::ctl
