// Membership: which backends a proxying role may send to, behind one seam. A source publishes
// immutable snapshots; readers take one with a single atomic load and keep it as long as they
// like. Sources: a static list (the topology, replaced by a reload) and the runner's view of
// its running nodes (polled from `millions up`'s admin API); DNS comes later.
// Thread-safety: Current may be called from any thread at any time; Refresh and Replace from
// one thread at a time (the role's background checker).
// Ownership: a snapshot is shared and never changes; the source owns only its latest one.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace millions::membership {

struct Member {
  std::string name;     // stable: keys pools and health across snapshots
  std::string address;  // host:port
  int weight = 1;
  // The node's TLS listener for its peers (web nodes under [lb] upstream_tls), host:port; empty
  // when it has none.
  std::string tls_address;
  bool operator==(const Member&) const = default;
};

using Members = std::vector<Member>;
using Snapshot = std::shared_ptr<const Members>;

class Membership {
 public:
  explicit Membership(Members initial);
  virtual ~Membership() = default;
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  // The latest snapshot; never null.
  Snapshot Current() const { return current_.load(); }
  // Asks the source for the current list (may block, for a poll); true when a new snapshot
  // was published. A source that cannot answer keeps the last snapshot.
  virtual bool Refresh() = 0;

 protected:
  // Publishes `next` unless it equals the current list (same members in the same order); true
  // when it published.
  bool Publish(Members next);

 private:
  std::atomic<std::shared_ptr<const Members>> current_;
};

// The list from the configuration; Refresh finds nothing new, a reload Replaces it.
class StaticMembership final : public Membership {
 public:
  explicit StaticMembership(Members members) : Membership(std::move(members)) {}
  bool Refresh() override { return false; }
  bool Replace(Members next) { return Publish(std::move(next)); }
};

// The runner's running nodes of one role, from GET /api/status on its admin address. Starts from
// `initial` (the topology's list) until the runner first answers; an answer that lists no
// running node keeps the last list (a pool is never emptied by a runner that is starting).
// `token` is the runner's admin token (sent as a bearer token; docs/security.md).
class RunnerMembership final : public Membership {
 public:
  RunnerMembership(std::string runner_admin, std::string role, Members initial,
                   std::string token = "");
  bool Refresh() override;

 private:
  std::string admin_;
  std::string role_;
  std::string token_;
};

// The running nodes of `role` in the runner's /api/status body, in its order, weight 1 (with
// their tls_address when a row has one).
Result<Members> ParseRunnerStatus(std::string_view json, std::string_view role);

}  // namespace millions::membership
