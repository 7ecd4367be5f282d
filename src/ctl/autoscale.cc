#include "ctl/autoscale.h"

#include <cstdio>
#include <utility>

#include "core/config.h"

namespace millions::ctl {
namespace {

AutoscaleTier ReadTier(config::Section s, Tier tier, const std::string& file) {
  AutoscaleTier t;
  s.Get("enabled", &t.enabled);
  s.Get("min", &t.min, 1, 32);
  s.Get("max", &t.max, 1, 32);
  s.Get("interval_ms", &t.interval_ms, 100, 600'000);
  s.Get("cooldown_ms", &t.cooldown_ms, 0, 3'600'000);
  if (tier == Tier::kWorker) {
    s.Get("backlog_per_worker", &t.backlog_per_worker, 0, 1e6);
    s.Get("oldest_age_ms", &t.oldest_age_ms, 0, 3'600'000);
  } else {
    s.Get("in_flight_per_node", &t.in_flight_per_node, 0, 1e6);
    s.Get("cpu", &t.cpu, 0, 64);
    s.Get("p99_ms", &t.p99_ms, 0, 600'000);
  }
  if (t.min > t.max)
    throw config::ConfigError(file + ": [autoscale." + TierName(tier) + "] min (" +
                              std::to_string(t.min) + ") is above max (" + std::to_string(t.max) +
                              ")");
  return t;
}

std::string Num(double v) {
  char buf[32];
  snprintf(buf, sizeof buf, v == static_cast<int64_t>(v) ? "%.0f" : "%.2f", v);
  return buf;
}

// Measures against their bounds: any over its bound asks for a node; the tier is calm when every
// measure is below half its bound. A bound of 0 is not looked at; a measure not read asks for
// nothing, and keeps the tier from being calm when the tier relies on it (`required`).
struct Check {
  bool over = false;
  bool calm = true;
  std::string why;  // when over: "backlog 12/worker > 4"
};

void Against(std::optional<double> v, double bound, const std::string& what,
             const std::string& unit, bool required, Check* c) {
  if (bound <= 0) return;
  if (!v) {
    if (required) c->calm = false;
    return;
  }
  if (*v > bound) {
    c->over = true;
    c->calm = false;
    if (!c->why.empty()) c->why += ", ";
    c->why += what + " " + Num(*v) + unit + " > " + Num(bound) + unit;
  } else if (*v >= bound / 2) {
    c->calm = false;
  }
}

int64_t Ms(AutoClock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace

const char* TierName(Tier t) { return t == Tier::kWorker ? "worker" : "web"; }

AutoscaleConfig ReadAutoscale(const topo::Topology& t) {
  auto as = t.file().Table("autoscale");
  AutoscaleConfig c;
  c.worker = ReadTier(as.Sub("worker"), Tier::kWorker, t.path);
  c.web = ReadTier(as.Sub("web"), Tier::kWeb, t.path);
  return c;
}

Decision Decide(Tier tier, const AutoscaleTier& cfg, const TierSample& s, AutoClock::time_point now,
                AutoscaleState* state) {
  Decision d;
  d.target = s.nodes;
  if (s.nodes < cfg.min) {
    d.target = cfg.min;
    d.reason = std::to_string(s.nodes) + " below min " + std::to_string(cfg.min);
    state->last_change = now;
    state->calm_since.reset();
    return d;
  }
  if (s.nodes > cfg.max) {
    d.target = cfg.max;
    d.reason = std::to_string(s.nodes) + " above max " + std::to_string(cfg.max);
    state->last_change = now;
    state->calm_since.reset();
    return d;
  }
  int n = std::max(1, s.nodes);
  Check c;
  if (tier == Tier::kWorker) {
    std::optional<double> per;
    if (s.backlog) per = *s.backlog / n;
    Against(per, cfg.backlog_per_worker, "backlog", "/worker", true, &c);
    Against(s.oldest_age_ms, cfg.oldest_age_ms, "oldest job", " ms", true, &c);
  } else {
    std::optional<double> per;
    if (s.in_flight) per = *s.in_flight / n;
    Against(per, cfg.in_flight_per_node, "in flight", "/node", true, &c);
    Against(s.cpu, cfg.cpu, "cpu", " cores/node", true, &c);
    // No request in the interval: no p99, and nothing slow either.
    Against(s.p99_ms, cfg.p99_ms, "p99", " ms", false, &c);
  }
  bool waited = !state->last_change ||
                now - *state->last_change >= std::chrono::milliseconds(cfg.interval_ms);
  if (c.over) {
    state->calm_since.reset();
    if (s.nodes >= cfg.max) {
      d.reason = c.why + "; at max " + std::to_string(cfg.max);
    } else if (!waited) {
      d.reason = c.why + "; scaled " + std::to_string(Ms(now - *state->last_change)) +
                 " ms ago, waiting out the interval";
    } else {
      d.target = s.nodes + 1;
      d.reason = c.why;
      state->last_change = now;
    }
    return d;
  }
  if (!c.calm) {
    state->calm_since.reset();
    d.reason = "within bounds";
    return d;
  }
  if (!state->calm_since) state->calm_since = now;
  auto cooldown = std::chrono::milliseconds(cfg.cooldown_ms);
  int64_t calm_ms = Ms(now - *state->calm_since);
  std::string calm = "below half of every bound for " + std::to_string(calm_ms) + " ms";
  if (s.nodes <= cfg.min) {
    d.reason = calm + "; at min " + std::to_string(cfg.min);
    return d;
  }
  if (now - *state->calm_since < cooldown ||
      (state->last_change && now - *state->last_change < cooldown)) {
    d.reason = calm + "; cooling down (" + std::to_string(cfg.cooldown_ms) + " ms)";
    return d;
  }
  if (tier == Tier::kWorker && !s.idle_node) {
    d.reason = calm + "; every worker is busy, waiting for an idle one";
    return d;
  }
  d.target = s.nodes - 1;
  d.reason = calm;
  if (s.idle_node) d.remove = *s.idle_node;
  state->last_change = now;
  return d;
}

void DecisionLog::Add(DecisionRecord r) {
  std::lock_guard lock(mu_);
  records_.push_back(std::move(r));
  while (records_.size() > capacity_) records_.pop_front();
}

std::vector<DecisionRecord> DecisionLog::List() const {
  std::lock_guard lock(mu_);
  return {records_.begin(), records_.end()};
}

}  // namespace millions::ctl
