// The runner's autoscaler loop: every tier's interval it samples the tier (workers: the jobs
// stream on the nats nodes' monitor and each worker's /metrics; web nodes: each node's /metrics
// and its process' CPU from /proc), asks Decide (autoscale.h) and calls Scale. Each scaling is
// an Event and a DecisionLog record; the latest sample of each tier is kept for the dashboard
// (GET /api/autoscale). Sampling runs whether or not a tier is enabled: the dashboard shows the
// queue either way.
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "core/env.h"
#include "ctl/runner_internal.h"

namespace millions::ctl::detail {
namespace {

std::optional<std::string> Get(const std::string& host, int port, const std::string& target) {
  http::FetchRequest r;
  r.host = host;
  r.port = port;
  r.target = target;
  r.timeout = milliseconds(800);
  auto res = http::Fetch(r);
  if (!res.ok() || res->status != 200) return std::nullopt;
  return res->body;
}

// The sum of every series of a metric family in Prometheus text; nullopt when it has none.
std::optional<double> Metric(const std::string& body, const std::string& name) {
  std::optional<double> sum;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size()) continue;
    char next = line[name.size()];
    if (next != ' ' && next != '{') continue;
    sum = sum.value_or(0) + std::atof(line.c_str() + line.rfind(' ') + 1);
  }
  return sum;
}

// Cumulative request-duration buckets (upper bound in seconds → count) over the routes that
// serve users: probes and scrapes are left out, they would only pull the p99 down.
std::map<double, double> Buckets(const std::string& body) {
  std::map<double, double> out;
  std::istringstream in(body);
  std::string line;
  const std::string name = "millions_http_request_duration_seconds_bucket{";
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0) continue;
    if (line.find("route=\"/metrics\"") != std::string::npos ||
        line.find("route=\"/readyz\"") != std::string::npos ||
        line.find("route=\"/livez\"") != std::string::npos)
      continue;
    // `,le="`: a bare `le="` is also the end of `role="`.
    size_t le = line.find(",le=\"");
    if (le == std::string::npos) continue;
    std::string bound = line.substr(le + 5, line.find('"', le + 5) - le - 5);
    out[bound == "+Inf" ? 1e300 : std::atof(bound.c_str())] +=
        std::atof(line.c_str() + line.rfind(' ') + 1);
  }
  return out;
}

// utime + stime of a process, in seconds; nullopt when it is gone.
std::optional<double> CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(paren + 2));
  std::string f;
  double ticks = 0;
  // After the name: state is field 3; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && fields >> f; ++i)
    if (i >= 14) ticks += std::atof(f.c_str());
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// "2026-12-03T01:02:03.123456789Z" (nats-server's first_ts) as Unix milliseconds.
std::optional<int64_t> ParseTimestamp(const std::string& s) {
  struct tm tm {};
  int frac_at = 0;
  if (sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
             &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &frac_at) != 6)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  int64_t ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  if (s.size() > static_cast<size_t>(frac_at) + 1 && s[frac_at] == '.')
    ms += static_cast<int64_t>(std::atof(("0" + s.substr(frac_at, 4)).c_str()) * 1000);
  return ms;  // nats-server writes UTC ("Z"); offsets are not used
}

// The jobs stream as one nats node's monitor sees it.
struct StreamState {
  double messages = 0;  // jobs waiting or running (a work-queue stream drops acked jobs)
  double done = 0;      // jobs the stream ever took minus those it holds: acked (finished)
  double oldest_age_ms = 0;
  bool found = false;  // this node holds the stream (in a cluster, a replica of it)
};

std::optional<StreamState> JobsStream(const Node& nats, const std::string& stream) {
  auto body = Get(nats.check_host, nats.check_port, "/jsz?accounts=true&streams=true");
  if (!body) return std::nullopt;
  boost::system::error_code ec;
  json::value v = json::parse(*body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  StreamState out;  // no stream yet (no job was ever published): an empty queue
  auto* accounts = v.as_object().if_contains("account_details");
  if (!accounts || !accounts->is_array()) return out;
  for (const auto& a : accounts->as_array()) {
    auto* streams = a.is_object() ? a.as_object().if_contains("stream_detail") : nullptr;
    if (!streams || !streams->is_array()) continue;
    for (const auto& s : streams->as_array()) {
      const auto* name = s.is_object() ? s.as_object().if_contains("name") : nullptr;
      if (!name || !name->is_string() || name->as_string() != stream) continue;
      const auto* state = s.as_object().if_contains("state");
      if (!state || !state->is_object()) continue;
      const auto& st = state->as_object();
      auto num = [&](const char* k) {
        auto* f = st.if_contains(k);
        return f && f->is_number() ? f->to_number<double>() : 0.0;
      };
      out.found = true;
      out.messages = num("messages");
      out.done = num("last_seq") - out.messages;
      if (out.messages > 0)
        if (auto* ts = st.if_contains("first_ts"); ts && ts->is_string())
          if (auto at = ParseTimestamp(std::string(ts->as_string())))
            out.oldest_age_ms = std::max<double>(0, Env::Default().WallMillis() - *at);
      return out;
    }
  }
  return out;
}

json::value Opt(const std::optional<double>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

}  // namespace

// What the sampler remembers between samples: per web node its last histogram and CPU time,
// and the jobs stream's finished count, for rates.
struct Runner::AutoscaleMemory {
  std::map<std::string, std::map<double, double>> buckets;          // by node name
  std::map<std::string, std::pair<double, Clock::time_point>> cpu;  // by node name
  std::optional<std::pair<double, Clock::time_point>> done;
};

TierSample Runner::SampleWorkers(AutoscaleMemory& mem, json::object* view) {
  TierSample s;
  std::vector<Node> workers = Nodes("worker");
  std::optional<double> lag;
  for (const Node& n : workers) {
    if (!n.wanted) continue;
    s.nodes++;
    if (n.pid <= 0 || n.state != "running" || n.paused) continue;
    auto body = Get(n.check_host, n.check_port, "/metrics");
    if (!body) continue;
    // The last idle worker in the list: the newest, so the topology's own ones stay.
    if (auto busy = Metric(*body, "millions_worker_busy"); busy && *busy == 0) s.idle_node = n.name;
    if (auto l = Metric(*body, "millions_fanout_lag_seconds")) lag = std::max(lag.value_or(0), *l);
  }
  // The first nats node that holds the stream; with none holding it (no job was ever
  // published), any that answers: an empty queue.
  std::optional<StreamState> stream;
  for (const Node& n : Nodes("nats")) {
    if (n.pid <= 0 || n.state != "running") continue;
    auto here = JobsStream(n, "MILLIONS_JOBS");
    if (here && (!stream || here->found)) stream = here;
    if (stream && stream->found) break;
  }
  std::optional<double> jobs_per_s;
  if (stream) {
    s.backlog = stream->messages;
    s.oldest_age_ms = stream->oldest_age_ms;
    auto now = Clock::now();
    if (mem.done) {
      double dt = std::chrono::duration<double>(now - mem.done->second).count();
      if (dt > 0) jobs_per_s = std::max(0.0, (stream->done - mem.done->first) / dt);
    }
    mem.done = {stream->done, now};
  }
  (*view)["nodes"] = s.nodes;
  (*view)["backlog"] = Opt(s.backlog);
  (*view)["oldest_age_ms"] = Opt(s.oldest_age_ms);
  (*view)["jobs_per_s"] = Opt(jobs_per_s);
  (*view)["fanout_lag_s"] = Opt(lag);
  (*view)["idle"] = s.idle_node ? json::value(*s.idle_node) : json::value(nullptr);
  return s;
}

TierSample Runner::SampleWeb(AutoscaleMemory& mem, json::object* view) {
  TierSample s;
  std::map<double, double> delta;
  double in_flight = 0, cpu = 0;
  int scraped = 0, cpu_nodes = 0;
  std::map<std::string, std::map<double, double>> buckets;
  auto now = Clock::now();
  for (const Node& n : Nodes("web")) {
    if (!n.wanted) continue;
    s.nodes++;
    if (n.pid <= 0 || n.state != "running" || n.paused) continue;
    auto body = Get(n.check_host, n.check_port, "/metrics");
    if (!body) continue;
    scraped++;
    // The scrape itself is one of the requests in flight.
    in_flight += std::max(0.0, Metric(*body, "millions_http_requests_in_flight").value_or(1) - 1);
    auto b = Buckets(*body);
    if (auto old = mem.buckets.find(n.name); old != mem.buckets.end())
      for (const auto& [le, c] : b) delta[le] += c - old->second[le];
    buckets[n.name] = std::move(b);
    if (auto secs = CpuSeconds(n.pid)) {
      if (auto old = mem.cpu.find(n.name); old != mem.cpu.end()) {
        double dt = std::chrono::duration<double>(now - old->second.second).count();
        if (dt > 0) {
          cpu += std::max(0.0, (*secs - old->second.first) / dt);
          cpu_nodes++;
        }
      }
      mem.cpu[n.name] = {*secs, now};
    }
  }
  mem.buckets = std::move(buckets);  // nodes gone are forgotten
  if (scraped > 0) s.in_flight = in_flight;
  if (cpu_nodes > 0) s.cpu = cpu / cpu_nodes;
  double total = delta.empty() ? 0 : delta.rbegin()->second;
  if (total > 0) {
    double finite = 0;
    for (const auto& [le, c] : delta) {
      if (le < 1e299) finite = le;
      if (c >= 0.99 * total) {
        s.p99_ms = (le < 1e299 ? le : finite) * 1000;
        break;
      }
    }
  }
  (*view)["nodes"] = s.nodes;
  (*view)["in_flight"] = Opt(s.in_flight);
  (*view)["cpu"] = Opt(s.cpu);
  (*view)["p99_ms"] = Opt(s.p99_ms);
  return s;
}

void Runner::AutoscaleLoop() {
  AutoscaleMemory mem;
  struct TierLoop {
    Tier tier;
    const AutoscaleTier* cfg;
    const char* kind;
    AutoscaleState state;
    Clock::time_point next{};
  };
  std::vector<TierLoop> tiers;
  if (RecipeOf("worker") && !t_.worker.empty())
    tiers.push_back({Tier::kWorker, &autoscale_.worker, "worker", {}, {}});
  if (RecipeOf("web") && !t_.web.empty())
    tiers.push_back({Tier::kWeb, &autoscale_.web, "web", {}, {}});
  while (!g_stop && !autoscale_stop_) {
    std::this_thread::sleep_for(milliseconds(100));
    for (auto& tl : tiers) {
      auto now = Clock::now();
      if (now < tl.next || g_stop || autoscale_stop_) continue;
      tl.next = now + milliseconds(tl.cfg->interval_ms);
      json::object view;
      TierSample s = tl.tier == Tier::kWorker ? SampleWorkers(mem, &view) : SampleWeb(mem, &view);
      view["enabled"] = tl.cfg->enabled;
      view["min"] = tl.cfg->min;
      view["max"] = tl.cfg->max;
      Decision d;
      if (tl.cfg->enabled) {
        d = Decide(tl.tier, *tl.cfg, s, now, &tl.state);
        view["reason"] = d.reason;
      }
      {
        std::lock_guard lock(autoscale_mu_);
        autoscale_view_[tl.kind] = std::move(view);
      }
      if (!tl.cfg->enabled || d.target == s.nodes) continue;
      std::string what = std::string(tl.kind) + " " + std::to_string(s.nodes) + " → " +
                         std::to_string(d.target) + ": " + d.reason;
      Event("autoscale", what);
      std::string err = Scale(*RecipeOf(tl.kind), d.target, d.remove);
      if (!err.empty()) Event("autoscale", std::string(tl.kind) + " scaling failed: " + err);
      decisions_.Add(
          {FormatRfc3339(Env::Default().WallMillis()), tl.kind, s.nodes, d.target, d.reason, err});
      // The next sample starts after the change is done (a new node is ready, an old one gone).
      tl.next = Clock::now() + milliseconds(tl.cfg->interval_ms);
    }
  }
}

std::string Runner::AutoscaleJson() {
  json::object root;
  {
    std::lock_guard lock(autoscale_mu_);
    root = autoscale_view_;
  }
  json::array list;
  for (const auto& r : decisions_.List())
    list.push_back(json::object{{"ts", r.ts},
                                {"tier", r.tier},
                                {"from", r.from},
                                {"to", r.to},
                                {"reason", r.reason},
                                {"error", r.error}});
  root["decisions"] = std::move(list);
  return json::serialize(root);
}

}  // namespace millions::ctl::detail
