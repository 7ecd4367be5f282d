// The scenarios themselves, one function each (scenario.cc lists them): each starts what it
// needs through its ScenarioEnv, measures the before and the after, and returns its table and
// plot. They throw on a failure (the env stops what they started).
// Thread-safety: one scenario at a time. Ownership: values.
#pragma once

#include "ctl/scenario.h"
#include "ctl/scenario_env.h"

namespace millions::ctl {

ScenarioResult RunSingleVsTiers(ScenarioEnv& env);  // scenario_tiers.cc
ScenarioResult RunCache(ScenarioEnv& env);          // scenario_tiers.cc
ScenarioResult RunLbFailover(ScenarioEnv& env);     // scenario_failover.cc
ScenarioResult RunReplicas(ScenarioEnv& env);       // scenario_failover.cc
ScenarioResult RunCdn(ScenarioEnv& env);            // scenario_cdn.cc
ScenarioResult RunQueue(ScenarioEnv& env);          // scenario_queue.cc
ScenarioResult RunSharding(ScenarioEnv& env);       // scenario_sharding.cc
ScenarioResult RunDcFailover(ScenarioEnv& env);     // scenario_dc.cc

// The sharding scenario's figures (pure): for each policy and each step from 1 to
// max_clusters clusters, the percentage of `users` synthetic users that change cluster.
struct ShardStep {
  std::string policy;
  int clusters = 0;          // after the step
  double moved_pct = 0;      // users that changed cluster
  double max_over_mean = 0;  // the largest cluster's users over the mean
};
std::vector<ShardStep> ShardMoves(long users, int max_clusters);

}  // namespace millions::ctl
