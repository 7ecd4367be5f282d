#include "data/reshard_plan.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>

namespace millions::data {
namespace {

constexpr std::string_view kStateNames[] = {"pending",  "copying",  "catching_up", "frozen",
                                            "verified", "switched", "cleaned"};

bool Switched(MoveState s) { return s == MoveState::kSwitched || s == MoveState::kCleaned; }
bool InFlight(MoveState s) { return s != MoveState::kPending && !Switched(s); }

Error Bad(std::string why) {
  return MakeError(Errc::kBadInput, "bad_reshard_plan", "reshard plan: " + why);
}

}  // namespace

std::string_view MoveStateName(MoveState s) { return kStateNames[static_cast<int>(s)]; }

bool ReshardPlan::done() const {
  return std::all_of(moves.begin(), moves.end(),
                     [](const ShardMove& m) { return m.state == MoveState::kCleaned; });
}

Result<ReshardPlan> MakeReshardPlan(const ShardMap& current, const ShardMap& next, int64_t now_ms) {
  if (current.logical() != next.logical())
    return Bad("the maps have " + std::to_string(current.logical()) + " and " +
               std::to_string(next.logical()) + " logical shards: the count is fixed for life");
  if (next.version <= current.version) return Bad("the next map's version is not later");
  ReshardPlan p;
  p.from = current;
  p.to = next;
  p.started_ms = p.updated_ms = now_ms;
  for (int s : MovedShards(current, next)) {
    ShardMove m;
    m.logical = s;
    m.from = current.ClusterOf(s);
    m.to = next.ClusterOf(s);
    p.moves.push_back(std::move(m));
  }
  return p;
}

Status Advance(ReshardPlan* plan, size_t m, MoveState next, int64_t now_ms) {
  if (m >= plan->moves.size()) return Bad("no move " + std::to_string(m));
  ShardMove& mv = plan->moves[m];
  const int from = static_cast<int>(mv.state), to = static_cast<int>(next);
  const bool forward = to == from + 1;
  const bool recopy = (mv.state == MoveState::kCatchingUp || mv.state == MoveState::kFrozen) &&
                      next == MoveState::kCopying;
  if (!forward && !recopy)
    return MakeError(Errc::kConflict, "bad_move_step",
                     "shard " + std::to_string(mv.logical) + ": " +
                         std::string(MoveStateName(mv.state)) + " cannot go to " +
                         std::string(MoveStateName(next)));
  if (recopy) mv.applied_seq = 0;
  mv.state = next;
  plan->updated_ms = now_ms;
  return Ok();
}

std::vector<size_t> NextMoves(const ReshardPlan& plan, int parallel) {
  std::vector<size_t> out;
  int flying = 0;
  for (size_t i = 0; i < plan.moves.size(); ++i)
    if (InFlight(plan.moves[i].state) && flying < parallel) {
      out.push_back(i);
      ++flying;
    }
  for (size_t i = 0; i < plan.moves.size() && flying < parallel; ++i)
    if (plan.moves[i].state == MoveState::kPending) {
      out.push_back(i);
      ++flying;
    }
  for (size_t i = 0; i < plan.moves.size(); ++i)
    if (plan.moves[i].state == MoveState::kSwitched) out.push_back(i);
  return out;
}

ShardMap MapInForce(const ReshardPlan& plan) {
  ShardMap m = plan.from;
  for (const auto& mv : plan.moves) {
    if (!Switched(mv.state)) continue;
    auto it = std::find(m.clusters.begin(), m.clusters.end(), mv.to);
    if (it == m.clusters.end()) {
      m.clusters.push_back(mv.to);  // a cluster the reshard adds
      it = m.clusters.end() - 1;
    }
    m.owner[mv.logical] = static_cast<uint16_t>(it - m.clusters.begin());
    ++m.version;
  }
  return m;
}

ReshardProgress Progress(const ReshardPlan& plan, int64_t now_ms) {
  ReshardProgress p;
  p.shards_total = static_cast<int>(plan.moves.size());
  std::vector<int64_t> pauses;
  for (const auto& mv : plan.moves) {
    p.users += mv.users;
    p.rows += mv.rows;
    if (Switched(mv.state)) ++p.shards_switched;
    if (mv.pause_ms >= 0) pauses.push_back(mv.pause_ms);
  }
  const double elapsed_s = std::max<int64_t>(now_ms - plan.started_ms, 1) / 1000.0;
  p.rows_per_s = p.rows / elapsed_s;
  if (p.shards_switched > 0)
    p.eta_s = elapsed_s * (p.shards_total - p.shards_switched) / p.shards_switched;
  if (!pauses.empty()) {
    std::sort(pauses.begin(), pauses.end());
    p.pause_p50_ms = pauses[(pauses.size() - 1) / 2];
    p.pause_max_ms = pauses.back();
  }
  return p;
}

std::string ProgressLine(const ReshardProgress& p, int width) {
  const int filled = p.shards_total ? width * p.shards_switched / p.shards_total : width;
  std::string bar = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
  char buf[256];
  std::snprintf(buf, sizeof buf, " %d/%d shards  %lld users  %lld rows  %.0f rows/s",
                p.shards_switched, p.shards_total, static_cast<long long>(p.users),
                static_cast<long long>(p.rows), p.rows_per_s);
  std::string line = bar + buf;
  if (p.eta_s >= 0) {
    const long long s = static_cast<long long>(p.eta_s + 0.5);
    std::snprintf(buf, sizeof buf, "  ETA %lld:%02lld", s / 60, s % 60);
    line += buf;
  } else {
    line += "  ETA --";
  }
  if (p.pause_max_ms >= 0) {
    std::snprintf(buf, sizeof buf, "  pause p50 %lld ms max %lld ms",
                  static_cast<long long>(p.pause_p50_ms), static_cast<long long>(p.pause_max_ms));
    line += buf;
  }
  return line;
}

std::string ReshardPlanToJson(const ReshardPlan& plan) {
  boost::json::object o;
  o["from"] = boost::json::parse(ShardMapToJson(plan.from));
  o["to"] = boost::json::parse(ShardMapToJson(plan.to));
  o["started_ms"] = plan.started_ms;
  o["updated_ms"] = plan.updated_ms;
  boost::json::array moves;
  for (const auto& m : plan.moves) {
    moves.push_back(boost::json::object{{"logical", m.logical},
                                        {"from", m.from},
                                        {"to", m.to},
                                        {"state", MoveStateName(m.state)},
                                        {"users", m.users},
                                        {"rows", m.rows},
                                        {"applied_seq", m.applied_seq},
                                        {"pause_ms", m.pause_ms}});
  }
  o["moves"] = std::move(moves);
  return boost::json::serialize(o);
}

Result<ReshardPlan> ReshardPlanFromJson(std::string_view json) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(json, ec);
  if (ec || !v.is_object()) return Bad("not a JSON object");
  const auto& o = v.get_object();
  auto map = [&](const char* key) -> Result<ShardMap> {
    const auto* m = o.if_contains(key);
    if (!m || !m->is_object()) return Bad(std::string("no \"") + key + "\" map");
    return ShardMapFromJson(boost::json::serialize(*m));
  };
  auto from = map("from");
  if (!from.ok()) return from.error();
  auto to = map("to");
  if (!to.ok()) return to.error();
  auto int_field = [](const boost::json::object& obj, const char* key, int64_t* out) {
    const auto* x = obj.if_contains(key);
    if (!x || !x->is_int64()) return false;
    *out = x->as_int64();
    return true;
  };
  ReshardPlan p;
  p.from = std::move(*from);
  p.to = std::move(*to);
  if (p.from.logical() != p.to.logical()) return Bad("the maps' logical shard counts differ");
  if (!int_field(o, "started_ms", &p.started_ms) || !int_field(o, "updated_ms", &p.updated_ms))
    return Bad("\"started_ms\" and \"updated_ms\" must be integers");
  const auto* moves = o.if_contains("moves");
  if (!moves || !moves->is_array()) return Bad("\"moves\" must be an array");
  for (const auto& mv : moves->as_array()) {
    if (!mv.is_object()) return Bad("a move is not an object");
    const auto& mo = mv.get_object();
    ShardMove m;
    int64_t logical = 0;
    if (!int_field(mo, "logical", &logical) || logical < 0 || logical >= p.from.logical())
      return Bad("a move's \"logical\" is not a shard of the map");
    m.logical = static_cast<int>(logical);
    const auto* f = mo.if_contains("from");
    const auto* t = mo.if_contains("to");
    const auto* st = mo.if_contains("state");
    if (!f || !f->is_string() || !t || !t->is_string() || !st || !st->is_string())
      return Bad("a move needs \"from\", \"to\" and \"state\" strings");
    m.from = std::string(f->as_string());
    m.to = std::string(t->as_string());
    auto name = std::find(std::begin(kStateNames), std::end(kStateNames),
                          std::string_view(st->as_string()));
    if (name == std::end(kStateNames))
      return Bad("unknown state \"" + std::string(st->as_string()) + "\"");
    m.state = static_cast<MoveState>(name - std::begin(kStateNames));
    if (!int_field(mo, "users", &m.users) || !int_field(mo, "rows", &m.rows) ||
        !int_field(mo, "applied_seq", &m.applied_seq) || !int_field(mo, "pause_ms", &m.pause_ms))
      return Bad("a move's counts must be integers");
    if (m.from != p.from.ClusterOf(m.logical) || m.to != p.to.ClusterOf(m.logical))
      return Bad("shard " + std::to_string(m.logical) + "'s move disagrees with the maps");
    p.moves.push_back(std::move(m));
  }
  return p;
}

}  // namespace millions::data
